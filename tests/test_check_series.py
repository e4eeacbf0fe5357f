"""patchgen check on generated series, and on damaged ones.

The generated series of every fixture era passes every check, with the
real checkpatch.pl of the Debian 6.1 tree and the fixture build (gcc
-fsyntax-only).  Each damaged series fails with exactly one finding, the
right one, through the CLI: an exit code, never a traceback.
"""

import pytest

from checkhelp import (applied_tree, check_json, copy_series, edit, failures,
                       format_series, generated_series, git, line_of, new_branch,
                       patch_files, result_for, series_commits, subject_of,
                       tree_state)
from conftest import need_tool
from patchgen.engine.apply import apply_rule
from patchgen.review.check import PATCH_CHECKS
from patchgen.engine.fixtures import fixture_names
from patchgen.engine.rule import REWRITE
from patchgen.engine.scan import scan_tree

# The rule these tests run (there is no default rule: name it)
HWPOISON = "hwpoison-put-last"


@pytest.fixture(scope="session")
def checkpatch_pl(linux61):
    need_tool("perl")
    return linux61 / "scripts" / "checkpatch.pl"


@pytest.fixture
def e3_series(fixture_tree, tmp_path):
    """The E3 fixture's generated series: (tree, series folder)."""
    need_tool("gcc")
    return generated_series(fixture_tree, "e3-v4.14", tmp_path / "series")


def only_failure(document) -> dict:
    found = failures(document)
    assert len(found) == 1, [(f["label"], f["check"], f["description"]) for f in found]
    return found[0]


# --- what apply makes passes ------------------------------------------------------

@pytest.mark.parametrize("era", fixture_names())
def test_generated_series_passes_every_check(era, fixture_tree, tmp_path, capsys,
                                             checkpatch_pl):
    need_tool("gcc")
    tree = fixture_tree(era)
    report = scan_tree(tree, HWPOISON)
    if report.verdict != REWRITE:
        # Nothing to mail for this era (not affected, already applied,
        # refused): the rule plans no patch, so there is no series to check.
        assert report.steps == ()
        return
    result = apply_rule(tree, HWPOISON)
    series = format_series(tree, "master", "hwpoison-put-last", tmp_path / "series")
    before = tree_state(tree)
    code, document, err = check_json(capsys, series, tree, "--build",
                                     "--checkpatch", checkpatch_pl)
    assert err == ""
    assert code == 0
    assert document["exit_code"] == 0
    assert document["base"]["from"] == "base-commit"
    assert document["skipped"] == []
    not_passed = [(r["label"], r["check"], r["description"])
                  for r in document["results"] if r["state"] != "success"]
    assert not_passed == []
    patches = len(patch_files(series))
    assert patches == len(result.series.commits)
    # Every per-patch check ran on every patch, and the series checks ran.
    for number in range(1, patches + 1):
        label = f"{number}/{patches}"
        assert [r["check"] for r in document["results"] if r["label"] == label] \
            == list(PATCH_CHECKS)
    series_checks = {r["check"] for r in document["results"] if r["patch"] is None}
    assert series_checks == {"cover-letter", "numbering", "version", "size",
                             "base-commit", "threading", "semantic", "build"}
    # The user's tree is exactly as it was.
    assert tree_state(tree) == before


def test_a_branch_of_the_tree_is_a_series(fixture_tree, capsys, checkpatch_pl):
    tree = applied_tree(fixture_tree, "e3-v4.14")
    code, document, _ = check_json(capsys, "hwpoison-put-last", tree,
                                   "--checkpatch", checkpatch_pl)
    assert code == 0
    assert document["series"]["kind"] == "range"
    assert document["base"]["commit"] == git(tree, "rev-parse", "master").strip()
    skipped = {(s["label"], s["check"]) for s in document["skipped"]}
    # Mail-only checks do not apply to commits that are not mail yet.
    assert skipped == {("series", "cover-letter"), ("series", "numbering"),
                       ("series", "version"), ("series", "threading")}
    assert failures(document) == []


# --- damaged series: one clear finding each ------------------------------------

