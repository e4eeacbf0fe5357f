"""apply never touches the user's work, and bad input gets one sentence
and a distinct exit code, never a traceback."""

import hashlib
import json
import os
import re

import pytest

from patchgen.cli import main
from patchgen.engine.commits import Patch, commit_series
from patchgen.engine.registry import all_rules
from patchgen.infra.errors import (ApplyFailed, BranchExists, DirtyTree, IdentityUnset,
                             MissingFile, NotAGitTree, RuleRefused, UnknownRule,
                             UnparseableSite)
from patchgen.infra.gitenv import FIXED_IDENTITY
from patchgen.infra.runner import run
from patchgen.engine.sources import open_git_tree

BRANCH = "hwpoison-put-last"


def git(tree, *args, check=True):
    return run(["git", "-C", tree, *args], check=check).stdout


def snapshot(tree):
    """Everything of the user's that apply must leave alone."""
    index = (tree / ".git" / "index").read_bytes()
    files = {}
    for root, dirs, names in os.walk(tree):
        dirs[:] = [d for d in dirs if d != ".git"]
        for name in names:
            path = os.path.join(root, name)
            stat = os.stat(path)
            files[path] = (stat.st_mtime_ns, hashlib.sha1(open(path, "rb").read()).hexdigest())
    return {
        "head": git(tree, "rev-parse", "HEAD"),
        "symbolic": git(tree, "symbolic-ref", "HEAD"),
        "status": git(tree, "status", "--porcelain", "--ignored"),
        "index": hashlib.sha1(index).hexdigest(),
        "files": files,
    }


# With two rules installed, the rule is named (scan without --rule skips a
# rule that cannot read the tree, with a note).
RULE_OPTION = {"scan": ("--rule", "hwpoison-put-last"),
               "apply": ("--rule", "hwpoison-put-last")}


def cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_sentence(err: str) -> str:
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("patchgen: error: ")
    return lines[0]


def test_apply_leaves_branch_index_and_working_tree_alone(fixture_tree, capsys):
    tree = fixture_tree("e3-v4.14")
    (tree / "notes.txt").write_text("my untracked notes\n")
    before = snapshot(tree)
    code, out, err = cli(capsys, "apply", "--rule=hwpoison-put-last", "--tree", str(tree))
    assert code == 0, err
    assert snapshot(tree) == before
    assert f"branch {BRANCH}: 7 commits" in out
    assert git(tree, "rev-parse", f"{BRANCH}~7").strip() == before["head"].strip()
    assert len(out.strip().splitlines()) == 8  # the branch line and one per commit


def test_dry_run_prints_the_diff_and_creates_nothing(fixture_tree, capsys):
    tree = fixture_tree("e3-v4.14")
    before = snapshot(tree)
    code, out, err = cli(capsys, "apply", "--rule=hwpoison-put-last",
                                 "--tree", str(tree), "--dry-run")
    assert code == 0
    assert out.startswith("diff --git a/mm/internal.h b/mm/internal.h")
    assert re.search(r"^\+\t+hwpoison_put_last_page\(page\);$", out, re.M)
    assert git(tree, "branch", "--list", BRANCH) == ""
    assert snapshot(tree) == before


def test_custom_branch_and_existing_branch(fixture_tree, capsys):
    tree = fixture_tree("e3-v4.14")
    assert cli(capsys, "apply", "--rule=hwpoison-put-last",
                       "--tree", str(tree), "--branch", "mine")[0] == 0
    first = git(tree, "rev-parse", "mine")
    code, out, err = cli(capsys, "apply", "--rule=hwpoison-put-last",
                                 "--tree", str(tree), "--branch", "mine")
    assert code == BranchExists.exit_code
    assert "already exists" in one_sentence(err) and "--force" in err
    assert git(tree, "rev-parse", "mine") == first
    code, out, err = cli(capsys, "apply", "--rule=hwpoison-put-last",
                                 "--tree", str(tree), "--branch", "mine", "--force")
    assert code == 0 and "branch mine: 7 commits" in out


def test_force_never_moves_the_checked_out_branch(fixture_tree, capsys):
    tree = fixture_tree("e3-v4.14")
    head = git(tree, "rev-parse", "HEAD")
    code, out, err = cli(capsys, "apply", "--rule=hwpoison-put-last",
                                 "--tree", str(tree), "--branch", "master", "--force")
    assert code == BranchExists.exit_code
    assert "checked out" in one_sentence(err)
    assert git(tree, "rev-parse", "HEAD") == head


def test_bad_branch_name(fixture_tree, capsys):
    tree = fixture_tree("e3-v4.14")
    code, out, err = cli(capsys, "apply", "--rule=hwpoison-put-last",
                                 "--tree", str(tree), "--branch", "bad..name")
    assert code == 3 and "not a valid branch name" in one_sentence(err)


