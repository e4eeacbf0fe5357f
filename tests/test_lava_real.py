"""verify's LAVA modes and the matrix on the real Debian 6.1 tree: real
make, real lava-run (Debian's lava-dispatcher), real qemu (TCG).

The tree is the tests' own worktree of the cached tree with the broken
free path as a branch (tests/verify_variants.py), the same folder
test_verify_real.py verifies, so its builds are reused: the O= folders
are keyed by the tree's path and the config, and every build here is an
incremental one in them (the series' base and tip differ in one file).
Each LAVA verdict is compared with a direct qemu boot of the very same
kernel.  They run in CI (CI=true).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, need_tool
from patchgen.vm.boot import boot
from patchgen.vm.initramfs import make_initramfs
from patchgen.vm.lava import read_log
from patchgen.rules.hwpoison.recipe import VERIFY as RECIPE
from patchgen.vm.verdict import parse_serial_log as _parse_serial_log
from verify_variants import root_commit, variant_branch, verify_worktree

SUITE = RECIPE.lava_suite
RECIPE_RULE = "hwpoison-put-last"


def parse_serial_log(text, **kwargs):
    """The verdict as verify gives it for the hwpoison rule's recipe."""
    return _parse_serial_log(text, recipe=RECIPE, **kwargs)

pytestmark = [pytest.mark.slow, pytest.mark.realtree]


@pytest.fixture(scope="module")
def tree(linux61):
    for tool in ("make", "gcc", "flex", "bison", "bc", "cpio",
                 "qemu-system-x86_64", "busybox", "lava-run"):
        need_tool(tool)
    path = verify_worktree(linux61)
    subprocess.run(["git", "-C", path, "checkout", "-q", "-f", "--detach",
                    root_commit(path)], check=True)
    return path


