"""verify --series on fixture trees: where the base and the tip are made.

The series part of verify, up to the build, on a fixture-sized repository
with real git: the series is read (a branch, a folder made by patchgen
format, an mbox), the base and then the tip are checked out in the private
clone that `patchgen check --build` also uses, and the user's repository
gains no worktree, ref or object.  test_verify_real.py builds and boots
what these steps give, on the real 6.1 tree.
"""

import pytest

from checkhelp import (BRANCH, applied_tree, generated_series, git, patch_files,
                       tree_state)
from conftest import need_tool
from patchgen.infra.cache import workdir_for
from patchgen.infra.errors import SeriesProblem
from patchgen.infra.runner import run
from patchgen.vm.verify import (VerifyOptions, resolve_series, series_steps,
                             series_workspace)

CHANGED = "mm/memory-failure.c"     # the rule's series changes it
UNCHANGED = "include/linux/list.h"  # and not this one


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    need_tool("git")
    monkeypatch.setenv("PATCHGEN_CACHE", str(tmp_path / "cache"))


def steps_of(tree, spec, **options):
    """Run the series steps as verify does (with nothing built): each
    step's label, commit, source folder, and what the build would see."""
    series = resolve_series(tree, VerifyOptions(tree=tree, series=str(spec),
                                                **options))
    seen = []
    with series_workspace(tree, series) as workspace:
        for label, commit in series_steps(workspace, series):
            root = workspace.kernel_root
            seen.append({
                "label": label, "commit": commit, "root": root,
                "head": git(root, "rev-parse", "HEAD").strip(),
                "tree": git(root, "rev-parse", "HEAD^{tree}").strip(),
                "changed": (root / CHANGED).read_bytes(),
                "unchanged_mtime": (root / UNCHANGED).stat().st_mtime_ns,
                "status": git(root, "status", "--porcelain"),
            })
    return series, seen


def tip_tree(tree) -> str:
    return git(tree, "rev-parse", f"{BRANCH}^{{tree}}").strip()


def assert_base_then_tip(tree, seen):
    base, tip = seen
    assert [base["label"], tip["label"]] == ["base", "tip"]
    # One source folder for both, in the cache folder of the user's tree.
    assert base["root"] == tip["root"]
    assert base["root"].is_relative_to(workdir_for(tree))
    assert not base["root"].is_relative_to(tree)
    assert base["head"] == base["commit"] == git(tree, "rev-parse", "master").strip()
    assert base["changed"] == git(tree, "show", f"master:{CHANGED}").encode()
    assert tip["head"] == tip["commit"] and tip["tree"] == tip_tree(tree)
    assert tip["changed"] != base["changed"]
    # Only what the series changes is rewritten: make rebuilds only that.
    assert tip["unchanged_mtime"] == base["unchanged_mtime"]
    assert base["status"] == tip["status"] == ""


def test_a_branch_adds_nothing_to_the_users_repository(fixture_tree):
    tree = applied_tree(fixture_tree, "e3-v4.14")
    before = tree_state(tree)
    series, seen = steps_of(tree, BRANCH)
    assert series.tip == git(tree, "rev-parse", BRANCH).strip()
    assert_base_then_tip(tree, seen)
    assert seen[1]["commit"] == series.tip
    assert tree_state(tree) == before


def test_a_patch_folder_is_applied_in_the_clone_only(fixture_tree, tmp_path):
    tree, folder = generated_series(fixture_tree, "e3-v4.14", tmp_path / "out")
    before = tree_state(tree)
    series, seen = steps_of(tree, folder)
    assert series.tip is None
    assert len(series.mails) == len(patch_files(folder))   # not the cover letter
    assert_base_then_tip(tree, seen)
    # git am made the tip's commit; the user's repository does not have it.
    assert run(["git", "-C", tree, "cat-file", "-e", seen[1]["commit"]],
               check=False).returncode != 0
    assert tree_state(tree) == before
    # A second series of the same tree reuses the same checkout.
    _, again = steps_of(tree, folder)
    assert again[0]["root"] == seen[0]["root"]
    assert again[1]["tree"] == seen[1]["tree"]
    assert tree_state(tree) == before


def test_an_mbox_is_a_series_too(fixture_tree, tmp_path):
    tree, folder = generated_series(fixture_tree, "e3-v4.14", tmp_path / "out")
    mbox = tmp_path / "series.mbox"
    mbox.write_bytes(b"".join(p.read_bytes() for p in sorted(folder.glob("*.patch"))))
    before = tree_state(tree)
    series, seen = steps_of(tree, mbox)
    assert len(series.mails) == len(patch_files(folder))
    assert_base_then_tip(tree, seen)
    assert tree_state(tree) == before


def test_a_series_that_does_not_apply_stops_before_any_build(fixture_tree, tmp_path):
    tree, folder = generated_series(fixture_tree, "e3-v4.14", tmp_path / "out")
    first = patch_files(folder)[0]
    head, hunks = first.read_text().split("\n@@ ", 1)
    # A context line of the first hunk that the base does not have.
    line = next(x for x in hunks.splitlines() if x.startswith(" ") and x.strip())
    first.write_text(head + "\n@@ " + hunks.replace(line, " patchgen: not in the base", 1))
    before = tree_state(tree)
    # Known before the base is built (issue 10, item 14), not after.
    with pytest.raises(SeriesProblem, match=r"does not apply to its base \w+: "
                       + first.name) as caught:
        resolve_series(tree, VerifyOptions(tree=tree, series=str(folder)))
    assert caught.value.exit_code == 47
    assert tree_state(tree) == before
    # What git am left is gone when the checkout is next used.
    _, seen = steps_of(tree, BRANCH)
    assert_base_then_tip(tree, seen)


def test_a_file_that_is_not_a_patch_stops_before_any_build(fixture_tree, tmp_path):
    tree, folder = generated_series(fixture_tree, "e3-v4.14", tmp_path / "out")
    (folder / "0009-notes.patch").write_text("Just some notes.\n")
    with pytest.raises(SeriesProblem, match="0009-notes.patch is not a patch"):
        resolve_series(tree, VerifyOptions(tree=tree, series=str(folder)))
