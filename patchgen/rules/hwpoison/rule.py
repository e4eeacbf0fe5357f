"""Rule hwpoison-put-last: poison a soft-offlined page only on its last put.

The LKML review of soft offline (April 2016, message id
5704C168.1060803@suse.cz) found that after page migration the kernel
dropped the page with put_page() and only then set PG_hwpoison on it: the
page could be freed and reallocated in between, or still be in use.  The
series this rule makes, in an order that keeps every step correct (the
linux-mm review of the first version, ../shared/KERNEL.md, shaped it):

  1. mm/memory-failure.c: soft_offline_page() and unpoison_memory() take
     one mutex, mf_mutex, so that unpoison never meets a page that soft
     offline has poisoned and not finished releasing;
  2. mm/memory_hotplug.c: do_migrate_range() skips a hwpoisoned page that
     only hwpoison holds (before such pages hold a reference, patch 3);
  3. mm/page_alloc.c: free_pages_prepare() keeps hwpoisoned order-0 pages
     off the free lists, clears page->mapping with the tree's own
     statement and holds the page for hwpoison with one reference;
  4. mm/memory-failure.c + mm/internal.h: a helper that drops a reference
     and poisons and releases the page only if that was the last one;
  5. mm/migrate.c: each put_page() + poisoning after migration calls it;
  6. mm/memory-failure.c: so does the invalidate path of soft offline,
     with -EBUSY when the page stayed in use;
  7. mm/memory-failure.c: soft offline returns -EBUSY when migration left
     the page unpoisoned.

The hugetlb sites (after putback_active_hugepage(), and the surplus
branch of soft_offline_huge_page() in v4.5-v4.9) are reported, not
rewritten.  Every commit ends its body with one provenance line
(patchgen/provenance.py).

Eras (../shared/KERNEL.md): the call site and the free path are classified
separately, by the shape of the code, never by version number.
"""

import re
from dataclasses import dataclass, replace
from typing import Mapping

from tree_sitter import Node

from patchgen.infra.errors import MissingFile, RuleRefused, UnparseableSite
from patchgen.engine.parse import (ParsedFile, ancestors, call_args, node_text, call_name, calls, child_field, compares,
                            conjuncts, declares, enclosing_function, find_function,
                            functions, if_parts, normalized, parse, statements,
                            unwrap_block, walk)
from patchgen.engine.splice import (append_to_file, continue_after, insert_after,
                             insert_before, insert_before_last_endif,
                             insert_before_statement, insert_line_before,
                             replace_statements)
from patchgen.rules.hwpoison import recipe, review as hwpoison_review
from patchgen.engine.rule import (ALREADY_APPLIED, NO_MATCH, NOT_AFFECTED, REFUSED,
                                  REWRITE, Finding, Report, Rule, Step, StepResult)
from patchgen.infra.templates import render
from patchgen.engine.sources import FileSource, makefile_version, version_text

RULE_ID = "hwpoison-put-last"
HELPER = "hwpoison_put_last_page"
TEMPLATES = f"{RULE_ID}/"

MIGRATE_C = "mm/migrate.c"
MEMORY_FAILURE_C = "mm/memory-failure.c"
PAGE_ALLOC_C = "mm/page_alloc.c"
MM_H = "include/linux/mm.h"
INTERNAL_H = "mm/internal.h"
MEMORY_HOTPLUG_C = "mm/memory_hotplug.c"
MM_TYPES_H = "include/linux/mm_types.h"
MF_MUTEX = "mf_mutex"
# The two entry points the mutex serialises.
MUTEX_FUNCTIONS = ("soft_offline_page", "unpoison_memory")
PAGE_REF_H = "include/linux/page_ref.h"

POISON_SETTERS = frozenset({"test_set_page_hwpoison", "TestSetPageHWPoison",
                            "SetPageHWPoison"})
BUDDY_POISONER = "set_hwpoison_free_buddy_page"
RELEASERS = frozenset({"put_page", "put_hwpoison_page", "folio_put"})
HUGE_RELEASERS = frozenset({"putback_active_hugepage"})
CLEANUP_CALLS = frozenset({"reset_page_owner", "memcg_kmem_uncharge",
                           "__memcg_kmem_uncharge_page"})

# Words a file must contain to hold a site or a mechanism of this rule.
SITE_WORDS = ("MR_MEMORY_FAILURE", "test_set_page_hwpoison",
              "TestSetPageHWPoison", "SetPageHWPoison", BUDDY_POISONER, HELPER)

PREREQUISITE = "mm/hwpoison: fix wrong num_poisoned_pages account"
FIXES_SUBJECT = "mm/hwpoison: fix race between soft_offline_page and unpoison_memory"

# Subjects of the series (at most 75 characters each, unique).
SUBJECT_MUTEX = "mm: hwpoison: serialise soft offline and unpoison with a mutex"
SUBJECT_HOTPLUG = "mm/memory_hotplug: skip hwpoisoned pages when offlining"
SUBJECT_INVALIDATE = "mm: hwpoison: poison an invalidated page only on its last put"
SUBJECT_FREE_PATH = "mm/page_alloc: keep hwpoisoned order-0 pages off the free lists"
SUBJECT_HELPER = f"mm: hwpoison: add {HELPER}()"
SUBJECT_CALL_SITE = "mm/migrate: poison a soft-offlined page only on its last put"
SUBJECT_EBUSY = "mm: hwpoison: return -EBUSY when soft offline leaves a page in use"


# --- sites ------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Site:
    """A place where a page reference is dropped around setting PG_hwpoison."""

    path: str
    function: str | None
    line: int
    shape: str          # "put-then-poison", "put-unless-memory-failure", "helper-call"
    era: str | None
    action: str         # "rewrite", "report", "none", "done", "refuse"
    reason: str
    page: str = ""      # the page expression, e.g. "page", "hpage", "src"
    releaser: str = ""
    poisoner: str = ""
    first: Node | None = None    # first statement of the site
    last: Node | None = None     # last statement of the site
    parsed: ParsedFile | None = None  # the parse *first* and *last* belong to


def _enclosing_conditions(node: Node) -> list[tuple[Node, bool]]:
    """Conditions of the if statements around *node*: (condition, true-branch)."""
    found = []
    child = node
    parent = node.parent
    while parent is not None and parent.type != "function_definition":
        if parent.type == "if_statement":
            condition, consequence, _ = if_parts(parent)
            if consequence is not None and child == consequence:
                found.append((condition, True))
            elif child.type == "else_clause":
                found.append((condition, False))
        child, parent = parent, parent.parent
    return found


def _positive_terms(conditions: list[tuple[Node, bool]]) -> list[Node]:
    return [term for condition, positive in conditions if positive
            for term in conjuncts(condition)]


def _unlabel(statement: Node) -> Node:
    """The statement under a label (`out: if (...) ...;`), or *statement*."""
    while statement.type == "labeled_statement" and statement.named_children:
        statement = statement.named_children[-1]
    return statement


def _called(call: Node) -> str:
    """The called function's name (call_name()), "" for a call through an
    expression (a function pointer): every call this rule looks for names
    its function."""
    return call_name(call) or ""


def _release_call(statement: Node) -> Node | None:
    """`put_page(x);` (or a release of a hugepage), possibly under an if."""
    statement = _unlabel(statement)
    if statement.type == "if_statement":
        _, consequence, alternative = if_parts(statement)
        inner = unwrap_block(consequence) if consequence is not None else []
        if alternative is None and len(inner) == 1:
            statement = inner[0]
    if statement.type != "expression_statement" or not statement.named_children:
        return None
    expression = statement.named_children[0]
    if _called(expression) in RELEASERS | HUGE_RELEASERS and len(call_args(expression)) == 1:
        return expression
    return None


