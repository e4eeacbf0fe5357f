"""Reviewer checks for rule hwpoison-put-last, on the code of one commit.

`patchgen check` runs review() on the code before and after each patch of
any series, and reports what a patch introduces (or leaves in code it
changes).  Three problems, each named at file:line:

  race             put_page() and only then the poisoning, after a
                   migration for MR_MEMORY_FAILURE (the race of the LKML
                   review, 5704C168.1060803@suse.cz);
  unused-helper    hwpoison_put_last_page() defined but called nowhere (a
                   series may add it one patch before its first user, so
                   this is wrong only at the end of a series);
  unhooked-poison  a page poisoned and then released while
                   free_pages_prepare() has no PageHWPoison early return:
                   the poisoned page can reach the free lists (the helper
                   needs the hook first; memory_failure() relies on it too).

The facts come from the rule's own scan (hwpoison.gather); this module
only judges them.  Messages hold no line numbers: the engine matches a
finding across commits by its kind, file, function and message.
"""

from tree_sitter import Node

from patchgen.engine.parse import (call_args, call_name, calls, find_function, functions,
                            normalized, parse, statements)
from patchgen.engine.rule import REVIEW_FAIL, REVIEW_PENDING, Finding
from patchgen.engine.sources import FileSource

# Calls that may free a page when they drop the last reference.
RELEASERS = frozenset({"put_page", "__put_page", "put_hwpoison_page", "folio_put",
                       "__free_page", "__free_pages", "free_hot_cold_page",
                       "free_unref_page"})


def _required(source: FileSource) -> bool:
    return all(source.exists(path) for path in (
        hwpoison.MIGRATE_C, hwpoison.MEMORY_FAILURE_C, hwpoison.PAGE_ALLOC_C,
        hwpoison.MM_H))


def race_findings(facts) -> list[Finding]:
    findings = []
    for site in facts.sites:
        if site.shape != "put-then-poison" or site.action not in ("rewrite", "refuse"):
            continue
        findings.append(Finding(
            "race", site.path, site.line, site.function, site.era, REVIEW_FAIL,
            f"{site.releaser}({site.page}) and then {site.poisoner}({site.page}) "
            "after a migration for MR_MEMORY_FAILURE: the page can be freed and "
            "reused before it is poisoned"))
    return findings


def unused_helper_findings(source: FileSource, facts) -> list[Finding]:
    if not facts.helper_defined:
        return []
    if any(site.shape == "helper-call" for site in facts.sites):
        return []
    parsed = parse(source.read(hwpoison.MEMORY_FAILURE_C), hwpoison.MEMORY_FAILURE_C)
    helper = find_function(parsed, hwpoison.HELPER)
    line = parsed.line(helper.node) if helper is not None else None
    return [Finding("unused-helper", hwpoison.MEMORY_FAILURE_C, line, hwpoison.HELPER,
                    None, REVIEW_PENDING,
                    f"{hwpoison.HELPER}() is defined but nothing calls it")]


def _inside(node: Node, outer: Node) -> bool:
    return outer.start_byte <= node.start_byte and node.end_byte <= outer.end_byte


def _reaches(first: Node, later: Node, body: Node) -> bool:
    """Whether control can go from *first* to *later* (which comes after it
    in the text): not when they sit in the two branches of one if, nor
    when the block holding *first* leaves the function (return, goto...)
    before the block holding *later*."""
    node: Node | None = first
    while node is not None and node != body:
        parent = node.parent
        if parent is not None and parent.type == "if_statement" and _inside(later, parent):
            consequence = parent.child_by_field_name("consequence")
            alternative = parent.child_by_field_name("alternative")
            for mine, other in ((consequence, alternative), (alternative, consequence)):
                if mine is not None and other is not None and _inside(first, mine) \
                        and _inside(later, other):
                    return False
        if parent is not None and parent.type == "compound_statement" and \
                not _inside(later, parent):
            for statement in statements(parent):
                if statement.start_byte >= node.end_byte and statement.type in (
                        "return_statement", "goto_statement", "break_statement",
                        "continue_statement"):
                    return False
        node = parent
    return True


def poison_then_release(parsed) -> list[tuple[str, int, str, str | None, str | None]]:
    """(function, line, page, poisoner, releaser) for each page a function
    poisons and can release afterwards."""
    found = []
    for function in functions(parsed):
        seen = set()
        for poison in calls(function.body, hwpoison.POISON_SETTERS):
            args = call_args(poison)
            if not args:
                continue
            page = normalized(args[0])
            for release in calls(function.body, RELEASERS):
                release_args = call_args(release)
                if release.start_byte > poison.end_byte and release_args and \
                        normalized(release_args[0]) == page and page not in seen and \
                        _reaches(poison, release, function.body):
                    seen.add(page)
                    found.append((function.name, parsed.line(release), page,
                                  call_name(poison), call_name(release)))
                    break
    return found


def unhooked_poison_findings(source: FileSource, facts) -> list[Finding]:
    free_path = facts.free_path
    # E4 keeps poisoned pages in buddy on purpose; with the hook, or with
    # no free_pages_prepare() to put it in, there is nothing to report.
    if free_path.era == "E4" or free_path.hook_line is not None or free_path.line is None:
        return []
    findings = []
    for path in source.files_containing(sorted(hwpoison.POISON_SETTERS), (".c",)):
        parsed = parse(source.read(path), path)
        for function, line, page, poisoner, releaser in poison_then_release(parsed):
            findings.append(Finding(
                "unhooked-poison", path, line, function, free_path.era, REVIEW_FAIL,
                f"{poisoner}({page}) and then {releaser}({page}), but "
                f"free_pages_prepare() ({hwpoison.PAGE_ALLOC_C}) has no PageHWPoison "
                "early return: the poisoned page can reach the free lists"))
    return findings


def review(source: FileSource) -> list[Finding]:
    """What a reviewer of this rule's subject would object to in *source*."""
    if not _required(source):
        return []
    facts = hwpoison.gather(source)
    return (race_findings(facts) + unused_helper_findings(source, facts)
            + unhooked_poison_findings(source, facts))


# Last, and the module rather than its names: hwpoison.py imports this
# module to register review(), so whichever of the two is imported first,
# review() must exist before hwpoison.py needs it.
from patchgen.rules.hwpoison import rule as hwpoison  # noqa: E402