def test_dirty_tree_is_refused(fixture_tree, capsys):
    tree = fixture_tree("e3-v4.14")
    with open(tree / "mm/migrate.c", "a") as f:
        f.write("/* work in progress */\n")
    before = snapshot(tree)
    code, out, err = cli(capsys, "apply", "--rule=hwpoison-put-last", "--tree", str(tree))
    assert code == DirtyTree.exit_code
    assert "uncommitted changes" in one_sentence(err)
    assert snapshot(tree) == before
    assert git(tree, "branch", "--list", BRANCH) == ""


def test_not_a_git_tree(fixture_tree, tmp_path, capsys):
    tree = fixture_tree("e3-v4.14", git=False)
    code, out, err = cli(capsys, "apply", "--rule=hwpoison-put-last", "--tree", str(tree))
    assert code == NotAGitTree.exit_code
    assert "not in a git repository" in one_sentence(err)
    # scan is read-only and works on a plain folder
    code, out, err = cli(capsys, "scan", "--tree", str(tree), *RULE_OPTION["scan"])
    assert code == 0 and "verdict: rewrite" in out


def test_folder_not_in_the_kernel_shape(tmp_path, capsys):
    # The engine wants a kernel tree's shape (a Makefile and the kernel's
    # folders), not any rule's files.
    (tmp_path / "src").mkdir()
    for command in ("scan", "apply"):
        code, out, err = cli(capsys, command, "--tree", str(tmp_path / "src"),
                             "--rule", "hwpoison-put-last")
        assert code == MissingFile.exit_code
        assert "is not the top of a kernel source tree" in one_sentence(err)
    code, out, err = cli(capsys, "scan", "--tree", str(tmp_path / "nowhere"),
                         "--rule", "hwpoison-put-last")
    assert code == MissingFile.exit_code and "not a folder" in one_sentence(err)


def test_tree_without_mm_is_refused_by_the_rule_that_needs_it(tmp_path, capsys):
    tree = tmp_path / "src"
    (tree / "drivers").mkdir(parents=True)
    (tree / "Makefile").write_text("VERSION = 6\nPATCHLEVEL = 1\n")
    code, out, err = cli(capsys, "scan", "--tree", str(tree), "--rule",
                         "hwpoison-put-last")
    assert code == MissingFile.exit_code
    sentence = one_sentence(err)
    assert "no mm/ folder" in sentence and "rule hwpoison-put-last" in sentence


def test_missing_file(fixture_tree, capsys):
    tree = fixture_tree("e3-v4.14")
    git(tree, "rm", "-q", "mm/page_alloc.c")
    run(["git", "-C", tree, "commit", "-q", "-m", "drop page_alloc.c"], env=FIXED_IDENTITY)
    for command in ("scan", "apply"):
        code, out, err = cli(capsys, command, "--tree", str(tree), *RULE_OPTION[command])
        assert code == MissingFile.exit_code
        assert "mm/page_alloc.c is missing" in one_sentence(err)


def test_unreadable_file(fixture_tree, capsys):
    tree = fixture_tree("e3-v4.14", git=False)
    (tree / "mm/memory-failure.c").unlink()
    (tree / "mm/memory-failure.c").mkdir()
    code, out, err = cli(capsys, "scan", "--tree", str(tree), *RULE_OPTION["scan"])
    assert code == MissingFile.exit_code
    assert "memory-failure.c" in one_sentence(err)


def test_identity_unset(fixture_tree, tmp_path, capsys, monkeypatch):
    tree = fixture_tree("e3-v4.14", identity=None)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    code, out, err = cli(capsys, "apply", "--rule=hwpoison-put-last", "--tree", str(tree))
    assert code == IdentityUnset.exit_code
    assert "user.name or user.email is not set" in one_sentence(err)
    assert git(tree, "branch", "--list", BRANCH) == ""


def test_refusal_creates_nothing(fixture_tree, capsys):
    tree = fixture_tree("e1-v4.5")
    code, out, err = cli(capsys, "apply", "--rule=hwpoison-put-last", "--tree", str(tree))
    assert code == RuleRefused.exit_code
    line = one_sentence(err)
    assert "mm/hwpoison: fix wrong num_poisoned_pages account" in line
    assert "Nothing was created" in line
    assert git(tree, "branch", "--list", BRANCH) == ""