def _poison_call(statement: Node, page: str) -> Node | None:
    for call in calls(statement, POISON_SETTERS | {BUDDY_POISONER}):
        args = call_args(call)
        if args and normalized(args[0]) == page:
            return call
    return None


def _ends_flow(statement: Node) -> bool:
    return statement.type in ("return_statement", "goto_statement",
                              "break_statement", "continue_statement")


def _function_name(parsed: ParsedFile, node: Node) -> str | None:
    function = enclosing_function(parsed, node)
    return function.name if function else None


def find_put_then_poison_sites(parsed: ParsedFile) -> list[Site]:
    """Every `release(x); ... poison(x)` pair in one block of *parsed*."""
    sites = []
    for block in walk(parsed.root, "compound_statement"):
        items = [_unlabel(item) for item in statements(block)]
        for index, statement in enumerate(items):
            release = _release_call(statement)
            if release is None:
                continue
            page = normalized(call_args(release)[0])
            for later in items[index + 1:index + 5]:
                poison = _poison_call(later, page)
                if poison is not None:
                    sites.append(_classify(parsed, statement, later,
                                           release, poison, page,
                                           items[index + 1:items.index(later)]))
                    break
                if _ends_flow(later) or _release_call(later) is not None:
                    break
    return sites


def _classify(parsed, first, last, release, poison, page, between) -> Site:
    releaser = _called(release)
    poisoner = _called(poison)
    conditions = _enclosing_conditions(first)
    terms = _positive_terms(conditions)
    # The poisoning may sit under its own condition, as in E3's
    # `if (reason == MR_MEMORY_FAILURE) { ... }` after the put.
    own = _enclosing_conditions(poison)[:-len(conditions) or None]
    own_terms = _positive_terms(own)
    after_migration = any(compares(t, "MR_MEMORY_FAILURE") for t in terms + own_terms)
    rc_checked = any(compares(t, "MIGRATEPAGE_SUCCESS") for t in terms)
    nested = bool(own) and any(compares(t, "MR_MEMORY_FAILURE") for t in own_terms)
    base = Site(parsed.path, _function_name(parsed, first), parsed.line(first),
                "put-then-poison", None, "report", "", page, releaser, poisoner,
                first, last, parsed)
    names = f"{releaser}({page}) then {poisoner}({page})"
    if releaser in HUGE_RELEASERS:
        return replace(base, shape="related", reason=(
            f"{names}: a hugepage goes back with {releaser}(), not put_page(); "
            "a related site, reported and not rewritten"))
    if not after_migration and releaser in RELEASERS and poisoner == "SetPageHWPoison" \
            and _calls_in_function(parsed, first, "invalidate_inode_page"):
        return _classify_invalidate(parsed, base, names, between, last)
    if not after_migration:
        return replace(base, shape="related", reason=(
            f"{names}, but not after a migration for MR_MEMORY_FAILURE: a "
            "related site, reported and not rewritten"))
    if poisoner == BUDDY_POISONER:
        return replace(base, era="E4", action="none", reason=(
            f"{names}: {BUDDY_POISONER}() sets the flag only on a page already "
            "in the buddy lists, under the zone lock, so the race is closed "
            "upstream's way (d4ae9916ea29); not affected"))
    if rc_checked and nested:
        era = "E3"
    elif nested:
        era = None
    elif rc_checked:
        era = "E2"
    else:
        era = "E1"
    site = replace(base, era=era)
    dirty = [n for n in [first, *between, last] if n.has_error]
    if dirty:
        return replace(site, action="refuse", reason=(
            f"{names}: its statements do not parse cleanly (tree-sitter error "
            f"at line {parsed.line(dirty[0])}); not rewritten, fix it by hand"))
    if between:
        return replace(site, action="refuse", reason=(
            f"{names} with other statements in between (line "
            f"{parsed.line(between[0])}); not rewritten, the order would change"))
    if era is None:
        return replace(site, action="refuse", reason=(
            f"{names}: poisoned under MR_MEMORY_FAILURE but the put is not "
            "under a MIGRATEPAGE_SUCCESS test; an unknown shape, not rewritten"))
    if era == "E1":
        return replace(site, action="refuse", reason=(
            f"{names} for MR_MEMORY_FAILURE without a `rc == MIGRATEPAGE_SUCCESS` "
            f"test: this tree lacks \"{PREREQUISITE}\"; apply that first"))
    return replace(site, action="rewrite", reason=(
        f"{names} after a successful migration: the page can be freed and "
        f"reused before it is poisoned; becomes {HELPER}({page})"))


def _calls_in_function(parsed: ParsedFile, node: Node, name: str) -> bool:
    function = enclosing_function(parsed, node)
    return function is not None and any(True for _ in calls(function.body, {name}))


PRINTERS = frozenset({"pr_info", "pr_err", "pr_debug", "pr_warn", "pr_notice"})


def _only_prints(items: list[Node]) -> bool:
    return all(item.type == "expression_statement" and item.named_children and
               _called(item.named_children[0]) in PRINTERS for item in items)


def _next_statement(node: Node) -> Node | None:
    following = node.next_named_sibling
    while following is not None and following.type == "comment":
        following = following.next_named_sibling
    return following


def _classify_invalidate(parsed, base: Site, names: str, between, poison_statement) -> Site:
    """`put_hwpoison_page(page); pr_info(...); SetPageHWPoison(page);
    num_poisoned_pages_inc();` after invalidate_inode_page() succeeded."""
    site = replace(base, shape="invalidate")
    counter = _next_statement(poison_statement)
    counts = counter is not None and counter.type == "expression_statement" and \
        counter.named_children and _called(counter.named_children[0]) == \
        "num_poisoned_pages_inc"
    dirty = [n for n in [base.first, *between, poison_statement] if n.has_error]
    if dirty or not _only_prints(between) or not counts or \
            poison_statement.type != "expression_statement":
        return replace(site, action="report", reason=(
            f"{names} after invalidate_inode_page(), but not in the shape "
            "`put; pr_info(); SetPageHWPoison(); num_poisoned_pages_inc();`: "
            "the same race, reported and not rewritten"))
    return replace(site, action="rewrite", last=counter, reason=(
        f"{names} after invalidate_inode_page(): the page can be freed and "
        f"reused before it is poisoned; becomes {HELPER}({base.page}), and "
        "-EBUSY when another reference remains"))


def find_surplus_poisoning(parsed: ParsedFile) -> list[Site]:
    """The poisoning in the success branch of a hugepage soft offline
    (`ret = migrate_pages(..., MR_MEMORY_FAILURE); if (ret) {...} else {
    ... SetPageHWPoison(page); ... }`, v4.5-v4.9): migration already gave
    the source page back, a surplus hugepage to the buddy allocator."""
    sites = []
    for call in calls(parsed.root, {"migrate_pages"}):
        if not any(normalized(a) == "MR_MEMORY_FAILURE" for a in call_args(call)):
            continue
        statement = call.parent.parent if call.parent is not None else None
        if statement is None or statement.type != "expression_statement":
            continue
        check = _next_statement(statement)
        if check is None or check.type != "if_statement":
            continue
        _, _, alternative = if_parts(check)
        if alternative is None:
            continue
        for poison in calls(alternative, POISON_SETTERS | {"set_page_hwpoison_huge_page"}):
            args = call_args(poison)
            page = normalized(args[0]) if args else ""
            what = ("a surplus hugepage that migration gave back to the buddy "
                    "allocator" if _called(poison) in POISON_SETTERS else
                    "a hugepage that migration gave back to the hugepage pool")
            sites.append(Site(parsed.path, _function_name(parsed, poison),
                              parsed.line(poison), "related", None, "report",
                              f"{_called(poison)}({page}) after a successful "
                              f"migration for MR_MEMORY_FAILURE, on {what}: the "
                              "page can be reused before it is poisoned; a "
                              "related site, reported and not rewritten",
                              page, "", _called(poison)))
    return sites


