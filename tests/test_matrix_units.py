"""The verify matrix without a build: the matrix file (each mistake one
sentence, exit 66), the table and the KCIDB data (validated by the
kcidb-io package) of cells made from serial logs recorded on real boots.
test_lava_real.py runs a real matrix.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from matrixkit import outcome
from patchgen.infra.errors import BadMatrix
from patchgen.vm.kcidb import matrix_kcidb
from patchgen.rules.hwpoison.recipe import VERIFY as RECIPE
from patchgen.vm.matrix import (Cell, Config, MatrixTree, load_matrix,
                             matrix_exit_code, table)
from patchgen.vm.verify import VerifyReport



def write(tmp_path, text, name="matrix.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_matrix_file_with_trees_configs_and_a_series(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "debug.config").write_text("CONFIG_DEBUG_VM=y\n")
    matrix = load_matrix(write(tmp_path, """
series = "hwpoison-put-last"
base = "v4.14"
trees = ["a", { name = "vendor", path = "b" }]
configs = ["default", { name = "debug", file = "debug.config" }]
"""))
    assert [t.name for t in matrix.trees] == ["a", "vendor"]
    assert matrix.trees[1].path == (tmp_path / "b").resolve()
    assert [c.name for c in matrix.configs] == ["default", "debug"]
    verify, debug = matrix.configs
    assert "CONFIG_MEMORY_FAILURE=y" in verify.fragment
    assert debug.fragment.startswith(verify.fragment)
    assert debug.fragment.endswith("CONFIG_DEBUG_VM=y\n")
    assert matrix.series == "hwpoison-put-last" and matrix.base == "v4.14"


def test_configs_default_to_verifys_own_fragment(tmp_path):
    (tmp_path / "a").mkdir()
    matrix = load_matrix(write(tmp_path, 'trees = ["a"]\n'))
    assert [c.name for c in matrix.configs] == ["default"]
    alias = load_matrix(write(tmp_path, 'trees = ["a"]\nconfigs = '
                              '["verify"]\n', "alias.toml"))
    assert alias.configs[0].fragment == matrix.configs[0].fragment


@pytest.mark.parametrize("text, words", [
    ("trees = [", "is not TOML"),
    ("configs = ['verify']\n", "names no trees"),
    ("trees = ['nowhere']\n", "there is no folder"),
    ("trees = ['a']\nconfigs = ['no-such']\n", "is neither a fragment"),
    ("trees = ['a']\nconfigs = [{ name = 'x', file = 'x.config' }]\n",
     "there is no fragment file"),
    ("trees = ['a', 'a']\n", "two trees are called 'a'"),
    ("trees = ['a']\nseries = 3\n", "series must be a branch"),
    ("trees = ['a']\nbranch = 'x'\n", "unknown key 'branch'"),
])
def test_matrix_mistakes_are_one_sentence(tmp_path, text, words):
    (tmp_path / "a").mkdir()
    with pytest.raises(BadMatrix) as caught:
        load_matrix(write(tmp_path, text))
    assert words in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 66


def test_cli_bad_matrix_exit_66(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "patchgen", "verify", "--matrix",
         str(write(tmp_path, "trees = [\n"))], capture_output=True,
        text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 66
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_matrix_with_tree_is_refused(tmp_path):
    (tmp_path / "a").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "patchgen", "verify", "--matrix",
         str(write(tmp_path, "trees = ['a']\n")), "--tree", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 28
    assert "drop --tree" in result.stderr


# --- cells made from recorded serial logs ---------------------------------

@pytest.fixture
def cells(tmp_path):
    config = Config("verify", "", "patchgen/rules/hwpoison/guest/verify.config")
    good = MatrixTree("linux61", Path("/t/linux61"))
    other = MatrixTree("vendor", Path("/t/vendor"))
    series_report = VerifyReport(Path("/t/linux61"), tmp_path, (
        outcome("base", "pass-6.1.log", tmp_path),
        outcome("tip", "broken-free-path-6.1.log", tmp_path,
                revision="b" * 40)), "fix")
    return [Cell(good, config, series_report),
            Cell(other, config, None, "the series' tip (1234) does not "
                 "build; first errors:\n  mm/x.c:1: error: y", 41)]


def test_table_has_base_and_series_with_failing_checks(cells):
    lines = table(cells, "fix")
    assert lines[0].split() == ["TREE", "CONFIG", "BASE", "SERIES",
                                "FAILING"]
    row = lines[1]
    assert row.startswith("linux61") and "PASS" in row and "FAIL" in row
    assert "series: " in row and "fresh-single" in row
    assert "audit-own-single" in row
    error = lines[2]
    assert "ERROR (exit 41)" in error and "does not build" in error
    assert "mm/x.c" not in error        # first line only
    assert matrix_exit_code(cells) == 1
    as_json = [cell.to_dict() for cell in cells]
    assert [(c["tree"], c["config"]) for c in as_json] == [
        ("linux61", "verify"), ("vendor", "verify")]
    assert as_json[0]["path"] == "/t/linux61"
    assert [r["label"] for r in as_json[0]["results"]] == ["base", "tip"]
    assert as_json[1]["exit_code"] == 41


def test_kcidb_data_is_valid(cells):
    # kcidb-io is in the test extra; under CI its absence is a failure.
    if os.environ.get("CI"):
        import kcidb_io
    else:
        kcidb_io = pytest.importorskip("kcidb_io")
    data = matrix_kcidb(cells, "fix", RECIPE.kcidb_test)
    kcidb_io.schema.LATEST.validate(data)
    assert kcidb_io.schema.LATEST.is_valid(data)
    assert len(data["checkouts"]) == 2 and len(data["builds"]) == 2
    overall = [t for t in data["tests"] if t["path"] == "patchgen.soft_offline"]
    assert sorted(t["status"] for t in overall) == ["FAIL", "PASS"]
    failed = {t["path"] for t in data["tests"] if t["status"] == "FAIL"}
    assert "patchgen.soft_offline.fresh-single" in failed
    assert all(t["id"].startswith("patchgen:") for t in data["tests"])
    build_ids = {b["id"] for b in data["builds"]}
    assert all(t["build_id"] in build_ids for t in data["tests"])


def test_kcidb_has_the_failed_build_next_to_the_base_that_built(tmp_path):
    """A tip that does not build: the base's build and tests, the tip's
    build with status FAIL, its log and first errors, and no tests."""
    if os.environ.get("CI"):
        import kcidb_io
    else:
        kcidb_io = pytest.importorskip("kcidb_io")
    from patchgen.vm.verify import FailedBuild
    config = Config("verify", "", "patchgen/rules/hwpoison/guest/verify.config")
    base = outcome("base", "pass-6.1.log", tmp_path)
    log = tmp_path / "tip-build.log"
    log.write_text("mm/memory-failure.c:10:1: error: expected ';'\n")
    failed = FailedBuild("tip", "b" * 40, "verify", log, 42.25,
                         ("mm/memory-failure.c:10:1: error: expected ';'",))
    cell = Cell(MatrixTree("linux61", Path("/t/linux61")), config, None,
                "the series' tip does not build", 41, failed, (base,))
    data = matrix_kcidb([cell], "fix", RECIPE.kcidb_test)
    kcidb_io.schema.LATEST.validate(data)
    statuses = {b["misc"]["label"]: b for b in data["builds"]}
    assert statuses["base"]["status"] == "PASS"
    tip = statuses["tip"]
    assert tip["status"] == "FAIL" and tip["duration"] == 42.2
    assert tip["log_url"] == log.resolve().as_uri()
    assert "expected ';'" in tip["log_excerpt"]
    assert tip["config_name"] == "verify"
    assert not [t for t in data["tests"] if t["build_id"] == tip["id"]]
    assert [t for t in data["tests"] if t["build_id"] == statuses["base"]["id"]]
    checkout = {c["id"]: c for c in data["checkouts"]}[tip["checkout_id"]]
    assert checkout["git_commit_hash"] == "b" * 40
    # The table keeps the base's verdict and shows the tip's error.
    row = table([cell], "fix")[1].split()
    assert row[:4] == ["linux61", "verify", "PASS", "ERROR"]
    assert [r["label"] for r in cell.to_dict()["results"]] == ["base"]


# --- -j is make -jN, --parallel is trees at once ----------------------------

def test_cli_parallel_without_matrix_is_a_usage_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "patchgen", "verify", "--tree", str(tmp_path),
         "--parallel", "2"], capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 2
    assert "--parallel" in result.stderr and "-j N" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_matrix_passes_j_to_every_cell_and_parallel_to_the_trees(
        tmp_path, monkeypatch):
    """verify itself is replaced here (it would build kernels): the test
    is about what the command line hands each cell."""
    import threading
    from patchgen.cli import main
    from patchgen.vm import matrix as matrix_module
    seen = []
    threads = set()

    def fake_verify(options, **_):
        seen.append((options.tree.name, options.jobs, options.configs))
        threads.add(threading.get_ident())
        raise BadMatrix("stand-in: no kernel built in this test")

    monkeypatch.setattr(matrix_module, "verify", fake_verify)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
    path = write(tmp_path, "trees = ['a', 'b']\nconfigs = ['default']\n")
    code = main(["verify", "--matrix", str(path), "-j", "3", "--parallel",
                 "2", "--json"])
    assert code != 0
    assert sorted(tree for tree, _, _ in seen) == ["a", "b"]
    assert {jobs for _, jobs, _ in seen} == {3}
    assert threading.get_ident() not in threads
