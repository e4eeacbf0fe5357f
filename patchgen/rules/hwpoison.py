"""Rule hwpoison-put-last: poison a soft-offlined page only on its last put.

The LKML review of soft offline (April 2016, message id
5704C168.1060803@suse.cz) found that after page migration the kernel
dropped the page with put_page() and only then set PG_hwpoison on it: the
page could be freed and reallocated in between, or still be in use.  The
series this rule makes, in an order that keeps every step correct:

  1. mm/page_alloc.c: free_pages_prepare() keeps hwpoisoned order-0 pages
     off the free lists (before anything can release a poisoned page);
  2. mm/memory-failure.c + include/linux/mm.h: a helper that drops a
     reference and poisons the page only if that was the last one;
  3. mm/migrate.c: each put_page() + poisoning after migration calls it;
  4. mm/memory-failure.c: soft offline returns -EBUSY when the page stayed
     unpoisoned.

Eras (../shared/KERNEL.md): the call site and the free path are classified
separately, by the shape of the code, never by version number.
"""

from dataclasses import dataclass, replace

from tree_sitter import Node

from patchgen.errors import MissingFile, RuleRefused, UnparseableSite
from patchgen.parse import (ParsedFile, ancestors, call_args, node_text, call_name, calls, compares,
                            conjuncts, declares, enclosing_function, find_function,
                            functions, if_parts, normalized, parse, statements,
                            unwrap_block, walk)
from patchgen.splice import (append_to_file, continue_after, insert_after,
                             insert_before, replace_statements)
from patchgen.rules import hwpoison_review
from patchgen.rules import (ALREADY_APPLIED, NO_MATCH, NOT_AFFECTED, REFUSED,
                            REWRITE, Finding, Report, Rule, Step, StepResult)
from patchgen.templates import render
from patchgen.tree import FileSource, makefile_version, version_text

RULE_ID = "hwpoison-put-last"
HELPER = "hwpoison_put_last_page"
TEMPLATES = f"{RULE_ID}/"

MIGRATE_C = "mm/migrate.c"
MEMORY_FAILURE_C = "mm/memory-failure.c"
PAGE_ALLOC_C = "mm/page_alloc.c"
MM_H = "include/linux/mm.h"
INTERNAL_H = "mm/internal.h"
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


def _release_call(statement: Node) -> Node | None:
    """`put_page(x);` (or a release of a hugepage), possibly under an if."""
    if statement.type == "if_statement":
        _, consequence, alternative = if_parts(statement)
        inner = unwrap_block(consequence) if consequence is not None else []
        if alternative is None and len(inner) == 1:
            statement = inner[0]
    if statement.type != "expression_statement" or not statement.named_children:
        return None
    expression = statement.named_children[0]
    if call_name(expression) in RELEASERS | HUGE_RELEASERS and len(call_args(expression)) == 1:
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
        items = statements(block)
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
    releaser = call_name(release)
    poisoner = call_name(poison)
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


def find_e5_sites(parsed: ParsedFile) -> list[Site]:
    """`if (reason != MR_MEMORY_FAILURE) put_page(x);`: upstream v5.10+."""
    sites = []
    for statement in walk(parsed.root, "if_statement"):
        condition, consequence, alternative = if_parts(statement)
        if alternative is not None or not any(
                compares(t, "MR_MEMORY_FAILURE", "!=") for t in conjuncts(condition)):
            continue
        inner = unwrap_block(consequence)
        if len(inner) == 1 and _release_call(inner[0]) is not None:
            release = _release_call(inner[0])
            page = normalized(call_args(release)[0])
            sites.append(Site(parsed.path, _function_name(parsed, statement),
                              parsed.line(statement), "put-unless-memory-failure",
                              "E5", "none",
                              f"{call_name(release)}({page}) only when the reason "
                              "is not MR_MEMORY_FAILURE: soft offline releases and "
                              "poisons the page itself (page_handle_poison()); "
                              "not affected", page, call_name(release)))
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
        if any(call_name(c) == "PageHWPoison" for c in calls(condition)) and \
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
        result = normalized(assignment.child_by_field_name("left"))
        block = statement.parent
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
            done = any(call_name(c) == "PageHWPoison" for c in calls(alternative))
            return Caller(function, parsed.line(call), page, result, check, done,
                          False, "already returns -EBUSY for a page left unpoisoned"
                          if done else "its `if (ret)` already has an else branch")
        if check.has_error:
            return Caller(function, parsed.line(call), page, result, check, False,
                          False, "its `if (ret)` does not parse cleanly")
        return Caller(function, parsed.line(call), page, result, check, False, True,
                      "reports success even when the page was left unpoisoned")
    return None


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
    # Where mm/migrate.c poisons a page inside code that does not parse (a
    # file cut off after `if (!test_set_page_hwpoison(page))`): a site that
    # cannot be read, not the absence of one.
    unreadable_poison: tuple[int, ...] = ()


