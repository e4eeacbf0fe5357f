"""A matrix's `series = { rule = "RULE" }`: the series the rule's apply
makes for each tree, in the tree's private clone, never in the user's
repository; reused by a second run; a tree the rule says is not affected
gets a base-only row with the rule's reason.

The series is made on the fixture trees (kernel-fixtures/) with the real
engine and real git; the table is rendered from recorded serial logs of
real boots (tests/data); the base-only row of a real not-affected tree
(Debian 6.1) is built and booted in test_lava_real.py."""

import os
from pathlib import Path

import pytest

from matrixkit import outcome
from patchgen.infra.errors import BadMatrix
from patchgen.infra.runner import run
from patchgen.kernel.workspace import persistent_workspace
from patchgen.engine.sources import open_git_tree
from patchgen.vm import generated
from patchgen.vm.generated import Generated, branch_name, generate
from patchgen.vm.kcidb import matrix_kcidb
from patchgen.vm.matrix import Cell, Config, MatrixTree, load_matrix, table
from patchgen.vm.verify import VerifyReport

RULE = "hwpoison-put-last"
NAME = ("Mat Rix", "mat.rix@example.org")


def git(tree, *args):
    return run(["git", "-C", str(tree), *args]).stdout


def untouchable(tree):
    """What the user's repository shows that the matrix must not change."""
    objects = sorted(p.name for p in (tree / ".git" / "objects").rglob("*"))
    return (git(tree, "for-each-ref"), git(tree, "status", "--porcelain",
                                           "--ignored"),
            git(tree, "worktree", "list", "--porcelain"), objects)


def made(tree, workdir):
    with open_repo(tree) as source, \
            persistent_workspace(source, source.head(), workdir) as workspace:
        return generate(workspace, RULE, source.head(), NAME), workspace.top


class open_repo:
    def __init__(self, tree):
        self.tree = open_git_tree(tree)

    def __enter__(self):
        return self.tree

    def __exit__(self, *exc):
        self.tree.repo.close()


def test_the_rule_makes_the_series_in_the_private_clone_only(fixture_tree,
                                                             tmp_path,
                                                             monkeypatch):
    tree = fixture_tree("e3-v4.14")
    before = untouchable(tree)
    first, clone = made(tree, tmp_path / "work")
    assert untouchable(tree) == before
    assert first.tip is not None and not first.reused
    assert first.patches == 7 == int(git(clone, "rev-list", "--count",
                                         f"{first.base}..{first.tip}"))
    assert git(clone, "rev-parse", branch_name(RULE, first.base)).strip() \
        == first.tip
    # Signed off by the identity passed in (the user's tree's), and each
    # commit says which tool and rule made it.
    body = git(clone, "log", "--format=%B", f"{first.base}..{first.tip}")
    assert body.count(f"Signed-off-by: {NAME[0]} <{NAME[1]}>") == 7
    assert RULE in body
    # The checkout is back at the base for the base's build.
    assert git(clone, "rev-parse", "HEAD").strip() == first.base

    second, _ = made(tree, tmp_path / "work")
    assert second.reused and second.tip == first.tip
    assert second.patches == 7
    assert untouchable(tree) == before

    # A changed rule or engine: a new series, and the old branch is gone.
    monkeypatch.setattr(generated, "fingerprint", lambda rule: "f" * 64)
    third, _ = made(tree, tmp_path / "work")
    assert not third.reused and third.patches == 7
    assert git(clone, "for-each-ref", "--format=%(refname)",
               "refs/heads/patchgen/").split() == [
        f"refs/heads/patchgen/generated/{RULE}/{first.base[:12]}-ffffffffffff"]
    assert untouchable(tree) == before


def test_the_fingerprint_follows_what_shapes_the_series():
    """The rule's package and the engine count; the verifier does not."""
    from patchgen.engine.registry import origin
    assert origin(RULE).folder is not None
    folders = {p.name for p in generated.shaping_folders(RULE)}
    assert {"engine", "series", "templates", "hwpoison"} <= folders
    assert not folders & {"vm", "cli", "review"}


