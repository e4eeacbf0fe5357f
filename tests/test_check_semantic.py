"""The semantic check: the rules' reviews run on the code after each patch.

The hwpoison rule's review flags the race in an E3 fixture's untouched
migrate.c and not in the fixed one; through `patchgen check`, a patch is
blamed for what it introduces, warned about what it leaves in code it
changes, and the series for what is left at its end.
"""

import re

from checkhelp import (applied_tree, check_json, commit_edit, failures, format_series,
                       git, line_of, new_branch, result_for, series_commits)
from patchgen.engine.rule import REVIEW_FAIL
from patchgen.engine.registry import get_rule
from patchgen.rules.hwpoison.review import review
from patchgen.engine.sources import open_git_tree, open_worktree


def race_line(migrate_c: str) -> int:
    """The put_page(page) that a poisoning follows within a few lines."""
    lines = migrate_c.split("\n")
    for index, line in enumerate(lines):
        if line.strip() == "put_page(page);" and any(
                "test_set_page_hwpoison(page)" in later for later in lines[index + 1:index + 10]):
            return index + 1
    raise AssertionError("no put_page() followed by test_set_page_hwpoison()")


def test_review_flags_the_race_in_untouched_migrate_c(fixture_tree):
    tree = fixture_tree("e3-v4.14")
    findings = review(open_worktree(tree))
    races = [f for f in findings if f.kind == "race"]
    migrate_c = (tree / "mm" / "migrate.c").read_text()
    assert [(f.path, f.line, f.function, f.action) for f in races] == \
        [("mm/migrate.c", race_line(migrate_c), "unmap_and_move", REVIEW_FAIL)]
    assert races[0].message.startswith("put_page(page) and then "
                                       "test_set_page_hwpoison(page) after a migration")
    # memory_failure() poisons a page and may drop its last reference, and
    # this tree's free path has no hook: flagged at the release.
    unhooked = [f for f in findings if f.kind == "unhooked-poison"]
    memory_failure_c = (tree / "mm" / "memory-failure.c").read_text()
    body = memory_failure_c[memory_failure_c.index("int memory_failure("):]
    release = line_of(body, "put_hwpoison_page(p);") + \
        line_of(memory_failure_c, "int memory_failure(") - 1
    assert [(f.path, f.line, f.function) for f in unhooked] == \
        [("mm/memory-failure.c", release, "memory_failure")]
    # The engine reaches the same review through the rule.
    assert get_rule("hwpoison-put-last").review is review


def test_review_does_not_flag_the_fixed_tree(fixture_tree):
    tree = applied_tree(fixture_tree, "e3-v4.14")
    git_tree = open_git_tree(tree)
    fixed = git_tree.at(git_tree.resolve("hwpoison-put-last"))
    assert "hwpoison_put_last_page(page);" in fixed.read("mm/migrate.c").decode()
    assert review(fixed) == []


def test_review_of_a_tree_without_the_rule_files_is_empty(tmp_path):
    (tmp_path / "mm").mkdir()
    (tmp_path / "Makefile").write_text("VERSION = 6\n")
    (tmp_path / "mm" / "migrate.c").write_text("void f(void) { put_page(page); }\n")
    assert review(open_worktree(tmp_path)) == []


def test_a_helper_added_but_never_called(fixture_tree, tmp_path, capsys):
    """Patches 1 to 4 only: the helper stays unused at the series' end."""
    tree = applied_tree(fixture_tree, "e3-v4.14")
    commits = series_commits(tree)
    new_branch(tree, "helper-only", "master", commits[:4])
    series = format_series(tree, "master", "helper-only", tmp_path / "series")
    code, document, _ = check_json(capsys, series, tree)
    assert code == 1
    semantic = [f for f in failures(document) if f["check"] == "semantic"]
    assert len(semantic) == 1 and semantic[0]["label"] == "series"
    helper_line = line_of(git(tree, "show", "helper-only:mm/memory-failure.c"),
                          "bool hwpoison_put_last_page(struct page *page)")
    assert semantic[0]["description"] == (
        "at the end of the series: unused-helper at mm/memory-failure.c:"
        f"{helper_line}: hwpoison_put_last_page(): hwpoison_put_last_page() is "
        "defined but nothing calls it")
    # Patch 4 itself passes: a helper one patch before its user is normal.
    second = result_for(document, "4/4", "semantic")
    assert second["state"] == "success" and "pending" in second["description"]