def test_signed_off_by_removed(e3_series, tmp_path, capsys, checkpatch_pl):
    tree, series = e3_series
    damaged = copy_series(series, tmp_path / "damaged")
    second = patch_files(damaged)[1]
    edit(second, "Signed-off-by: Fixture Author <fixture@example.org>\n", "")
    code, document, err = check_json(capsys, damaged, tree, "--checkpatch", checkpatch_pl)
    assert code == 1 and "Traceback" not in err
    failure = only_failure(document)
    assert (failure["label"], failure["check"]) == ("2/7", "signoff")
    assert failure["state"] == "fail" and failure["context"] == "patchgen-signoff"
    assert "no Signed-off-by" in failure["description"]
    assert "Fixture Author <fixture@example.org>" in failure["description"]
    # checkpatch.pl says the same; it is reported once, by signoff.
    checkpatch = result_for(document, "2/7", "checkpatch")
    assert checkpatch["state"] == "success"
    assert "left to signoff" in checkpatch["description"]


def test_reordered_series_poisons_before_the_hook(fixture_tree, tmp_path, capsys,
                                                  checkpatch_pl):
    """Helper (patch 4) before the free-path hook (patch 3): it applies and
    compiles, but the helper frees poisoned pages while nothing keeps them
    off the free lists."""
    need_tool("gcc")
    tree = applied_tree(fixture_tree, "e3-v4.14")
    reorder(tree, [1, 2, 4, 3, 5, 6, 7])
    series = format_series(tree, "master", "reordered", tmp_path / "series")
    code, document, err = check_json(capsys, series, tree, "--build",
                                     "--checkpatch", checkpatch_pl)
    assert code == 1 and "Traceback" not in err
    failure = only_failure(document)
    assert (failure["label"], failure["check"]) == ("3/7", "semantic")
    helper_text = git(tree, "show", "reordered~4:mm/memory-failure.c")
    put = line_of(helper_text[helper_text.index("bool hwpoison_put_last_page("):],
                  "__put_page(page);")
    put += line_of(helper_text, "bool hwpoison_put_last_page(") - 1
    assert failure["description"].startswith(
        f"introduces unhooked-poison at mm/memory-failure.c:{put}: "
        "hwpoison_put_last_page()")


def test_reordered_series_does_not_compile(fixture_tree, tmp_path, capsys,
                                           checkpatch_pl):
    """The call site (patch 5) before the helper (patch 4): gcc stops at
    the undeclared helper; the patch after it builds again."""
    need_tool("gcc")
    tree = applied_tree(fixture_tree, "e3-v4.14")
    reorder(tree, [1, 2, 3, 5, 4, 6, 7])
    series = format_series(tree, "master", "reordered", tmp_path / "series")
    code, document, err = check_json(capsys, series, tree, "--build",
                                     "--checkpatch", checkpatch_pl)
    assert code == 1 and "Traceback" not in err
    failure = only_failure(document)
    assert (failure["label"], failure["check"]) == ("4/7", "build")
    migrate = git(tree, "show", "reordered~3:mm/migrate.c")
    line = line_of(migrate, "hwpoison_put_last_page(page);")
    assert failure["description"].startswith(f"does not build: mm/migrate.c:{line}: error: ")
    assert "implicit declaration of function 'hwpoison_put_last_page'" in failure["description"]
    assert result_for(document, "5/7", "build")["state"] == "success"


def reorder(tree, order: list[int]) -> None:
    """Branch `reordered`: the series' commits cherry-picked in *order*."""
    commits = series_commits(tree)
    worktree = new_branch(tree, "reordered", "master",
                          [commits[number - 1] for number in order])
    git(tree, "worktree", "remove", str(worktree))


def test_body_line_of_90_columns(e3_series, tmp_path, capsys, checkpatch_pl):
    tree, series = e3_series
    damaged = copy_series(series, tmp_path / "damaged")
    third = patch_files(damaged)[4]      # the call site: it has a Suggested-by
    long_line = "Without this hook, a poisoned page that is freed reaches the " \
                "per-cpu lists, and is reused."
    assert len(long_line) == 90
    edit(third, "\nSuggested-by:", f"\n{long_line}\n\nSuggested-by:")
    code, document, err = check_json(capsys, damaged, tree, "--checkpatch", checkpatch_pl)
    assert code == 1 and "Traceback" not in err
    failure = only_failure(document)
    assert (failure["label"], failure["check"]) == ("5/7", "body")
    line = line_of(third.read_text(), long_line)
    assert failure["description"].startswith(f"{third.name}:{line}: a commit message "
                                             "line of 90 columns")


