"""The series apply makes on every fixture era that takes it: bisectable,
kernel style, honest commit messages, checkpatch-clean."""

import re

import pytest

from conftest import need
from kbuild import syntax_errors
from patchgen.apply import apply_rule
from patchgen.checkpatch import run_checkpatch
from patchgen.edits import columns
from patchgen.fixtures import fixture_names
from patchgen.gitenv import FIXED_IDENTITY
from patchgen.parse import parse
from patchgen.rules import REWRITE, get_rule
from patchgen.rules.hwpoison import FIXES_SUBJECT, HELPER
from patchgen.runner import run
from patchgen.tree import open_worktree

RULE = get_rule("hwpoison-put-last")
SIGNER = "Fixture Author <fixture@example.org>"


def rewriting_fixtures():
    return [name for name in fixture_names() if name.startswith(("e2", "e3"))]


def test_rewriting_fixtures_are_the_e2_and_e3_eras(fixture_tree):
    found = [n for n in fixture_names()
             if RULE.scan(open_worktree(fixture_tree(n))).verdict == REWRITE]
    assert found == rewriting_fixtures()


def git(tree, *args) -> str:
    return run(["git", "-C", tree, *args]).stdout


@pytest.fixture(params=rewriting_fixtures())
def applied(request, fixture_tree):
    tree = fixture_tree(request.param)
    result = apply_rule(tree, RULE.id)
    return request.param, tree, result


def test_every_patch_builds_with_memory_failure_on_and_off(applied):
    name, tree, result = applied
    need(run(["gcc", "--version"], check=False).returncode == 0, "gcc")
    assert syntax_errors(tree) == [], "the base tree itself must build"
    try:
        for commit in result.series.commits:
            git(tree, "checkout", "-q", commit.sha)
            assert syntax_errors(tree) == [], f"{name}: {commit.subject}"
    finally:
        git(tree, "checkout", "-q", "master")


def test_series_order_and_subjects(applied):
    name, tree, result = applied
    subjects = [c.subject for c in result.series.commits]
    assert subjects == list(result.report.steps)
    assert subjects[0].startswith("mm/page_alloc:")
    assert subjects[1] == f"mm: hwpoison: add {HELPER}()"
    assert subjects[2].startswith("mm/migrate:")
    assert len(set(subjects)) == 4
    assert all(len(s) <= 75 for s in subjects)
    log = git(tree, "log", "--format=%s", f"master..{RULE.default_branch}")
    assert log.splitlines() == subjects[::-1]
    files = [git(tree, "show", "--format=", "--name-only", c.sha).split()
             for c in result.series.commits]
    assert files == [["mm/page_alloc.c"], ["include/linux/mm.h", "mm/memory-failure.c"],
                     ["mm/migrate.c"], ["mm/memory-failure.c"]]


def test_commit_messages_follow_the_series_conventions(applied):
    name, tree, result = applied
    for number, commit in enumerate(result.series.commits, 1):
        message = git(tree, "show", "-s", "--format=%B", commit.sha).rstrip("\n")
        lines = message.splitlines()
        assert lines[-1] == f"Signed-off-by: {SIGNER}"
        assert "Link: https://lore.kernel.org/r/5704C168.1060803@suse.cz" in lines
        assert ("Suggested-by: Vlastimil Babka <vbabka@suse.cz>" in lines) == (number in (2, 3))
        assert not any(l.startswith("Fixes:") for l in lines), "no history, no Fixes:"
        assert not any("stable@" in l for l in lines)
        assert f"patchgen" in message and f"(rule {RULE.id})" in " ".join(lines)
        body = [l for l in lines[2:] if not re.match(r"^[A-Z][a-z-]+(-by)?: ", l)]
        assert all(len(l) <= 75 for l in body), [l for l in body if len(l) > 75]
        author = git(tree, "show", "-s", "--format=%an <%ae>", commit.sha).strip()
        assert author == SIGNER


def test_why_not_backport_is_answered(applied):
    name, tree, result = applied
    messages = " ".join(git(tree, "log", "--format=%B",
                            f"master..{RULE.default_branch}").split())
    assert '("mm: soft-offline: close the race against page allocation")' in messages
    assert '("mm,hwpoison: rework soft offline for in-use pages")' in messages
    assert "minimal fix instead of a backport" in messages


def test_added_code_is_kernel_style(applied):
    name, tree, result = applied
    diff = git(tree, "diff", "master", RULE.default_branch)
    added = [l[1:] for l in diff.splitlines() if l.startswith("+") and not l.startswith("+++")]
    assert added
    assert all(columns(l) <= 80 for l in added), [l for l in added if columns(l) > 80]
    assert not any(re.match(r"^ +\S", l) and not l.startswith(" *") for l in added), \
        "indentation is tabs"
    assert not any(l != l.rstrip() for l in added), "no trailing white space"
    helper = git(tree, "show", f"{RULE.default_branch}~2:mm/memory-failure.c")
    assert f"/**\n * {HELPER} - " in helper, "kernel-doc on the new function"


def test_output_parses_with_no_new_errors(applied):
    name, tree, result = applied
    for path in ("mm/migrate.c", "mm/page_alloc.c", "mm/memory-failure.c",
                 "include/linux/mm.h"):
        before = parse(git(tree, "show", f"master:{path}").encode()).error_count()
        after = parse(git(tree, "show", f"{RULE.default_branch}:{path}").encode()).error_count()
        assert after <= before, path


def test_series_is_checkpatch_clean(applied, linux61, tmp_path):
    name, tree, result = applied
    run(["git", "-C", tree, "format-patch", "-q", "-o", tmp_path,
         f"master..{RULE.default_branch}"])
    patches = sorted(tmp_path.glob("*.patch"))
    assert len(patches) == 4
    # From a folder with no git history: checkpatch can look nothing up,
    # so a commit reference in the wrong form would be an ERROR here.
    nowhere = tmp_path / "no-git"
    nowhere.mkdir()
    for patch in patches:
        report = run_checkpatch(linux61, patch, strict=True, max_line_length=80,
                                cwd=nowhere)
        assert (report.errors, report.warnings) == (0, 0), \
            [(m.level, m.type, m.text) for m in report.messages]


def test_fixes_tag_only_when_the_commit_is_in_history(fixture_tree):
    tree = fixture_tree("e3-v4.14")
    run(["git", "-C", tree, "commit", "-q", "--allow-empty", "-m", FIXES_SUBJECT],
        env=FIXED_IDENTITY)
    introducing = git(tree, "rev-parse", "HEAD").strip()
    run(["git", "-C", tree, "commit", "-q", "--allow-empty", "-m", "later work"],
        env=FIXED_IDENTITY)
    result = apply_rule(tree, RULE.id)
    messages = [git(tree, "show", "-s", "--format=%B", c.sha) for c in result.series.commits]
    fixes = [m for m in messages if "Fixes:" in m]
    assert len(fixes) == 1 and "mm/migrate:" in fixes[0].splitlines()[0]
    assert f'Fixes: {introducing[:12]} ("{FIXES_SUBJECT}")' in fixes[0]