def find_e5_sites(parsed: ParsedFile) -> list[Site]:
    """`if (reason != MR_MEMORY_FAILURE) put_page(x);`: upstream v5.10+."""
    sites = []
    for statement in walk(parsed.root, "if_statement"):
        condition, consequence, alternative = if_parts(statement)
        if alternative is not None or not any(
                compares(t, "MR_MEMORY_FAILURE", "!=") for t in conjuncts(condition)):
            continue
        inner = unwrap_block(consequence)
        release = _release_call(inner[0]) if len(inner) == 1 else None
        if release is not None:
            page = normalized(call_args(release)[0])
            sites.append(Site(parsed.path, _function_name(parsed, statement),
                              parsed.line(statement), "put-unless-memory-failure",
                              "E5", "none",
                              f"{_called(release)}({page}) only when the reason "
                              "is not MR_MEMORY_FAILURE: soft offline releases and "
                              "poisons the page itself (page_handle_poison()); "
                              "not affected", page, _called(release)))
    return sites


def find_helper_calls(parsed: ParsedFile) -> list[Site]:
    sites = []
    for call in calls(parsed.root, {HELPER}):
        function = _function_name(parsed, call)
        if function == HELPER:
            continue
        page = normalized(call_args(call)[0]) if call_args(call) else ""
        sites.append(Site(parsed.path, function, parsed.line(call), "helper-call",
                          None, "done", f"calls {HELPER}({page}): already applied",
                          page))
    return sites


# --- the free path ------------------------------------------------------------

@dataclass(frozen=True)
class FreePath:
    era: str | None
    hook_line: int | None      # the PageHWPoison early return, if present
    line: int | None           # free_pages_prepare()
    buddy_poison_line: int | None
    message: str


def _hwpoison_return(parsed: ParsedFile, function) -> Node | None:
    for statement in statements(function.body):
        if statement.type != "if_statement":
            continue
        condition, consequence, _ = if_parts(statement)
        if any(_called(c) == "PageHWPoison" for c in calls(condition)) and \
                any(n.type == "return_statement" for n in walk(consequence)):
            return statement
    return None


def classify_free_path(page_alloc: ParsedFile | None, has_page_handle_poison: bool) -> FreePath:
    if page_alloc is None:
        return FreePath(None, None, None, None, f"{PAGE_ALLOC_C} is missing")
    prepare = find_function(page_alloc, "free_pages_prepare")
    buddy = find_function(page_alloc, BUDDY_POISONER)
    check = find_function(page_alloc, "free_pages_check")
    hook = _hwpoison_return(page_alloc, prepare) if prepare else None
    line = page_alloc.line(prepare.node) if prepare else None
    hook_line = page_alloc.line(hook) if hook else None
    if buddy is not None:
        locked = any("zone->lock" in normalized(c) or "zone->lock" in page_alloc.text(c)
                     for c in calls(buddy.body, {"spin_lock_irqsave", "spin_lock"}))
        how = " under the zone lock" if locked else ""
        return FreePath("E4", hook_line, line, page_alloc.line(buddy.node),
                        f"not needed: {BUDDY_POISONER}() (line "
                        f"{page_alloc.line(buddy.node)}) poisons only pages already "
                        f"in the buddy lists{how}, which keep them on purpose; "
                        "never add a hook here")
    if prepare is None:
        return FreePath(None, None, None, None,
                        f"{PAGE_ALLOC_C} has no free_pages_prepare(): unknown free path")
    if find_function(page_alloc, "free_page_is_bad") is not None or (
            hook is not None and has_page_handle_poison):
        era = "E5"
    elif find_function(page_alloc, "free_pages_check_bad") is not None or \
            "check_free" in page_alloc.text(prepare.node.child_by_field_name("declarator")
                                            or prepare.node):
        era = "E3"
    elif check is not None and "bad_reason" in page_alloc.text(check.body):
        era = "E1"
    else:
        era = None
    if hook is not None:
        return FreePath(era, hook_line, line, None,
                        f"hook present: free_pages_prepare() returns early for a "
                        f"PageHWPoison order-0 page (line {hook_line})")
    return FreePath(era, None, line, None,
                    "hook absent: a hwpoisoned page that is freed reaches the "
                    "per-cpu or buddy free lists")


# --- the soft-offline caller (patch 4) ------------------------------------------

@dataclass(frozen=True, eq=False)
class Caller:
    function: str | None
    line: int
    page: str
    result: str           # the variable migrate_pages() was assigned to
    check: Node           # the `if (ret)` after the migration
    done: bool
    usable: bool
    reason: str


def find_soft_offline_caller(parsed: ParsedFile) -> Caller | None:
    """`list_add(&page->lru, &l); ret = migrate_pages(&l, ..., MR_MEMORY_FAILURE);
    if (ret) {...}`: the in-use soft offline of an order-0 page."""
    for call in calls(parsed.root, {"migrate_pages"}):
        args = call_args(call)
        if not args or not any(normalized(a) == "MR_MEMORY_FAILURE" for a in args):
            continue
        assignment = call.parent
        statement = assignment.parent if assignment is not None else None
        if assignment is None or assignment.type != "assignment_expression" or \
                statement is None or statement.type != "expression_statement":
            continue
        result = normalized(child_field(assignment, "left"))
        block = statement.parent
        assert block is not None  # a statement is always inside something
        items = statements(block)
        index = items.index(statement)
        page = None
        for earlier in items[:index]:
            for add in calls(earlier, {"list_add", "list_add_tail"}):
                add_args = call_args(add)
                if len(add_args) == 2 and normalized(add_args[1]) == normalized(args[0]):
                    text = normalized(add_args[0])
                    if text.startswith("&") and text.endswith("->lru"):
                        page = text[1:-len("->lru")]
        if page is None or index + 1 >= len(items):
            continue
        check = items[index + 1]
        if check.type != "if_statement":
            continue
        condition, _, alternative = if_parts(check)
        if normalized(condition) not in (f"({result})", f"({result}!=0)"):
            continue
        function = _function_name(parsed, call)
        if alternative is not None:
            done = any(_called(c) == "PageHWPoison" for c in calls(alternative))
            return Caller(function, parsed.line(call), page, result, check, done,
                          False, "already returns -EBUSY for a page left unpoisoned"
                          if done else "its `if (ret)` already has an else branch")
        if check.has_error:
            return Caller(function, parsed.line(call), page, result, check, False,
                          False, "its `if (ret)` does not parse cleanly")
        return Caller(function, parsed.line(call), page, result, check, False, True,
                      "reports success even when the page was left unpoisoned")
    return None


# --- memory hot-remove (patch 2) ---------------------------------------------------

@dataclass(frozen=True, eq=False)
class HotplugSite:
    """The pin in do_migrate_range()'s loop, before which a poisoned page
    held by hwpoison is skipped."""

    function: str
    line: int
    pin: Node | None          # `if (!get_page_unless_zero(page)) continue;`
    page: str
    movable: bool             # the loop also isolates non-LRU movable pages
    done: bool
    usable: bool
    reason: str