def patchgen(*args, timeout=3600):
    result = subprocess.run(
        [sys.executable, "-m", "patchgen", *args], capture_output=True,
        text=True, timeout=timeout,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    data = json.loads(result.stdout) if result.stdout.strip().startswith(
        "{") else None
    return result.returncode, data, result.stderr


def direct_verdict(bzimage: Path, serial_log: Path):
    """The direct qemu boot (boot.py) of a kernel LAVA booted."""
    booted = boot(bzimage, make_initramfs(RECIPE.program).path, serial_log, timeout=60)
    return parse_serial_log(booted.output, timed_out=booted.timed_out,
                            timeout=booted.timeout)


def test_lava_run_passes_the_shipped_tree_like_a_direct_boot(tree,
                                                            tmp_path):
    code, report, stderr = patchgen("verify", "--json", "--tree", str(tree),
                                    "--lava-run")
    assert code == 0, stderr
    (result,) = report["results"]
    assert result["verdict"] == "PASS", result["reasons"]
    assert result["boot"]["command"].split()[0].endswith("lava-run")
    run_dir = Path(report["run_dir"])
    # LAVA's own record: one passing test case per guest check, the
    # kernel-message scan passed, the job finished.
    outcome = read_log((run_dir / "tree-lava.log").read_text())
    assert outcome.job_result == "pass"
    lava_checks = {c.name: c.result for c in outcome.guest_cases}
    assert lava_checks == {c["name"]: "pass" for c in result["checks"]}
    assert any(c.name == "kernel-messages" and c.result == "pass"
               for c in outcome.cases)
    direct = direct_verdict(run_dir / "tree-bzImage",
                            tmp_path / "direct.log")
    assert direct.passed, direct.reasons
    assert {c.name for c in direct.checks} == set(lava_checks)


def test_lava_jobs_writes_jobs_lava_run_accepts(tree, tmp_path):
    jobs = tmp_path / "jobs"
    code, written, stderr = patchgen("verify", "--json", "--tree", str(tree),
                                     "--lava-jobs", str(jobs))
    assert code == 0, stderr
    (job,) = written["jobs"]
    assert Path(job["kernel"]).parent == jobs
    result = subprocess.run(
        ["lava-run", "--validate", "--job-id", "1", "--output-dir",
         str(tmp_path / "out"), "--device", job["device"], job["job"]],
        capture_output=True, text=True, timeout=300)
    assert read_log(result.stdout + result.stderr).job_result == "pass", \
        result.stderr[-2000:]
    # Nothing was booted: no serial log in the run folder.
    assert "nothing was booted" in stderr


def _cells(report):
    out = {}
    for cell in report["cells"]:
        assert "error" not in cell, cell
        for result in cell["results"]:
            failed = sorted(c["name"] for c in result["checks"]
                            if not c["passed"])
            out[(cell["tree"], cell["config"], result["label"])] = (
                result["verdict"], failed, Path(cell["run_dir"]))
    return out


def _kcidb_io():
    # kcidb-io is in the test extra; under CI its absence is a failure.
    if os.environ.get("CI"):
        import kcidb_io
        return kcidb_io
    return pytest.importorskip("kcidb_io")


def _matrix_file(tree, tmp_path, variant: str, configs: list) -> Path:
    """A matrix of the 6.1 tree with a variant branch as the series."""
    branch = variant_branch(tree, variant)
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(f'series = "{branch}"\n'
                      f'trees = [{{ name = "linux61", path = "{tree}" }}]\n'
                      f'configs = {json.dumps(configs)}\n')
    return matrix


def test_matrix_direct_and_through_lava_run_give_the_same_verdicts(
        tree, tmp_path):
    """The 6.1 tree x the recipe's two configs (default and debug: two
    CPUs, DEBUG_VM, page_owner, memory hot-remove), with the broken free
    path as the series: base PASS, series FAIL in both (the check named
    in the default one), directly and
    through lava-run, cell by cell the same verdicts; KCIDB data valid.
    The debug O= folder is the one test_verify_real.py's debug tests use,
    so CI builds it once."""
    kcidb_io = _kcidb_io()
    matrix = _matrix_file(tree, tmp_path, "broken-free-path",
                          ["verify", "debug"])
    reports = {}
    for mode in ("direct", "lava-run"):
        extra = ["--lava-run"] if mode == "lava-run" else []
        kcidb = tmp_path / f"{mode}.kcidb.json"
        code, report, stderr = patchgen(
            "verify", "--matrix", str(matrix), "--json", "--timeout", "60",
            "--kcidb", str(kcidb), *extra)
        assert code == 1, stderr
        reports[mode] = _cells(report)
        data = json.loads(kcidb.read_text())
        kcidb_io.schema.LATEST.validate(data)
        statuses = {t["path"]: t["status"] for t in data["tests"]
                    if t["path"] == "patchgen.soft_offline"}
        assert set(statuses.values()) <= {"PASS", "FAIL"}
    direct, lava = reports["direct"], reports["lava-run"]
    cells = {("linux61", config, label) for config in ("verify", "debug")
             for label in ("base", "tip")}
    assert direct.keys() == lava.keys() == cells
    for key in direct:
        assert direct[key][0] == lava[key][0], (key, direct[key], lava[key])
    for config in ("verify", "debug"):
        assert lava[("linux61", config, "base")][0] == "PASS"
        assert lava[("linux61", config, "tip")][0] == "FAIL"
    # The default config names the check; under DEBUG_VM the broken free
    # path already trips "Bad page state" and the guest stops before its
    # result, a FAIL without a check line (seen in both modes).
    for mode in (direct, lava):
        assert "fresh-single" in mode[("linux61", "verify", "tip")][1]
    # And the tip LAVA failed, booted directly, fails the same check.
    run_dir = lava[("linux61", "verify", "tip")][2]
    again = direct_verdict(run_dir / "tip-bzImage", tmp_path / "tip.log")
    assert not again.passed
    assert "fresh-single" in {c.name for c in again.checks if not c.passed}
    outcome = read_log((run_dir / "tip-lava.log").read_text())
    assert ("fresh-single", "fail") in {(c.name, c.result)
                                        for c in outcome.guest_cases}
    assert all(c.suite == SUITE for c in outcome.guest_cases)


def test_matrix_kcidb_reports_a_tip_that_does_not_build(tree, tmp_path):
    """A real make that fails (a line that is not C in
    mm/memory-failure.c): the base's build and tests are in the KCIDB
    data, and the tip's build is there with status FAIL, its log and the
    compiler's error, and no tests."""
    kcidb_io = _kcidb_io()
    matrix = _matrix_file(tree, tmp_path, "build-error", ["verify"])
    kcidb = tmp_path / "kcidb.json"
    code, report, stderr = patchgen(
        "verify", "--matrix", str(matrix), "--json", "--timeout", "60",
        "--kcidb", str(kcidb))
    assert code == 1, stderr
    cell = report["cells"][0]
    assert "does not build" in cell["error"] and cell["exit_code"] == 41
    assert [r["label"] for r in cell["results"]] == ["base"]
    data = json.loads(kcidb.read_text())
    kcidb_io.schema.LATEST.validate(data)
    builds = {b["misc"]["label"]: b for b in data["builds"]}
    assert builds["base"]["status"] == "PASS"
    tip = builds["tip"]
    assert tip["status"] == "FAIL"
    assert "this_is_not_declared" in tip["log_excerpt"]
    log = Path(tip["log_url"].removeprefix("file://"))
    assert "this_is_not_declared" in log.read_text()
    assert not [t for t in data["tests"] if t["build_id"] == tip["id"]]
    assert [t for t in data["tests"] if t["build_id"] == builds["base"]["id"]
            and t["path"] == "patchgen.soft_offline"]


def test_matrix_with_the_rules_own_series_on_a_tree_it_does_not_affect(
        tree, tmp_path):
    """series = { rule }: on the 6.1 tree (E5) the rule makes no series,
    so the cell is the base alone (built and booted: PASS) with the
    rule's reason; the user's repository and working tree are as before
    (no ref, no file, no worktree)."""
    def state():
        return [subprocess.run(["git", "-C", str(tree), *args],
                               capture_output=True, text=True,
                               check=True).stdout
                for args in (("for-each-ref",),
                             ("status", "--porcelain", "--ignored"),
                             ("worktree", "list", "--porcelain"))]
    matrix = tmp_path / "matrix.toml"
    matrix.write_text(f'series = {{ rule = "{RECIPE_RULE}" }}\n'
                      f'trees = [{{ name = "linux61", path = "{tree}" }}]\n'
                      'configs = ["verify"]\n')
    before = state()
    code, report, stderr = patchgen("verify", "--matrix", str(matrix),
                                    "--json", "--timeout", "60")
    assert state() == before
    assert code == 0, stderr
    cell = report["cells"][0]
    assert cell["generated"]["verdict"] == "not-affected"
    assert cell["generated"]["patches"] == 0
    assert "page_handle_poison()" in cell["generated"]["reason"]
    assert [(r["label"], r["verdict"]) for r in cell["results"]] == [
        ("base", "PASS")]
