"""The hwpoison-put-last rule: snippets it must and must not match, and
what scan concludes on each fixture era."""

from pathlib import Path

import pytest

from patchgen.infra.errors import RuleRefused
from patchgen.engine.fixtures import fixture_names
from patchgen.engine.parse import parse
from patchgen.engine.rule import (ALREADY_APPLIED, NOT_AFFECTED, REFUSED,
                                  REWRITE)
from patchgen.engine.registry import get_rule
from patchgen.engine.snippets import MUST_MATCH, MUST_NOT_MATCH, expectation, run_snippets
from patchgen.rules import hwpoison as hwpoison_package
from patchgen.rules.hwpoison.rule import (HELPER, PREREQUISITE, find_helper_calls,
                                     find_put_then_poison_sites)
from patchgen.engine.sources import open_worktree

SNIPPETS = Path(hwpoison_package.__file__).parent / "snippets"
RULE = get_rule("hwpoison-put-last")


@pytest.mark.parametrize("result", run_snippets(RULE, SNIPPETS), ids=lambda r: r.name)
def test_snippet(result):
    # The rule's own snippets, as patchgen rule-test runs them.
    assert result.ok, result.line()


@pytest.mark.parametrize("snippet", sorted((SNIPPETS / MUST_MATCH).glob("e*.c")),
                         ids=lambda p: p.stem)
def test_call_site_snippet_has_one_put_then_poison_site(snippet):
    # The call sites of each era: one site of the put-then-poison shape
    # (rule-test checks its era, action and page).
    expected = expectation(snippet)
    assert expected is not None and {"era", "action", "page"} <= set(expected)
    sites = [s for s in find_put_then_poison_sites(parse(snippet.read_bytes(), snippet.name))
             if s.shape == "put-then-poison"]
    assert len(sites) == 1, [s.reason for s in sites]


def test_must_not_match_covers_the_near_misses():
    names = {p.stem for p in (SNIPPETS / MUST_NOT_MATCH).glob("*.c")}
    assert {"already_applied", "poison_then_put", "other_page"} <= names


def test_helper_call_is_recognised_as_applied():
    parsed = parse((SNIPPETS / MUST_NOT_MATCH / "already_applied.c").read_bytes())
    calls = find_helper_calls(parsed)
    assert [c.shape for c in calls] == ["helper-call"]
    assert calls[0].page == "page"


# What scan must conclude on each fixture (../shared/KERNEL.md, era table).
EXPECTED = {
    "e1-v4.4": (REFUSED, "E1", "E1"),
    "e1-v4.5": (REFUSED, "E1", "E1"),
    "e2-v4.6": (REWRITE, "E2", "E1"),
    "e2-v4.7": (REWRITE, "E2", "E3"),
    "e3-v4.14": (REWRITE, "E3", "E3"),
    "e4-v4.19": (NOT_AFFECTED, "E4", "E4"),
    "e5-v5.10": (NOT_AFFECTED, "E5", "E5"),
}


def test_every_fixture_has_an_expectation():
    assert sorted(EXPECTED) == fixture_names()


def _line_of(path: Path, text: str) -> int:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not in {path}")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_scan_classifies_each_era(fixture_tree, name):
    tree = fixture_tree(name)
    report = RULE.scan(open_worktree(tree))
    verdict, call_era, free_era = EXPECTED[name]
    assert report.verdict == verdict, report.summary
    assert report.facts == {"call site": call_era, "free path": free_era}
    kinds = {(f.kind, f.path) for f in report.findings}
    assert ("free-path", "mm/page_alloc.c") in kinds
    if verdict == REWRITE:
        assert len(report.steps) == 7
        site = next(f for f in report.findings if f.kind == "call-site")
        lines = (tree / "mm/migrate.c").read_text().splitlines()
        assert lines[site.line - 1].strip() == "put_page(page);"
        assert site.action == "rewrite" and site.function == "unmap_and_move"


def test_e1_refusal_names_the_missing_prerequisite(fixture_tree):
    report = RULE.scan(open_worktree(fixture_tree("e1-v4.5")))
    assert PREREQUISITE in report.summary
    assert "__put_page" not in report.summary
    assert report.refusal_code is RuleRefused


def test_v44_refusal_names_put_page_too(fixture_tree):
    report = RULE.scan(open_worktree(fixture_tree("e1-v4.4")))
    assert PREREQUISITE in report.summary
    assert "__put_page()" in report.summary