def find_hotplug_pin(parsed: ParsedFile) -> HotplugSite | None:
    function = find_function(parsed, "do_migrate_range")
    if function is None:
        return None
    line = parsed.line(function.node)
    for loop in walk(function.body, "for_statement"):
        body = loop.child_by_field_name("body")
        if body is None or body.type != "compound_statement":
            continue
        items = statements(body)
        for index, statement in enumerate(items):
            if statement.type != "if_statement":
                continue
            condition, consequence, alternative = if_parts(statement)
            pins = [c for c in calls(condition, {"get_page_unless_zero"})]
            if not pins or alternative is not None or \
                    unwrap_block(consequence)[0].type != "continue_statement":
                continue
            page = normalized(call_args(pins[0])[0]) if call_args(pins[0]) else "page"
            movable = any(True for _ in calls(body, {"isolate_movable_page"}))
            earlier = [c for item in items[:index]
                       for c in calls(item, {"PageHWPoison"})]
            if earlier:
                return HotplugSite(function.name, parsed.line(earlier[0]), statement,
                                   page, movable, True, False,
                                   "already skips hwpoisoned pages before pinning "
                                   "them")
            if statement.has_error:
                return HotplugSite(function.name, parsed.line(statement), statement,
                                   page, movable, False, False,
                                   "its get_page_unless_zero() test does not "
                                   "parse cleanly: not changed")
            return HotplugSite(function.name, parsed.line(statement), statement, page,
                               movable, False, True,
                               "pins every page it meets, a poisoned page held by "
                               "hwpoison included, and fails the offline with "
                               "-EBUSY when it cannot isolate it")
    return HotplugSite(function.name, line, None, "page", False, False, False,
                       "no `if (!get_page_unless_zero(page)) continue;` in its "
                       "loop: an unknown shape, not changed")


# --- the mutex (patch 1) ----------------------------------------------------------

@dataclass(frozen=True)
class MutexState:
    defined: bool                  # static DEFINE_MUTEX(mf_mutex)
    locked: tuple[str, ...]        # which of MUTEX_FUNCTIONS take it
    present: tuple[str, ...]       # which of MUTEX_FUNCTIONS exist

    @property
    def done(self) -> bool:
        return self.defined and set(self.locked) == set(MUTEX_FUNCTIONS)

    @property
    def usable(self) -> bool:
        return not self.done and set(self.present) == set(MUTEX_FUNCTIONS)


def _takes_mutex(function) -> bool:
    return any(normalized(a) == f"&{MF_MUTEX}"
               for c in calls(function.body, {"mutex_lock"}) for a in call_args(c))


def find_mutex_state(parsed: ParsedFile) -> MutexState:
    defined = f"DEFINE_MUTEX({MF_MUTEX})".encode() in parsed.source
    present, locked = [], []
    for name in MUTEX_FUNCTIONS:
        function = find_function(parsed, name)
        if function is None:
            continue
        present.append(name)
        if _takes_mutex(function):
            locked.append(name)
    return MutexState(defined, tuple(locked), tuple(present))


def memory_failure_clears_own_flag_only(parsed: ParsedFile) -> bool | None:
    """Whether memory_failure() clears PG_hwpoison only after its own
    `if (TestSetPageHWPoison(p)) ... return` at the start (so only a flag it
    set itself in the same call); None if it never clears the flag."""
    function = find_function(parsed, "memory_failure")
    if function is None:
        return None
    clears = list(calls(function.body, {"TestClearPageHWPoison", "ClearPageHWPoison"}))
    if not clears:
        return None
    for statement in statements(function.body):
        if statement.type != "if_statement":
            continue
        condition, consequence, _ = if_parts(statement)
        if any(_called(c) == "TestSetPageHWPoison" for c in calls(condition)) and \
                any(n.type == "return_statement" for n in walk(consequence)):
            return all(c.start_byte > statement.end_byte for c in clears)
    return False


# --- scan -----------------------------------------------------------------------

def _parse_optional(source: FileSource, path: str) -> ParsedFile | None:
    if not source.exists(path):
        return None
    return parse(source.read(path), path)


def kernel_version(source: FileSource) -> str | None:
    return version_text(makefile_version(source))


@dataclass(frozen=True, eq=False)
class TreeFacts:
    """What the steps need to know about the tree, found once by scan."""

    sites: tuple[Site, ...]
    free_path: FreePath
    has_put_page_slow: bool          # __put_page() exists
    take_reference: str | None       # set_page_refcounted / page_ref_inc
    helper_defined: bool
    helper_declared: bool
    caller: Caller | None
    page_handle_poison_line: int | None
    mutex: MutexState
    hotplug: HotplugSite | None
    mapping_reset: str | None        # free_pages_prepare()'s own page->mapping reset
    # Where mm/migrate.c poisons a page inside code that does not parse (a
    # file cut off after `if (!test_set_page_hwpoison(page))`): a site that
    # cannot be read, not the absence of one.
    unreadable_poison: tuple[int, ...] = ()


def gather(source: FileSource) -> TreeFacts:
    if not any(source.exists(path) for path in (MIGRATE_C, MEMORY_FAILURE_C, PAGE_ALLOC_C)):
        raise MissingFile(f"{source.label} has no mm/ folder (no {MIGRATE_C}, "
                          f"{MEMORY_FAILURE_C} or {PAGE_ALLOC_C}): the rule "
                          f"{RULE_ID} rewrites the memory manager; pass --tree "
                          "the top of a kernel source tree that has one")
    for required in (MIGRATE_C, MEMORY_FAILURE_C, PAGE_ALLOC_C, MM_H):
        if not source.exists(required):
            raise MissingFile(f"{required} is missing from {source.label}: the "
                              f"rule {RULE_ID} reads it; pass --tree the top of "
                              "a kernel source tree")
    sites: list[Site] = []
    candidates = set(source.files_containing(SITE_WORDS, (".c",)))
    candidates |= {MIGRATE_C, MEMORY_FAILURE_C}
    parsed_files = {}
    for path in sorted(candidates):
        parsed = parse(source.read(path), path)
        parsed_files[path] = parsed
        sites += find_put_then_poison_sites(parsed)
        if path == MEMORY_FAILURE_C:
            sites += find_surplus_poisoning(parsed)
        sites += find_e5_sites(parsed)
        sites += find_helper_calls(parsed)
    memory_failure = parsed_files[MEMORY_FAILURE_C]
    page_alloc = parse(source.read(PAGE_ALLOC_C), PAGE_ALLOC_C)
    mm_h = parse(source.read(MM_H), MM_H)
    handle = find_function(memory_failure, "page_handle_poison")
    free_path = classify_free_path(page_alloc, handle is not None)
    internal = _parse_optional(source, INTERNAL_H)
    page_ref = _parse_optional(source, PAGE_REF_H)
    includes_internal = b'#include "internal.h"' in page_alloc.source
    if internal is not None and includes_internal and \
            find_function(internal, "set_page_refcounted") is not None:
        take_reference = "set_page_refcounted"
    elif page_ref is not None and find_function(page_ref, "page_ref_inc") is not None:
        take_reference = "page_ref_inc"
    else:
        take_reference = None
    return TreeFacts(
        sites=tuple(sorted(sites, key=lambda s: (s.path, s.line))),
        free_path=free_path,
        has_put_page_slow=declares(mm_h, "__put_page") is not None,
        take_reference=take_reference,
        helper_defined=find_function(memory_failure, HELPER) is not None,
        helper_declared=(internal is not None and declares(internal, HELPER) is not None)
        or declares(mm_h, HELPER) is not None,
        caller=find_soft_offline_caller(memory_failure),
        page_handle_poison_line=memory_failure.line(handle.node) if handle else None,
        mutex=find_mutex_state(memory_failure),
        hotplug=find_hotplug_pin(parse(source.read(MEMORY_HOTPLUG_C), MEMORY_HOTPLUG_C))
        if source.exists(MEMORY_HOTPLUG_C) else None,
        mapping_reset=_mapping_reset_text(page_alloc),
        unreadable_poison=_unreadable_poison(parsed_files[MIGRATE_C]),
    )