def test_unparseable_site_is_reported_not_rewritten(fixture_tree, capsys):
    tree = fixture_tree("e3-v4.14")
    migrate = tree / "mm/migrate.c"
    text = migrate.read_text()
    broken = text.replace("\t\t\tif (!test_set_page_hwpoison(page))\n"
                          "\t\t\t\tnum_poisoned_pages_inc();\n",
                          "\t\t\tif (!test_set_page_hwpoison(page))\n"
                          "\t\t\t\tnum_poisoned_pages_inc() WEIRD_MACRO(x) y;\n")
    assert broken != text
    migrate.write_text(broken)
    run(["git", "-C", tree, "commit", "-qam", "a macro at the site"], env=FIXED_IDENTITY)
    code, out, err = cli(capsys, "scan", "--tree", str(tree), *RULE_OPTION["scan"])
    assert code == 0 and "do not parse cleanly" in out
    code, out, err = cli(capsys, "apply", "--rule=hwpoison-put-last", "--tree", str(tree))
    assert code == UnparseableSite.exit_code
    assert "mm/migrate.c:" in one_sentence(err)
    assert git(tree, "branch", "--list", BRANCH) == ""


def test_a_failure_half_way_leaves_no_branch(fixture_tree):
    tree = fixture_tree("e3-v4.14")
    kernel = open_git_tree(tree)
    base = kernel.head()
    good = Patch("one", "one\n\nbody\n", {"mm/new.c": b"int x;\n"})
    bad = Patch("two", "two\n\nbody\n", {"../outside.c": b"int y;\n"})
    with pytest.raises(ApplyFailed, match="no branch was created"):
        commit_series(kernel, base, [good, bad], "halfway", ("A", "a@b.c"))
    assert git(tree, "branch", "--list", "halfway") == ""
    assert git(tree, "status", "--porcelain") == ""


def test_new_files_survive_a_gitignore_that_hides_everything(fixture_tree):
    tree = fixture_tree("e3-v4.14")
    (tree / ".gitignore").write_text("/*\n!/debian/\n")
    run(["git", "-C", tree, "add", "-f", ".gitignore"])
    run(["git", "-C", tree, "commit", "-q", "-m", "ignore all"], env=FIXED_IDENTITY)
    kernel = open_git_tree(tree)
    patch = Patch("add", "add\n\nbody\n", {"mm/brand-new.c": b"int z;\n",
                                            "mm/migrate.c": b"/* replaced */\n"})
    series = commit_series(kernel, kernel.head(), [patch], "with-new-file", ("A", "a@b.c"))
    files = git(tree, "show", "--format=", "--name-status", series.commits[0].sha)
    assert "A\tmm/brand-new.c" in files and "M\tmm/migrate.c" in files
    assert git(tree, "show", "with-new-file:mm/brand-new.c") == "int z;\n"


def test_scan_json_is_one_document(fixture_tree, capsys):
    tree = fixture_tree("e2-v4.7")
    code, out, err = cli(capsys, "scan", "--tree", str(tree), "--json",
                         "--rule", "hwpoison-put-last")
    assert code == 0
    data = json.loads(out)
    # Without --rule, scan runs every installed rule: a list of the same
    # documents, one per rule, in the order `patchgen rules` lists them.
    code, every, err = cli(capsys, "scan", "--tree", str(tree), "--json")
    assert code == 0
    reports = json.loads(every)
    assert [r["rule"] for r in reports] == sorted(all_rules())
    assert next(r for r in reports if r["rule"] == "hwpoison-put-last") == data
    assert data["verdict"] == "rewrite"
    assert data["facts"] == {"call site": "E2", "free path": "E3"}
    kinds = [f["kind"] for f in data["findings"]]
    assert "call-site" in kinds and "free-path" in kinds
    assert len(data["steps"]) == 7


def test_not_affected_tree_exits_zero_and_creates_nothing(fixture_tree, capsys):
    tree = fixture_tree("e5-v5.10")
    code, out, err = cli(capsys, "apply", "--rule=hwpoison-put-last", "--tree", str(tree))
    assert code == 0
    assert "not-affected" in out and "nothing was created" in out
    assert git(tree, "branch", "--list", BRANCH) == ""


def test_unknown_rule(fixture_tree, capsys):
    tree = fixture_tree("e3-v4.14")
    code, out, err = cli(capsys, "scan", "--tree", str(tree), "--rule", "nope")
    assert code == UnknownRule.exit_code == 93
    assert "there is no rule 'nope'" in one_sentence(err)


def test_demo_runs_the_whole_job(tmp_path, capsys):
    code, out, err = cli(capsys, "demo", "--dir", str(tmp_path / "demo"))
    assert code == 0, err
    assert "verdict: rewrite" in out
    assert "branch hwpoison-put-last: 7 commits" in out
    assert git(tmp_path / "demo", "log", "--format=%s", "-1", BRANCH).startswith("mm: hwpoison:")