def test_a_tree_the_rule_says_is_not_affected_gets_no_series(fixture_tree,
                                                             tmp_path):
    tree = fixture_tree("e5-v5.10")
    before = untouchable(tree)
    result, clone = made(tree, tmp_path / "work")
    assert result.tip is None and result.patches == 0
    assert result.verdict == "not-affected"
    assert "Not affected" in result.reason and "\n" not in result.reason
    assert untouchable(tree) == before
    assert git(clone, "for-each-ref", "refs/heads/patchgen") == ""


def test_a_refused_tree_stops_with_the_rules_sentence(fixture_tree, tmp_path):
    from patchgen.infra.errors import UserError
    tree = fixture_tree("e1-v4.4")
    with pytest.raises(UserError) as caught:
        made(tree, tmp_path / "work")
    assert "prerequisite" in str(caught.value).lower() or \
        "__put_page" in str(caught.value)


# --- the matrix file -------------------------------------------------------

def write(tmp_path, text):
    (tmp_path / "t").mkdir(exist_ok=True)
    path = tmp_path / "matrix.toml"
    path.write_text(text)
    return path


def test_matrix_reads_a_series_table(tmp_path):
    matrix = load_matrix(write(tmp_path, f'trees = ["t"]\n'
                                         f'series = {{ rule = "{RULE}" }}\n'))
    assert matrix.generate == RULE and matrix.rule == RULE
    assert matrix.series == f"made by rule {RULE}"


@pytest.mark.parametrize("series, words", [
    ('{ rule = "no-such-rule" }', "no-such-rule"),
    ('{ rule = "%s", branch = "x" }' % RULE, "one key, rule"),
    ("{ }", "one key, rule"),
    ("3", "a branch, a folder or an mbox"),
])
def test_matrix_refuses_a_bad_series_table(tmp_path, series, words):
    with pytest.raises(BadMatrix) as caught:
        load_matrix(write(tmp_path, f'trees = ["t"]\nseries = {series}\n'))
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)


# --- the table ---------------------------------------------------------------

def test_table_shows_patch_counts_and_the_not_affected_reason(tmp_path):
    config = Config("verify", "", "verify.config")
    series = f"made by rule {RULE}"
    e3 = Generated(RULE, "a" * 40, "b" * 40, 7, "rewrite", "7 patches", False)
    e5 = Generated(RULE, "c" * 40, None, 0, "not-affected",
                   "Not affected: the kernel poisons the page itself.", False)
    affected = VerifyReport(Path("/t/e3"), tmp_path, (
        outcome("base", "broken-free-path-6.1.log", tmp_path, "a" * 40),
        outcome("tip", "pass-6.1.log", tmp_path, "b" * 40)), series,
        generated=e3)
    unaffected = VerifyReport(Path("/t/e5"), tmp_path, (
        outcome("base", "pass-6.1.log", tmp_path, "c" * 40),), series,
        generated=e5)
    cells = [Cell(MatrixTree("e3", Path("/t/e3")), config, affected),
             Cell(MatrixTree("e5", Path("/t/e5")), config, unaffected)]
    lines = table(cells, series)
    assert lines[0].split() == ["TREE", "CONFIG", "PATCHES", "BASE", "SERIES",
                                "FAILING"]
    assert lines[1].split()[:6] == ["e3", "verify", "7", "FAIL", "(fail)",
                                    "PASS"]
    assert lines[2].split()[:5] == ["e5", "verify", "0", "PASS",
                                    "not-affected"]
    assert lines[2].endswith("rule: Not affected: the kernel poisons the "
                             "page itself.")
    # The exit status follows the base where there is no series.
    assert cells[1].exit_code == 0 and cells[0].exit_code == 0
    assert cells[1].to_dict()["generated"]["tip"] is None
    # KCIDB: the tip's checkout says what the rule made, the base of the
    # tree it does not affect says why there is no tip.
    if os.environ.get("CI"):
        import kcidb_io
    else:
        kcidb_io = pytest.importorskip("kcidb_io")
    data = matrix_kcidb(cells, series, "patchgen.soft_offline")
    kcidb_io.schema.LATEST.validate(data)
    made = {(c["tree_name"], c.get("git_commit_hash")): c.get("misc", {})
            for c in data["checkouts"]}
    assert made[("e3", "b" * 40)]["generated"]["patches"] == 7
    assert made[("e3", "a" * 40)] == {}
    assert made[("e5", "c" * 40)]["generated"]["verdict"] == "not-affected"
    assert len(data["builds"]) == 3