def _unreadable_poison(parsed: ParsedFile) -> tuple[int, ...]:
    """Lines of *parsed* where a poison setter is called inside an ERROR node."""
    lines = []
    for name in walk(parsed.root, "identifier"):
        if parsed.text(name) in POISON_SETTERS and any(
                a.type == "ERROR" for a in ancestors(name)):
            lines.append(parsed.line(name))
    return tuple(sorted(set(lines)))


def _mapping_reset(parsed: ParsedFile, prepare) -> Node | None:
    """free_pages_prepare()'s `if (PageX(page)) page->mapping = NULL;`."""
    for statement in statements(prepare.body):
        if statement.type != "if_statement":
            continue
        condition, consequence, alternative = if_parts(statement)
        inner = unwrap_block(consequence)
        if alternative is None and len(inner) == 1 and \
                normalized(inner[0]).endswith("->mapping=NULL;"):
            return statement
    return None


def _mapping_reset_text(page_alloc: ParsedFile) -> str | None:
    prepare = find_function(page_alloc, "free_pages_prepare")
    statement = _mapping_reset(page_alloc, prepare) if prepare else None
    return None if statement is None else " ".join(page_alloc.text(statement).split())


@dataclass(frozen=True)
class SiteGroups:
    """The call sites of a tree, sorted by what they mean for the verdict."""

    rewritable: tuple[Site, ...]
    e1: tuple[Site, ...]
    e4: tuple[Site, ...]
    e5: tuple[Site, ...]
    converted: tuple[Site, ...]     # already call the helper
    unparseable: tuple[Site, ...]   # E2/E3 sites whose statements have errors

    @classmethod
    def of(cls, sites) -> "SiteGroups":
        return cls(
            rewritable=tuple(s for s in sites if s.action == "rewrite"
                             and s.shape == "put-then-poison"),
            e1=tuple(s for s in sites if s.era == "E1" and s.shape == "put-then-poison"),
            e4=tuple(s for s in sites if s.era == "E4"),
            e5=tuple(s for s in sites if s.era == "E5"),
            converted=tuple(s for s in sites if s.shape == "helper-call"),
            unparseable=tuple(s for s in sites
                              if s.action == "refuse" and s.era in ("E2", "E3")))

    def call_era(self) -> str:
        first = (self.rewritable or self.e1 or self.e4 or self.e5 or (None,))[0]
        if first is not None and first.era is not None:
            return first.era
        return f"converted to {HELPER}()" if self.converted else "none found"


@dataclass(frozen=True)
class Decision:
    verdict: str
    summary: str
    steps: tuple[str, ...] = ()
    refusal: type | None = None
    findings: tuple[Finding, ...] = ()


def _plural(count: int, word: str, plural: str) -> str:
    return f"{count} {word if count == 1 else plural}"


def _decide(facts: TreeFacts, groups: SiteGroups) -> Decision:
    """What apply does with this tree, and the one sentence that says why."""
    if groups.e1 or (groups.rewritable and not facts.has_put_page_slow):
        reasons = []
        if groups.e1:
            reasons.append("its call site has no `rc == MIGRATEPAGE_SUCCESS` test: "
                           f"apply \"{PREREQUISITE}\" first")
        if not facts.has_put_page_slow:
            reasons.append(f"{MM_H} has no __put_page() (put_page() is out of "
                           "line before v4.5), which the helper needs")
        summary = "This tree cannot take the series as proposed: " + "; ".join(reasons) + "."
        where = MM_H if not facts.has_put_page_slow else MIGRATE_C
        return Decision(REFUSED, summary, refusal=RuleRefused, findings=(
            Finding("prerequisite", where, None, None, groups.call_era(), "refuse",
                    summary),))
    if groups.rewritable:
        if facts.take_reference is None:
            return Decision(REFUSED, (
                "This tree has neither set_page_refcounted() in mm/internal.h "
                "(included by mm/memory-failure.c) nor page_ref_inc(): the helper "
                "cannot take the page's reference back."), refusal=RuleRefused,
                findings=tuple(_helper_findings(facts)))
        steps = tuple(s.subject for s in plan_steps(facts))
        return Decision(REWRITE, (
            f"The put-then-poison race is here "
            f"({_plural(len(groups.rewritable), 'site', 'sites')}); apply makes "
            f"{_plural(len(steps), 'patch', 'patches')}."), steps,
            findings=tuple(_helper_findings(facts)))
    if groups.unparseable:
        site = groups.unparseable[0]
        return Decision(REFUSED, (
            "The pattern is here but its statements do not parse cleanly: "
            f"{site.path}:{site.line}; fix it by hand."), refusal=UnparseableSite)
    if groups.e4:
        return Decision(NOT_AFFECTED, (
            f"Not affected: {BUDDY_POISONER}() poisons only pages already in the "
            "buddy lists, under the zone lock (d4ae9916ea29, v4.19). Soft offline "
            "still reports success without poisoning the page when another "
            "reference is held; this rule changes nothing here."))
    if groups.e5:
        return Decision(NOT_AFFECTED, (
            "Not affected: soft offline poisons the page itself in "
            "page_handle_poison() and free_pages_prepare() keeps hwpoisoned pages "
            "off the free lists (79f5f8fab482, v5.10); nothing to change."))
    if groups.converted:
        steps = tuple(s.subject for s in plan_steps(facts))
        findings = tuple(_helper_findings(facts))
        if not steps:
            return Decision(ALREADY_APPLIED, (
                f"Already applied: the call site uses {HELPER}() and every step "
                "is in."), findings=findings)
        return Decision(REWRITE, (
            f"Partly applied: the call site uses {HELPER}(); apply makes the "
            f"{_plural(len(steps), 'missing patch', 'missing patches')}."), steps,
            findings=findings)
    if facts.unreadable_poison:
        return Decision(REFUSED, (
            f"{MIGRATE_C}:{facts.unreadable_poison[0]} poisons a page in code "
            "that does not parse (a cut-off or damaged file): the site cannot "
            "be read; fix the file."), refusal=UnparseableSite)
    return Decision(NO_MATCH,
                    "The put-then-poison pattern after migration is not in this tree.")


def _free_path_finding(facts: TreeFacts, groups: SiteGroups) -> Finding:
    free_path = facts.free_path
    if free_path.era == "E4":
        action = "none"          # poisoned pages stay in buddy on purpose
    elif free_path.hook_line is not None:
        action = "done"
    elif groups.rewritable or groups.converted:
        action = "add"
    else:
        action = "none"
    return Finding("free-path", PAGE_ALLOC_C, free_path.line,
                   "free_pages_prepare" if free_path.line else None, free_path.era,
                   action, free_path.message)