def test_e3_call_site_line_and_related_sites(fixture_tree):
    tree = fixture_tree("e3-v4.14")
    report = RULE.scan(open_worktree(tree))
    migrate = tree / "mm/migrate.c"
    call = next(f for f in report.findings if f.kind == "call-site")
    # The site starts at the put_page() of the MIGRATEPAGE_SUCCESS branch.
    lines = migrate.read_text().splitlines()
    assert lines[call.line - 1].strip() == "put_page(page);"
    assert "MIGRATEPAGE_SUCCESS" in lines[call.line - 2]
    related = sorted((f.path, f.function) for f in report.findings
                     if f.kind == "related-site")
    assert related == [("mm/migrate.c", "unmap_and_move_huge_page")]
    assert all(f.action == "report" for f in report.findings if f.kind == "related-site")
    # The invalidate path of soft offline has the same race and is rewritten.
    invalidate = [(f.path, f.function, f.action) for f in report.findings
                  if f.kind == "invalidate-site"]
    assert invalidate == [("mm/memory-failure.c", "__soft_offline_page", "rewrite")]


def test_e4_is_not_affected_and_gets_no_hook(fixture_tree):
    tree = fixture_tree("e4-v4.19")
    report = RULE.scan(open_worktree(tree))
    assert "set_hwpoison_free_buddy_page()" in report.summary
    assert "(d4ae9916ea29, v4.19)" in report.summary     # not v4.18
    assert "reports success without poisoning" in report.summary
    free = next(f for f in report.findings if f.kind == "free-path")
    assert free.action == "none" and "never add a hook" in free.message
    assert f"line {_line_of(tree / 'mm/page_alloc.c', 'bool set_hwpoison_free_buddy_page(')}" \
        in free.message
    assert report.steps == ()


def test_e5_names_the_upstream_mechanisms_where_they_are(fixture_tree):
    tree = fixture_tree("e5-v5.10")
    report = RULE.scan(open_worktree(tree))
    mechanism = next(f for f in report.findings if f.kind == "mechanism")
    assert mechanism.function == "page_handle_poison"
    assert mechanism.line == _line_of(tree / "mm/memory-failure.c",
                                      "static bool page_handle_poison(")
    free = next(f for f in report.findings if f.kind == "free-path")
    assert free.action == "done"
    assert f"line {_line_of(tree / 'mm/page_alloc.c', 'PageHWPoison(page)) && !order')}" \
        in free.message
    call = next(f for f in report.findings if f.kind == "call-site")
    assert call.label == "E5" and call.action == "none"


def test_a_tree_with_the_series_applied_is_already_applied(fixture_tree, tmp_path):
    from patchgen.engine.apply import apply_rule
    from patchgen.infra.runner import run
    tree = fixture_tree("e3-v4.14")
    apply_rule(tree, RULE.id)
    run(["git", "-C", tree, "checkout", "-q", RULE.default_branch])
    report = RULE.scan(open_worktree(tree))
    assert report.verdict == ALREADY_APPLIED, report.summary
    assert HELPER in report.summary


def test_a_partly_applied_series_gets_only_the_missing_patches(fixture_tree):
    from patchgen.engine.apply import apply_rule
    from patchgen.infra.runner import run
    tree = fixture_tree("e2-v4.7")
    full = apply_rule(tree, RULE.id)
    # A tree that already has the free-path hook (patch 1) and nothing else.
    run(["git", "-C", tree, "checkout", "-q", full.series.commits[0].sha])
    again = apply_rule(tree, RULE.id, branch="rest")
    assert again.report.verdict == REWRITE
    assert [c.subject for c in again.series.commits] == \
        [c.subject for c in full.series.commits[1:]]
    final = run(["git", "-C", tree, "diff", RULE.default_branch, "rest"]).stdout
    assert final == "", "the same end result either way"


def test_bytes_that_are_not_utf8_do_not_stop_a_scan(fixture_tree):
    tree = fixture_tree("e3-v4.14", git=False)
    migrate = tree / "mm/migrate.c"
    data = migrate.read_bytes().replace(b"Obtain the lock on page",
                                        b"Obtain (\xe9crit par M\xfcller) the lock on page")
    migrate.write_bytes(data)
    report = RULE.scan(open_worktree(tree))
    assert report.verdict == REWRITE