def test_fixes_with_unknown_id(e3_series, tmp_path, capsys, checkpatch_pl):
    tree, series = e3_series
    damaged = copy_series(series, tmp_path / "damaged")
    third = patch_files(damaged)[4]
    unknown = "0123456789ab"
    assert git(tree, "rev-parse", "--verify", "--quiet", "HEAD").strip()
    edit(third, "\nSuggested-by:",
         f'\nFixes: {unknown} ("mm/hwpoison: fix race between soft_offline_page '
         'and unpoison_memory")\nSuggested-by:')
    code, document, err = check_json(capsys, damaged, tree, "--checkpatch", checkpatch_pl)
    assert code == 1 and "Traceback" not in err
    failure = only_failure(document)
    assert (failure["label"], failure["check"]) == ("5/7", "fixes")
    assert failure["description"] == f"Fixes: {unknown} is not a commit of {tree}"


def test_fixes_with_a_known_id_and_its_subject(e3_series, tmp_path, capsys,
                                               checkpatch_pl):
    tree, series = e3_series
    sha = git(tree, "rev-parse", "master").strip()
    subject = git(tree, "log", "-1", "--format=%s", "master").strip()
    good = copy_series(series, tmp_path / "good")
    edit(patch_files(good)[4], "\nSuggested-by:",
         f'\nFixes: {sha[:12]} ("{subject}")\nSuggested-by:')
    code, document, _ = check_json(capsys, good, tree, "--checkpatch", checkpatch_pl)
    assert code == 0
    assert result_for(document, "5/7", "fixes")["description"] == \
        f'Fixes: {sha[:12]} ("{subject}") found in the tree'
    wrong = copy_series(series, tmp_path / "wrong")
    edit(patch_files(wrong)[4], "\nSuggested-by:",
         f'\nFixes: {sha[:12]} ("mm: a subject it does not have")\nSuggested-by:')
    code, document, _ = check_json(capsys, wrong, tree, "--checkpatch", checkpatch_pl)
    failure = only_failure(document)
    assert (failure["label"], failure["check"]) == ("5/7", "fixes")
    assert f"has the subject {subject!r}" in failure["description"]


def test_truncated_mbox(e3_series, tmp_path, capsys, checkpatch_pl):
    tree, series = e3_series
    mbox = tmp_path / "series.mbox"
    text = "".join(p.read_text() for p in sorted(series.glob("*.patch")))
    last_hunk = text.rindex("\n@@ ")
    mbox.write_text(text[:last_hunk + 200])
    code, document, err = check_json(capsys, mbox, tree, "--checkpatch", checkpatch_pl)
    assert code == 1 and "Traceback" not in err
    assert document["series"]["kind"] == "mbox"
    failure = only_failure(document)
    assert (failure["label"], failure["check"]) == ("7/7", "diff")
    assert failure["description"].startswith("mm/memory-failure.c: hunk @@ ")
    assert failure["description"].endswith("the patch is truncated")
    skipped = {(s["label"], s["check"]) for s in document["skipped"]}
    assert {("7/7", "apply"), ("7/7", "checkpatch")} <= skipped


def test_a_file_that_is_not_a_patch_in_the_folder(e3_series, tmp_path, capsys,
                                                  checkpatch_pl):
    tree, series = e3_series
    damaged = copy_series(series, tmp_path / "damaged")
    (damaged / "0008-notes.patch").write_text(
        "Notes for myself\n\nRemember to ask Naoya about the -EBUSY patch.\n")
    code, document, err = check_json(capsys, damaged, tree, "--checkpatch", checkpatch_pl)
    assert code == 1 and "Traceback" not in err
    failure = only_failure(document)
    assert (failure["label"], failure["check"]) == ("#9", "mail")
    assert failure["description"].startswith("0008-notes.patch: not a patch")