def scan(source: FileSource) -> Report:
    facts = gather(source)
    groups = SiteGroups.of(facts.sites)
    decision = _decide(facts, groups)
    findings = []
    for site in facts.sites:
        kind = {"related": "related-site", "invalidate": "invalidate-site"}.get(
            site.shape, "call-site")
        action = site.action
        if site.shape == "invalidate" and action == "rewrite" and \
                decision.verdict != REWRITE:
            action = "report"   # the series does not apply to this tree
        findings.append(Finding(kind, site.path, site.line, site.function, site.era,
                                action, site.reason))
    findings.append(_free_path_finding(facts, groups))
    if decision.verdict in (REWRITE, ALREADY_APPLIED):
        findings.append(_mutex_finding(facts))
        if facts.hotplug is not None:
            hotplug = facts.hotplug
            findings.append(Finding(
                "hotplug", MEMORY_HOTPLUG_C, hotplug.line, hotplug.function, None,
                "done" if hotplug.done else ("add" if hotplug.usable else "report"),
                hotplug.reason))
    if facts.page_handle_poison_line and (groups.e5 or not groups.rewritable):
        findings.append(Finding(
            "mechanism", MEMORY_FAILURE_C, facts.page_handle_poison_line,
            "page_handle_poison", "E5", "none",
            "soft offline sets PG_hwpoison, releases the page and takes a "
            "reference back itself (79f5f8fab482, v5.10)"))
    eras = {"call site": groups.call_era(),
            "free path": facts.free_path.era or "unknown"}
    # The eras are this rule's facts about the tree (Report.facts).
    return Report(RULE_ID, source.label, kernel_version(source), decision.verdict,
                  decision.summary, eras, tuple(findings) + decision.findings,
                  decision.steps, decision.refusal)


def _mutex_finding(facts: TreeFacts) -> Finding:
    mutex = facts.mutex
    if mutex.done:
        return Finding("mutex", MEMORY_FAILURE_C, None, None, None, "done",
                       "soft_offline_page() and unpoison_memory() take mf_mutex")
    if mutex.usable:
        return Finding("mutex", MEMORY_FAILURE_C, None, None, None, "add",
                       "soft_offline_page() and unpoison_memory() share no lock: "
                       "unpoison can clear the flag of a page soft offline is "
                       "releasing")
    missing = [n for n in MUTEX_FUNCTIONS if n not in mutex.present]
    return Finding("mutex", MEMORY_FAILURE_C, None, None, None, "report",
                   f"{', '.join(f'{n}()' for n in missing) or 'the functions'} "
                   "not found in the expected shape: no mutex added")


def _helper_findings(facts: TreeFacts) -> list[Finding]:
    findings = [Finding(
        "helper", MEMORY_FAILURE_C, None, HELPER, None,
        "done" if facts.helper_defined and facts.helper_declared else "add",
        "defined and declared" if facts.helper_defined and facts.helper_declared
        else f"absent: added to {MEMORY_FAILURE_C}, declared in {INTERNAL_H}")]
    caller = facts.caller
    if caller is None:
        findings.append(Finding("caller", MEMORY_FAILURE_C, None, None, None, "report",
                                "no soft-offline migrate_pages(..., MR_MEMORY_FAILURE) "
                                "caller of the expected shape: -EBUSY not added"))
    else:
        findings.append(Finding("caller", MEMORY_FAILURE_C, caller.line, caller.function,
                                None, "done" if caller.done else
                                ("add" if caller.usable else "report"), caller.reason))
    return findings


# --- the steps ----------------------------------------------------------------

def plan_steps(facts: TreeFacts) -> list[Step]:
    """The patches still missing from the tree, in series order."""
    steps = []
    if facts.mutex.usable:
        steps.append(STEP_MUTEX)
    if facts.hotplug is not None and facts.hotplug.usable:
        steps.append(STEP_HOTPLUG)
    if facts.free_path.era != "E4" and facts.free_path.hook_line is None:
        steps.append(STEP_FREE_PATH)
    if not (facts.helper_defined and facts.helper_declared):
        steps.append(STEP_HELPER)
    if any(s.action == "rewrite" and s.shape == "put-then-poison" for s in facts.sites):
        steps.append(STEP_CALL_SITE)
    if any(s.action == "rewrite" and s.shape == "invalidate" for s in facts.sites):
        steps.append(STEP_INVALIDATE)
    if facts.caller is not None and facts.caller.usable:
        steps.append(STEP_EBUSY)
    return steps


def steps_for(report: Report) -> list[Step]:
    by_subject = {s.subject: s for s in ALL_STEPS}
    return [by_subject[subject] for subject in report.steps]


def _reindent(parsed: ParsedFile, node: Node, indent: str) -> str:
    """*node*'s text moved to *indent* (its continuation lines follow)."""
    old = parsed.indent_of(node)
    lines = parsed.text(node).split("\n")
    moved = [lines[0]]
    for line in lines[1:]:
        moved.append(indent + line[len(old):] if line.startswith(old) else line)
    return "\n".join(moved)


def _params(function) -> list[str]:
    declarator = None
    for node in walk(function.node, "function_declarator"):
        declarator = node
        break
    names: list[str] = []
    if declarator is None:
        return names
    for parameter in child_field(declarator, "parameters").named_children:
        identifiers = [n for n in walk(parameter, "identifier")]
        if identifiers:
            names.append(node_text(identifiers[-1]))
    return names


def make_free_path(source: FileSource, report: Report) -> StepResult:
    facts = gather(source)
    parsed = parse(source.read(PAGE_ALLOC_C), PAGE_ALLOC_C)
    prepare = find_function(parsed, "free_pages_prepare")
    if prepare is None:
        raise RuleRefused(f"{PAGE_ALLOC_C} has no free_pages_prepare(): the "
                          "free-path hook has nowhere to go")
    params = _params(prepare)
    if len(params) < 2:
        raise RuleRefused("free_pages_prepare() does not take (page, order): "
                          "an unknown free path")
    if facts.take_reference is None:
        raise RuleRefused(f"{PAGE_ALLOC_C} can use neither set_page_refcounted() "
                          f"({INTERNAL_H}) nor page_ref_inc(): the hook cannot "
                          "hold the page for hwpoison")
    page, order = params[0], params[1]
    # The hook goes after the declarations, assertions and tracepoint at
    # the top, before anything that frees or checks the page.
    body = statements(prepare.body)
    anchor = None
    for statement in body:
        names = {_called(c) or "" for c in calls(statement)}
        if statement.type == "declaration" or (
                statement.type == "expression_statement" and any(
                    n.startswith(("VM_BUG_ON", "trace_")) for n in names)):
            anchor = statement
            continue
        break
    cleanup = []
    mapping = _mapping_reset(parsed, prepare)
    for statement in body:
        names = {_called(c) for c in calls(statement)}
        if (names & CLEANUP_CALLS and statement.type in ("expression_statement",
                                                         "if_statement")) \
                or statement == mapping:
            if statement.has_error:
                raise UnparseableSite(f"{PAGE_ALLOC_C}:{parsed.line(statement)}: the "
                                      "cleanup in free_pages_prepare() does not parse")
            cleanup.append(statement)
    if anchor is None:
        raise RuleRefused("free_pages_prepare() has no statement to anchor the hook")
    cleanup_text = [_reindent(parsed, s, "\t") for s in cleanup]
    hook = render(TEMPLATES + "free_path_hook.c.j2", page=page, order=order,
                  cleanup=cleanup_text, take_reference=facts.take_reference)
    cleanup_names = sorted({_called(c) for s in cleanup for c in calls(s)} & CLEANUP_CALLS,
                           key=lambda n: ["memcg_kmem_uncharge",
                                          "__memcg_kmem_uncharge_page",
                                          "reset_page_owner"].index(n))
    mapping_test = None
    if mapping is not None:
        condition, _, _ = if_parts(mapping)
        inner = condition.named_children[0] if condition.type == \
            "parenthesized_expression" and condition.named_children else condition
        mapping_test = " ".join(parsed.text(inner).split())
    free_path = classify_free_path(parsed, False)
    pcp_unchecked = any(f.name == "check_new_pcp" and normalized(f.body) == "{returnfalse;}"
                        for f in functions(parsed))
    return StepResult((insert_after(parsed, anchor, hook, "free-path hook"),),
                      {"cleanup": cleanup_names, "free_path_era": free_path.era,
                       "pcp_unchecked": pcp_unchecked,
                       "movable_flag": mapping_test is not None
                       and "PageMappingFlags" in mapping_test,
                       "page_var": page, "order_var": order,
                       "mapping_test": mapping_test,
                       "mutex": facts.mutex.done or facts.mutex.usable,
                       "take_reference": facts.take_reference})