def gather(source: FileSource) -> TreeFacts:
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
        sites += find_e5_sites(parsed)
        sites += find_helper_calls(parsed)
    memory_failure = parsed_files[MEMORY_FAILURE_C]
    page_alloc = parse(source.read(PAGE_ALLOC_C), PAGE_ALLOC_C)
    mm_h = parse(source.read(MM_H), MM_H)
    handle = find_function(memory_failure, "page_handle_poison")
    free_path = classify_free_path(page_alloc, handle is not None)
    internal = _parse_optional(source, INTERNAL_H)
    page_ref = _parse_optional(source, PAGE_REF_H)
    includes_internal = b'#include "internal.h"' in memory_failure.source
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
        helper_declared=declares(mm_h, HELPER) is not None,
        caller=find_soft_offline_caller(memory_failure),
        page_handle_poison_line=memory_failure.line(handle.node) if handle else None,
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
            rewritable=tuple(s for s in sites if s.action == "rewrite"),
            e1=tuple(s for s in sites if s.era == "E1" and s.shape == "put-then-poison"),
            e4=tuple(s for s in sites if s.era == "E4"),
            e5=tuple(s for s in sites if s.era == "E5"),
            converted=tuple(s for s in sites if s.shape == "helper-call"),
            unparseable=tuple(s for s in sites
                              if s.action == "refuse" and s.era in ("E2", "E3")))

    def call_era(self) -> str:
        first = (self.rewritable or self.e1 or self.e4 or self.e5 or (None,))[0]
        if first is not None:
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
            "buddy lists, under the zone lock (d4ae9916ea29, v4.18). Soft offline "
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
    findings = [Finding("related-site" if s.shape == "related" else "call-site",
                        s.path, s.line, s.function, s.era, s.action, s.reason)
                for s in facts.sites]
    findings.append(_free_path_finding(facts, groups))
    if facts.page_handle_poison_line and (groups.e5 or not groups.rewritable):
        findings.append(Finding(
            "mechanism", MEMORY_FAILURE_C, facts.page_handle_poison_line,
            "page_handle_poison", "E5", "none",
            "soft offline sets PG_hwpoison, releases the page and takes a "
            "reference back itself (79f5f8fab482, v5.10)"))
    decision = _decide(facts, groups)
    eras = {"call site": groups.call_era(),
            "free path": facts.free_path.era or "unknown"}
    return Report(RULE_ID, source.label, kernel_version(source), decision.verdict,
                  decision.summary, eras, tuple(findings) + decision.findings,
                  decision.steps, decision.refusal)


def _helper_findings(facts: TreeFacts) -> list[Finding]:
    findings = [Finding(
        "helper", MEMORY_FAILURE_C, None, HELPER, None,
        "done" if facts.helper_defined and facts.helper_declared else "add",
        "defined and declared" if facts.helper_defined and facts.helper_declared
        else f"absent: added to {MEMORY_FAILURE_C}, declared in {MM_H}")]
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
    if facts.free_path.era != "E4" and facts.free_path.hook_line is None:
        steps.append(STEP_FREE_PATH)
    if not (facts.helper_defined and facts.helper_declared):
        steps.append(STEP_HELPER)
    if any(s.action == "rewrite" for s in facts.sites):
        steps.append(STEP_CALL_SITE)
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
    names = []
    if declarator is None:
        return names
    for parameter in declarator.child_by_field_name("parameters").named_children:
        identifiers = [n for n in walk(parameter, "identifier")]
        if identifiers:
            names.append(node_text(identifiers[-1]))
    return names


def make_free_path(source: FileSource, report: Report) -> StepResult:
    parsed = parse(source.read(PAGE_ALLOC_C), PAGE_ALLOC_C)
    prepare = find_function(parsed, "free_pages_prepare")
    if prepare is None:
        raise RuleRefused(f"{PAGE_ALLOC_C} has no free_pages_prepare(): the "
                          "free-path hook has nowhere to go")
    params = _params(prepare)
    if len(params) < 2:
        raise RuleRefused("free_pages_prepare() does not take (page, order): "
                          "an unknown free path")
    page, order = params[0], params[1]
    # The hook goes after the declarations, assertions and tracepoint at
    # the top, before anything that frees or checks the page.
    body = statements(prepare.body)
    anchor = None
    for statement in body:
        names = {call_name(c) or "" for c in calls(statement)}
        if statement.type == "declaration" or (
                statement.type == "expression_statement" and any(
                    n.startswith(("VM_BUG_ON", "trace_")) for n in names)):
            anchor = statement
            continue
        break
    cleanup = []
    for statement in body:
        names = {call_name(c) for c in calls(statement)}
        if names & CLEANUP_CALLS and statement.type in ("expression_statement",
                                                        "if_statement"):
            if statement.has_error:
                raise UnparseableSite(f"{PAGE_ALLOC_C}:{parsed.line(statement)}: the "
                                      "cleanup in free_pages_prepare() does not parse")
            cleanup.append(statement)
    if anchor is None:
        raise RuleRefused("free_pages_prepare() has no statement to anchor the hook")
    cleanup_text = [_reindent(parsed, s, "\t") for s in cleanup]
    hook = render(TEMPLATES + "free_path_hook.c.j2", page=page, order=order,
                  cleanup=cleanup_text)
    cleanup_names = sorted({call_name(c) for s in cleanup for c in calls(s)} & CLEANUP_CALLS,
                           key=lambda n: ["memcg_kmem_uncharge",
                                          "__memcg_kmem_uncharge_page",
                                          "reset_page_owner"].index(n))
    free_path = classify_free_path(parsed, False)
    return StepResult((insert_after(parsed, anchor, hook, "free-path hook"),),
                      {"cleanup": cleanup_names, "free_path_era": free_path.era,
                       "page_var": page, "order_var": order})