def test_a_series_that_is_not_a_patch_at_all(fixture_tree, tmp_path, capsys):
    tree = fixture_tree("e3-v4.14")
    notes = tmp_path / "notes.txt"
    notes.write_text("Just some notes.\nNothing to apply here.\n")
    code, document, err = check_json(capsys, notes, tree)
    assert code == 31 and document is None
    assert err.startswith(f"patchgen: error: {notes} holds no patch (not a patch")
    assert "Traceback" not in err
    code, _, err = check_json(capsys, tmp_path / "no-such-series", tree)
    assert code == 30 and "is not a file, a folder or a revision range" in err


def test_patch_against_the_wrong_base(fixture_tree, tmp_path, capsys, checkpatch_pl):
    """Made on a tree whose migrate.c differs, with a base-commit this tree
    does not have: checked on HEAD, where the migrate.c patch fails."""
    need_tool("gcc")
    tree = fixture_tree("e3-v4.14")
    other = tmp_path / "other"
    git(tree, "clone", "-q", str(tree), str(other))
    git(other, "config", "user.name", "Fixture Author")
    git(other, "config", "user.email", "fixture@example.org")
    edit(other / "mm" / "migrate.c",
         "odd as it is, that is how PG_hwpoison works for",
         "odd as it is, this is how PG_hwpoison works for")
    git(other, "commit", "-qam", "mm/migrate: reword a comment")
    apply_rule(other, HWPOISON)
    series = format_series(other, "master", "hwpoison-put-last", tmp_path / "series")
    code, document, err = check_json(capsys, series, tree, "--checkpatch", checkpatch_pl)
    assert code == 1 and "Traceback" not in err
    assert document["base"]["from"] == "HEAD"
    failure = only_failure(document)
    assert (failure["label"], failure["check"]) == ("5/7", "apply")
    assert failure["description"].startswith("does not apply on the patches before it: "
                                             "patch failed: mm/migrate.c:")
    base_check = result_for(document, "series", "base-commit")
    assert base_check["state"] == "warning"
    assert "is not a commit of" in base_check["description"]
    assert ("7/7", "apply") in {(s["label"], s["check"]) for s in document["skipped"]}


def test_whitespace_damage(e3_series, tmp_path, capsys, checkpatch_pl):
    tree, series = e3_series
    damaged = copy_series(series, tmp_path / "damaged")
    first = patch_files(damaged)[0]
    text = first.read_text()
    diff = text.index("\n@@ ")
    blank = text.index("\n \n", diff)          # an empty context line
    first.write_text(text[:blank] + "\n\n" + text[blank + 3:])
    code, document, err = check_json(capsys, damaged, tree, "--checkpatch", checkpatch_pl)
    assert code == 1 and "Traceback" not in err
    failure = only_failure(document)
    assert (failure["label"], failure["check"]) == ("1/7", "diff")
    assert "whitespace damage" in failure["description"]
    assert "mm/memory-failure.c" in failure["description"]


def test_duplicate_subject_and_wrong_numbering(e3_series, tmp_path, capsys,
                                               checkpatch_pl):
    tree, series = e3_series
    damaged = copy_series(series, tmp_path / "damaged")
    files = patch_files(damaged)
    edit(files[6], "Subject: [PATCH 7/7]", "Subject: [PATCH 7/8]")
    code, document, _ = check_json(capsys, damaged, tree, "--checkpatch", checkpatch_pl)
    failure = only_failure(document)
    assert (failure["label"], failure["check"]) == ("series", "numbering")
    assert failure["description"] == "the mails count 7 and 8 patches, the series has 7"
    dup = copy_series(series, tmp_path / "dup")
    files = patch_files(dup)
    edit(files[1], f"Subject: [PATCH 2/7] {subject_of(files[1])}\n",
         f"Subject: [PATCH 2/7] {subject_of(files[0])}\n")
    code, document, _ = check_json(capsys, dup, tree, "--checkpatch", checkpatch_pl)
    failure = only_failure(document)
    assert (failure["label"], failure["check"]) == ("2/7", "subject")
    assert failure["description"].startswith(f"the same subject as 1/7: "
                                             f"{subject_of(files[0])!r}")