def test_a_patch_that_changes_migrate_c_and_leaves_the_race(fixture_tree, tmp_path,
                                                            capsys):
    tree = applied_tree(fixture_tree, "e3-v4.14")
    worktree = new_branch(tree, "comment-only", "master", series_commits(tree)[:1])
    commit_edit(worktree, "mm/migrate.c", "odd as it is, that is how PG_hwpoison",
                "odd as it is, this is how PG_hwpoison",
                "mm/migrate: reword a comment about poisoning")
    series = format_series(tree, "master", "comment-only", tmp_path / "series")
    code, document, _ = check_json(capsys, series, tree)
    line = race_line(git(tree, "show", "comment-only:mm/migrate.c"))
    second = result_for(document, "2/2", "semantic")
    assert second["state"] == "warning"
    assert second["description"].startswith(
        f"leaves race at mm/migrate.c:{line}: unmap_and_move(): put_page(page) and then")
    # Patch 1 (the mutex, memory-failure.c) does not touch migrate.c, nor
    # the function of memory-failure.c that poisons and puts: not its business.
    assert result_for(document, "1/2", "semantic")["state"] == "success"
    assert result_for(document, "series", "semantic")["state"] == "warning"
    assert not [f for f in failures(document) if f["check"] == "semantic"]


def test_a_patch_that_brings_the_race_back(fixture_tree, tmp_path, capsys):
    """The full series plus a revert of its call-site patch."""
    tree = applied_tree(fixture_tree, "e3-v4.14")
    commits = series_commits(tree)
    worktree = new_branch(tree, "reverted", "hwpoison-put-last")
    git(worktree, "revert", "--no-edit", commits[4])
    git(worktree, "commit", "--amend", "-q", "-m",
        "Revert \"mm/migrate: poison a soft-offlined page only on its last put\"\n\n"
        "Go back to the old order.\n\nSigned-off-by: Fixture Author <fixture@example.org>")
    series = format_series(tree, "master", "reverted", tmp_path / "series")
    code, document, _ = check_json(capsys, series, tree)
    assert code == 1
    line = race_line(git(tree, "show", "reverted:mm/migrate.c"))
    last = result_for(document, "8/8", "semantic")
    assert last["state"] == "fail"
    assert last["description"].startswith(
        f"introduces race at mm/migrate.c:{line}: unmap_and_move()")
    # The invalidate path still calls the helper: it is not left unused.
    assert not any("unused-helper" in d for d in last["details"])
    for number in range(1, 8):
        assert result_for(document, f"{number}/8", "semantic")["state"] == "success"
    end = result_for(document, "series", "semantic")
    # The race was in the base too: the series changes migrate.c and leaves
    # it, a warning at the end (the patch that brought it back fails).
    assert end["state"] == "warning"
    assert f"still present in a file the series changes: race at mm/migrate.c:{line}: " \
        "unmap_and_move()" in "\n".join(end["details"])


def test_searches_after_each_patch_match_a_grep_of_the_commit(fixture_tree):
    """check answers a rule's files_containing() from the base's grep and
    the files the series changed; it must equal grepping each commit."""
    from patchgen.review.check import AfterPatches, BaseGrep
    from patchgen.rules.hwpoison.rule import SITE_WORDS
    tree = applied_tree(fixture_tree, "e3-v4.14")
    git_tree = open_git_tree(tree)
    base = BaseGrep(git_tree.at(git_tree.resolve("master")))
    changed = set()
    words = list(SITE_WORDS) + ["put_page_testzero", "PageHWPoison"]
    for commit in series_commits(tree):
        changed |= set(git(tree, "diff", "--name-only", f"{commit}~1", commit).split())
        after = AfterPatches(git_tree.at(commit), base, frozenset(changed))
        for suffixes in ((".c",), (".c", ".h")):
            assert after.files_containing(words, suffixes) == \
                git_tree.at(commit).files_containing(words, suffixes)
    # The helper's name appears only with the series: the answers changed.
    assert "mm/memory-failure.c" not in base.files_containing(["put_page_testzero"], (".c",))
    assert "mm/memory-failure.c" in after.files_containing(["put_page_testzero"], (".c",))