def make_mutex(source: FileSource, report: Report) -> StepResult:
    """`static DEFINE_MUTEX(mf_mutex);`, taken by soft_offline_page() and
    unpoison_memory() after their declarations (and the pfn_valid() test),
    released before every return that follows."""
    parsed = parse(source.read(MEMORY_FAILURE_C), MEMORY_FAILURE_C)
    state = find_mutex_state(parsed)
    if not state.usable:
        return StepResult(())
    edits = []
    # find_mutex_state() said usable: every one of them is defined.
    targets = sorted((f for n in MUTEX_FUNCTIONS if (f := find_function(parsed, n))),
                     key=lambda f: f.node.start_byte)
    if not state.defined:
        edits.append(insert_before(parsed, targets[0].node,
                                   render(TEMPLATES + "mutex.c.j2", mutex=MF_MUTEX),
                                   "mf_mutex"))
    for function in targets:
        if function.name in state.locked:
            continue
        edits += _lock_function(parsed, function)
    clears = memory_failure_clears_own_flag_only(parsed)
    return StepResult(tuple(edits), {
        "mutex": MF_MUTEX,
        "memory_failure_clears": "never" if clears is None else
        ("own" if clears else "other"),
        "hotplug": report is not None and any(
            f.kind == "hotplug" and f.action == "add" for f in report.findings)})


def _is_pfn_guard(statement: Node) -> bool:
    """`if (!pfn_valid(pfn)) return -ENXIO;`: nothing to serialise yet."""
    if statement.type != "if_statement":
        return False
    condition, consequence, alternative = if_parts(statement)
    inner = unwrap_block(consequence)
    return alternative is None and len(inner) == 1 and \
        inner[0].type == "return_statement" and \
        {_called(c) for c in calls(condition)} == {"pfn_valid"}


def _lock_function(parsed: ParsedFile, function) -> list:
    body = statements(function.body)
    first = next((s for s in body if s.type != "declaration" and not _is_pfn_guard(s)),
                 None)
    if first is None:
        raise RuleRefused(f"{function.name}() has no statement to take "
                          f"{MF_MUTEX} before")
    edits = [insert_line_before(parsed, first, f"mutex_lock(&{MF_MUTEX});", blank=True,
                                why=f"lock in {function.name}()")]
    for statement in walk(function.body, "return_statement"):
        if statement.start_byte < first.start_byte:
            continue
        if statement.parent is None or statement.parent.type != "compound_statement":
            raise RuleRefused(
                f"{MEMORY_FAILURE_C}:{parsed.line(statement)}: a return in "
                f"{function.name}() that is not inside braces; {MF_MUTEX} cannot be "
                "released before it without reshaping the code: fix by hand")
        edits.append(insert_line_before(parsed, statement,
                                        f"mutex_unlock(&{MF_MUTEX});",
                                        why=f"unlock in {function.name}()"))
    return edits


def make_hotplug(source: FileSource, report: Report) -> StepResult:
    parsed = parse(source.read(MEMORY_HOTPLUG_C), MEMORY_HOTPLUG_C)
    site = find_hotplug_pin(parsed)
    if site is None or not site.usable:
        return StepResult(())
    text = render(TEMPLATES + "hotplug_skip.c.j2", page=site.page,
                  movable=site.movable)
    memory_failure = parse(source.read(MEMORY_FAILURE_C), MEMORY_FAILURE_C)
    assert site.pin is not None  # a usable site has its pin
    return StepResult((insert_before_statement(parsed, site.pin, text, "hotplug skip"),),
                      {"function": site.function, "movable": site.movable,
                       "memory_failure_holds": _memory_failure_keeps_reference(
                           memory_failure)})


def _memory_failure_keeps_reference(parsed: ParsedFile) -> bool:
    """Whether memory_failure() pins the page (get_hwpoison_page()) and, on
    its handled path, returns without putting it back."""
    function = find_function(parsed, "memory_failure")
    return function is not None and any(
        True for _ in calls(function.body, {"get_hwpoison_page"}))


def _zone_device_calls(mm_h: ParsedFile) -> list[str]:
    """What put_page() calls besides the put itself (ZONE_DEVICE handling)."""
    put_page = find_function(mm_h, "put_page")
    if put_page is None:
        return []
    plain = {"compound_head", "put_page_testzero", "__put_page", "unlikely"}
    return sorted({_called(c) for c in calls(put_page.body)
                   if _called(c) and _called(c) not in plain
                   and not _called(c).startswith(("is_", "VM_BUG"))})


def make_helper(source: FileSource, report: Report) -> StepResult:
    facts = gather(source)
    memory_failure = parse(source.read(MEMORY_FAILURE_C), MEMORY_FAILURE_C)
    mm_h = parse(source.read(MM_H), MM_H)
    if not source.exists(INTERNAL_H):
        raise RuleRefused(f"{INTERNAL_H} is missing: the helper is declared there")
    internal = parse(source.read(INTERNAL_H), INTERNAL_H)
    for user in (MEMORY_FAILURE_C, MIGRATE_C):
        if b'#include "internal.h"' not in source.read(user):
            raise RuleRefused(f"{user} does not include \"internal.h\", where the "
                              "helper is declared")
    edits = []
    mutex = facts.mutex.done or facts.mutex.usable
    zone_device = _zone_device_calls(mm_h)
    get_any_page = find_function(memory_failure, "get_any_page")
    movable = get_any_page is not None and "__PageMovable" in memory_failure.text(
        get_any_page.body)
    never_on_lru = source.exists(MM_TYPES_H) and \
        b"ZONE_DEVICE pages are never on an" in source.read(MM_TYPES_H)
    if not facts.helper_defined:
        anchor = None
        if facts.caller is not None and facts.caller.function is not None:
            anchor = find_function(memory_failure, facts.caller.function)
        if anchor is None:
            anchor = find_function(memory_failure, "soft_offline_page")
        definition = render(TEMPLATES + "helper.c.j2", helper=HELPER,
                            zone_device=zone_device, movable=movable,
                            never_on_lru=never_on_lru, mutex=mutex)
        if anchor is None:
            edits.append(append_to_file(memory_failure, definition, "helper"))
        else:
            edits.append(insert_before(memory_failure, anchor.node, definition, "helper"))
    if not facts.helper_declared:
        declaration = render(TEMPLATES + "helper_decl.h.j2", helper=HELPER)
        edits.append(insert_before_last_endif(internal, declaration,
                                              "helper declaration"))
    return StepResult(tuple(edits), {"helper": HELPER, "zone_device": zone_device,
                                     "movable": movable, "never_on_lru": never_on_lru,
                                     "mutex": mutex,
                                     "name_taken": b"#define put_hwpoison_page"
                                     in source.read(MM_H)})