def make_helper(source: FileSource, report: Report) -> StepResult:
    facts = gather(source)
    memory_failure = parse(source.read(MEMORY_FAILURE_C), MEMORY_FAILURE_C)
    mm_h = parse(source.read(MM_H), MM_H)
    edits = []
    if not facts.helper_defined:
        anchor = None
        if facts.caller is not None:
            anchor = find_function(memory_failure, facts.caller.function)
        if anchor is None:
            anchor = find_function(memory_failure, "soft_offline_page")
        definition = render(TEMPLATES + "helper.c.j2", helper=HELPER,
                            take_reference=facts.take_reference)
        if anchor is None:
            edits.append(append_to_file(memory_failure, definition, "helper"))
        else:
            edits.append(insert_before(memory_failure, anchor.node, definition, "helper"))
    if not facts.helper_declared:
        put_page = find_function(mm_h, "put_page")
        if put_page is None:
            raise RuleRefused(f"{MM_H} has no inline put_page() to declare the "
                              "helper after")
        declaration = render(TEMPLATES + "helper_decl.h.j2", helper=HELPER)
        edits.append(insert_after(mm_h, put_page.node, declaration, "helper declaration"))
    return StepResult(tuple(edits), {"take_reference": facts.take_reference,
                                     "helper": HELPER})


def make_call_site(source: FileSource, report: Report) -> StepResult:
    facts = gather(source)
    edits = []
    eras = set()
    sites = [s for s in facts.sites if s.action == "rewrite"]
    for site in sites:
        parsed = site.parsed  # gather() parsed the file already
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
    return StepResult(tuple(edits), {"sites": where, "call_era": sorted(eras)[0],
                                     "functions": sorted({s.function for s in sites
                                                          if s.function})})


def make_ebusy(source: FileSource, report: Report) -> StepResult:
    parsed = parse(source.read(MEMORY_FAILURE_C), MEMORY_FAILURE_C)
    caller = find_soft_offline_caller(parsed)
    if caller is None or not caller.usable:
        return StepResult(())
    function = find_function(parsed, caller.function) if caller.function else None
    has_pfn = function is not None and any(
        normalized(d).startswith("unsignedlongpfn") for d in statements(function.body)
        if d.type == "declaration")
    text = render(TEMPLATES + "ebusy.c.j2", page=caller.page, result=caller.result,
                  pfn="pfn" if has_pfn else f"page_to_pfn({caller.page})")
    return StepResult((continue_after(parsed, caller.check, text, "-EBUSY"),),
                      {"function": caller.function, "helper": HELPER})


# Vlastimil Babka proposed the helper construct in the review: his
# Suggested-by goes on the helper and on its use at the call site.
SUGGESTED = {"suggested": True}
NOT_SUGGESTED = {"suggested": False}
STEP_FREE_PATH = Step("free-path", SUBJECT_FREE_PATH, TEMPLATES + "1-free-path.msg.j2",
                      make_free_path, values=NOT_SUGGESTED)
STEP_HELPER = Step("helper", SUBJECT_HELPER, TEMPLATES + "2-helper.msg.j2",
                   make_helper, values=SUGGESTED)
STEP_CALL_SITE = Step("call-site", SUBJECT_CALL_SITE, TEMPLATES + "3-call-site.msg.j2",
                      make_call_site, fixes_subject=FIXES_SUBJECT, values=SUGGESTED)
STEP_EBUSY = Step("ebusy", SUBJECT_EBUSY, TEMPLATES + "4-ebusy.msg.j2", make_ebusy,
                  values=NOT_SUGGESTED)
ALL_STEPS = (STEP_FREE_PATH, STEP_HELPER, STEP_CALL_SITE, STEP_EBUSY)

RULE = Rule(
    id=RULE_ID,
    title="poison a soft-offlined page only when dropping its last reference",
    default_branch=RULE_ID,
    scan=scan,
    steps=steps_for,
    templates=tuple(TEMPLATES + name for name in (
        "free_path_hook.c.j2", "helper.c.j2", "helper_decl.h.j2",
        "call_site_e2.c.j2", "call_site_e3.c.j2", "ebusy.c.j2",
        "1-free-path.msg.j2", "2-helper.msg.j2", "3-call-site.msg.j2",
        "4-ebusy.msg.j2", "cover.msg.j2")),
    site_words=SITE_WORDS,
    cover_template=TEMPLATES + "cover.msg.j2",
    template_values={"helper": HELPER},
    review=hwpoison_review.review,
)