def make_call_site(source: FileSource, report: Report) -> StepResult:
    facts = gather(source)
    edits = []
    eras = set()
    sites = [s for s in facts.sites if s.action == "rewrite" and s.shape == "put-then-poison"]
    for site in sites:
        parsed = site.parsed  # gather() parsed the file already
        assert parsed is not None and site.first is not None and site.last is not None
        eras.add(site.era)
        if site.era == "E2":
            text = render(TEMPLATES + "call_site_e2.c.j2", helper=HELPER, page=site.page)
        else:
            condition, consequence, _ = if_parts(site.last)
            poison_statement = next(s for s in unwrap_block(consequence)
                                    if _poison_call(s, site.page) is not None)
            rest = [_reindent(parsed, s, "\t") for s in unwrap_block(consequence)
                    if s != poison_statement]
            text = render(TEMPLATES + "call_site_e3.c.j2", helper=HELPER,
                          page=site.page, condition=parsed.text(condition),
                          releaser=site.releaser, rest=rest)
        edits.append(replace_statements(parsed, site.first, site.last, text,
                                        f"call site {site.path}:{site.line}"))
    if not sites:
        return StepResult(())
    where = [f"{s.path}:{s.line} ({s.function}())" for s in sites]
    return StepResult(tuple(edits), {"sites": where, "call_era": sorted(eras, key=str)[0],
                                     "functions": sorted({s.function for s in sites
                                                          if s.function})})


def make_invalidate(source: FileSource, report: Report) -> StepResult:
    facts = gather(source)
    sites = [s for s in facts.sites if s.action == "rewrite" and s.shape == "invalidate"]
    edits = []
    for site in sites:
        parsed = site.parsed
        assert parsed is not None and site.first is not None and site.last is not None
        block = site.first.parent
        assert block is not None
        items = statements(block)
        between = items[items.index(site.first) + 1:items.index(site.last) - 1]
        function = enclosing_function(parsed, site.first)
        has_pfn = function is not None and any(
            normalized(d).startswith("unsignedlongpfn") for d in statements(function.body)
            if d.type == "declaration")
        prefix = "soft offline: "
        for statement in between:
            found = re.search(r'"([^"%]*)%#lx', parsed.text(statement))
            if found:
                prefix = found.group(1)
                break
        text = render(TEMPLATES + "invalidate.c.j2", helper=HELPER, page=site.page,
                      prints=[_reindent(parsed, s, "") for s in between], prefix=prefix,
                      pfn="pfn" if has_pfn else f"page_to_pfn({site.page})")
        edits.append(replace_statements(parsed, site.first, site.last, text,
                                        f"invalidate path {site.path}:{site.line}"))
    if not sites:
        return StepResult(())
    return StepResult(tuple(edits), {"functions": sorted({s.function for s in sites
                                                          if s.function}),
                                     "helper": HELPER})


def make_ebusy(source: FileSource, report: Report) -> StepResult:
    parsed = parse(source.read(MEMORY_FAILURE_C), MEMORY_FAILURE_C)
    caller = find_soft_offline_caller(parsed)
    if caller is None or not caller.usable:
        return StepResult(())
    function = find_function(parsed, caller.function) if caller.function else None
    has_pfn = function is not None and any(
        normalized(d).startswith("unsignedlongpfn") for d in statements(function.body)
        if d.type == "declaration")
    mutex = find_mutex_state(parsed).done
    text = render(TEMPLATES + "ebusy.c.j2", page=caller.page, result=caller.result,
                  pfn="pfn" if has_pfn else f"page_to_pfn({caller.page})", mutex=mutex)
    return StepResult((continue_after(parsed, caller.check, text, "-EBUSY"),),
                      {"function": caller.function, "helper": HELPER, "mutex": mutex})


# Vlastimil Babka proposed the helper construct in the review: his
# Suggested-by goes on the helper and on its use at the call site.
SUGGESTED = {"suggested": True}
NOT_SUGGESTED = {"suggested": False}
STEP_MUTEX = Step("mutex", SUBJECT_MUTEX, TEMPLATES + "1-mutex.msg.j2", make_mutex,
                  values=NOT_SUGGESTED)
STEP_HOTPLUG = Step("hotplug", SUBJECT_HOTPLUG, TEMPLATES + "2-hotplug.msg.j2",
                    make_hotplug, values=NOT_SUGGESTED)
STEP_FREE_PATH = Step("free-path", SUBJECT_FREE_PATH, TEMPLATES + "3-free-path.msg.j2",
                      make_free_path, values=NOT_SUGGESTED)
STEP_HELPER = Step("helper", SUBJECT_HELPER, TEMPLATES + "4-helper.msg.j2",
                   make_helper, values=SUGGESTED)
STEP_CALL_SITE = Step("call-site", SUBJECT_CALL_SITE, TEMPLATES + "5-call-site.msg.j2",
                      make_call_site, fixes_subject=FIXES_SUBJECT, values=SUGGESTED)
STEP_INVALIDATE = Step("invalidate", SUBJECT_INVALIDATE,
                       TEMPLATES + "6-invalidate.msg.j2", make_invalidate,
                       values=NOT_SUGGESTED)
STEP_EBUSY = Step("ebusy", SUBJECT_EBUSY, TEMPLATES + "7-ebusy.msg.j2", make_ebusy,
                  values=NOT_SUGGESTED)
ALL_STEPS = (STEP_MUTEX, STEP_HOTPLUG, STEP_FREE_PATH, STEP_HELPER, STEP_CALL_SITE,
             STEP_INVALIDATE, STEP_EBUSY)

def match_snippet(source: bytes, name: str) -> list[Mapping[str, object]]:
    """The sites the rule acts on or reports in one C file, as their facts
    (patchgen rule-test compares them with a snippet's expect line)."""
    parsed = parse(source, name)
    found: list[Mapping[str, object]] = []
    for finder, find in (("put-then-poison", find_put_then_poison_sites),
                         ("surplus", find_surplus_poisoning)):
        for site in find(parsed):
            found.append({"finder": finder, "shape": site.shape, "era": site.era,
                          "action": site.action, "page": site.page,
                          "function": site.function, "line": site.line})
    return found


RULE = Rule(
    id=RULE_ID,
    title="poison a soft-offlined page only when dropping its last reference",
    default_branch=RULE_ID,
    scan=scan,
    steps=steps_for,
    templates=tuple(TEMPLATES + name for name in (
        "mutex.c.j2", "hotplug_skip.c.j2", "free_path_hook.c.j2", "helper.c.j2",
        "helper_decl.h.j2", "call_site_e2.c.j2", "call_site_e3.c.j2",
        "invalidate.c.j2", "ebusy.c.j2",
        "1-mutex.msg.j2", "2-hotplug.msg.j2", "3-free-path.msg.j2",
        "4-helper.msg.j2", "5-call-site.msg.j2", "6-invalidate.msg.j2",
        "7-ebusy.msg.j2", "cover.msg.j2")),
    site_words=SITE_WORDS,
    cover_template=TEMPLATES + "cover.msg.j2",
    template_values={"helper": HELPER},
    review=hwpoison_review.review,
    match=match_snippet,
    demo_fixture="e3-v4.14",
    check_build=recipe.CHECK_BUILD, verify=recipe.VERIFY,
)
