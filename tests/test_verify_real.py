"""verify on the real Debian 6.1 tree: real make, real qemu (TCG).

The tree used is the tests' own worktree of the cached tree
(tests/verify_variants.py), with the deliberately broken versions as
branches.  These tests build two kernels from scratch (the worktree, and
the private clone verify makes for --series) and otherwise only rebuild
incrementally in the same O= folders.  They run in CI (CI=true).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from checkhelp import tree_state
from conftest import ROOT, need_tool
from patchgen.vm.boot import boot
from patchgen.vm.kbuild import build_kernel, load_config
from patchgen.rules.hwpoison.recipe import VERIFY as RECIPE, VERIFY_FRAGMENT as FRAGMENT
from patchgen.infra.errors import (EXIT_GUEST_PANIC, EXIT_GUEST_TIMEOUT,
                             ConfigSymbolMissing)
from patchgen.vm.initramfs import make_initramfs
from patchgen.kernel.kconfig import read_fragment
from patchgen.vm.verdict import parse_serial_log as _parse_serial_log
from verify_variants import (VARIANTS, root_commit, verify_worktree,
                             variant_branch)


def parse_serial_log(text, **kwargs):
    """The verdict as verify gives it for the hwpoison rule's recipe."""
    return _parse_serial_log(text, recipe=RECIPE, **kwargs)


pytestmark = [pytest.mark.slow, pytest.mark.realtree]

REBOOTS = 3     # extra boots of the good and the broken kernel
RACE_BOOTS = 10  # at most, for a race that fails about two boots in three


@pytest.fixture(scope="module")
def tree(linux61):
    for tool in ("make", "gcc", "flex", "bison", "bc", "cpio",
                 "qemu-system-x86_64", "busybox"):
        need_tool(tool)
    path = verify_worktree(linux61)
    # The worktree stays at the imported commit; -f undoes any leftover.
    subprocess.run(["git", "-C", path, "checkout", "-q", "-f", "--detach",
                    root_commit(path)], check=True)
    return path


@pytest.fixture(scope="module")
def branches(tree):
    return {name: variant_branch(tree, name) for name in VARIANTS}


def verify_json(*args, timeout=3600):
    """Run the real CLI with --json; return (exit status, report, stderr)."""
    result = subprocess.run(
        [sys.executable, "-m", "patchgen", "verify", "--json", *args],
        capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ, PYTHONPATH=str(ROOT)))
    report = json.loads(result.stdout) if result.stdout.strip() else None
    return result.returncode, report, result.stderr


@pytest.fixture(scope="module")
def unmodified(tree):
    code, report, stderr = verify_json("--tree", str(tree))
    return code, report, stderr


def test_unmodified_tree_passes(unmodified, tree):
    code, report, stderr = unmodified
    assert code == 0, stderr
    (result,) = report["results"]
    assert result["verdict"] == "PASS", result["reasons"]
    assert result["revision"] == root_commit(tree)
    assert result["kernel_problems"] == []
    names = {c["name"] for c in result["checks"]}
    assert {"single", "fresh-single", "stress", "fresh-stress",
            "audit-own-stress", "audit-offlined-stress", "unpoison",
            "unpoison-leak"} <= names
    assert all(c["passed"] for c in result["checks"])
    # 1 page, then --stress' default 64, each logged by the kernel.
    assert result["soft_offlined_pages"] == 65
    assert not result["boot"]["timed_out"]
    assert Path(result["boot"]["serial_log"]).is_file()
    assert Path(result["build"]["log"]).is_file()


def test_second_run_rebuilds_nothing(unmodified, tree):
    code, report, stderr = verify_json("--tree", str(tree), "--stress", "8")
    assert code == 0, stderr
    (result,) = report["results"]
    first = unmodified[1]["results"][0]
    assert result["build"]["build_dir"] == first["build"]["build_dir"]
    # Kbuild prints a step for everything it redoes; a full build is
    # well over a thousand of them.
    assert result["build"]["steps"] < 30, result["build"]
    assert result["soft_offlined_pages"] == 9


@pytest.fixture(scope="module")
def broken_series(tree, branches):
    # The broken kernel can hang after its audit failed (1 boot in 10
    # here): a short timeout keeps that cheap; a good boot takes 2 s.
    before = tree_state(tree)
    result = verify_json("--tree", str(tree), "--series",
                         branches["broken-free-path"], "--timeout", "60")
    return (*result, before, tree_state(tree))


def test_series_broken_free_path_base_passes_tip_fails(broken_series, tree):
    code, report, stderr, before, after = broken_series
    assert code in (1, EXIT_GUEST_TIMEOUT), stderr
    base, tip = report["results"]
    assert base["label"] == "base" and tip["label"] == "tip"
    assert base["verdict"] == "PASS", base["reasons"]
    assert tip["verdict"] == "FAIL" and tip["kind"] in ("fail", "timeout")
    # Same source folder, same O= folder: the tip is an incremental build.
    assert base["build"]["build_dir"] == tip["build"]["build_dir"]
    assert tip["build"]["steps"] < 150, tip["build"]
    failed = [c["name"] for c in tip["checks"] if not c["passed"]]
    assert "fresh-single" in failed and "audit-own-single" in failed, tip
    assert any("KPF_HWPOISON" in r for r in tip["reasons"])
    # The user's tree is untouched: still at its commit, no new files.
    head = subprocess.run(["git", "-C", tree, "rev-parse", "HEAD"],
                          capture_output=True, text=True).stdout.strip()
    assert head == root_commit(tree)
    assert not (Path(tree) / ".config").exists()
    # Nor its repository: no new worktree, ref or object.
    assert after == before


def test_broken_kernel_fails_every_boot_and_good_one_passes(broken_series):
    """REBOOTS more boots of each kernel the series run built."""
    base, tip = broken_series[1]["results"]
    run_dir = Path(broken_series[1]["run_dir"])
    initramfs = make_initramfs(RECIPE.program)
    outcomes = {"base": [], "tip": []}
    for label in outcomes:
        for n in range(REBOOTS):
            booted = boot(run_dir / f"{label}-bzImage", initramfs.path,
                          run_dir / f"{label}-reboot{n}-serial.log",
                          timeout=60)
            verdict = parse_serial_log(booted.output,
                                       timed_out=booted.timed_out)
            outcomes[label].append(verdict)
    assert [v.label for v in outcomes["base"]] == ["PASS"] * REBOOTS
    assert [v.label for v in outcomes["tip"]] == ["FAIL"] * REBOOTS
    for verdict in outcomes["tip"]:
        assert any(not c.passed and c.name == "fresh-single"
                   for c in verdict.checks)


def test_series_that_leaks_unpoisoned_pages_fails_on_the_leak(tree,
                                                             branches):
    code, report, stderr = verify_json("--tree", str(tree), "--series",
                                       branches["leak-no-reference"],
                                       "--timeout", "60")
    assert code == 1, stderr
    base, tip = report["results"]
    assert base["verdict"] == "PASS", base["reasons"]
    failed = [c["name"] for c in tip["checks"] if not c["passed"]]
    assert failed == ["unpoison-leak"], tip["reasons"]


def test_series_from_a_patch_folder_that_panics(tree, branches, tmp_path):
    subprocess.run(["git", "-C", tree, "format-patch", "-q", "-1",
                    branches["panic-at-boot"], "-o", tmp_path / "series"],
                   check=True)
    before = tree_state(tree)
    code, report, stderr = verify_json("--tree", str(tree), "--series",
                                       str(tmp_path / "series"),
                                       "--timeout", "120")
    assert code == EXIT_GUEST_PANIC, stderr
    # git am ran in the private clone: the tree's repository has no new
    # worktree, ref or object.
    assert tree_state(tree) == before
    base, tip = report["results"]
    assert base["verdict"] == "PASS", base["reasons"]
    assert tip["verdict"] == "FAIL" and tip["kind"] == "panic"
    assert any("Kernel panic - not syncing: patchgen test: deliberate panic"
               in line for line in tip["offending_lines"])
    # panic=-1 and -no-reboot: over in seconds, not at the timeout.
    assert not tip["boot"]["timed_out"]
    assert tip["boot"]["seconds"] < 60


def test_a_tree_that_tracks_its_config_is_built_from_the_private_copy(
        tree, branches):
    """A vendor tree commits its .config: make refuses an out-of-tree
    build beside it, so verify builds the private clone without it (never
    asking the user to delete a tracked file), base and tip alike."""
    base = branches["tracked-config"]
    before = tree_state(tree)
    code, report, stderr = verify_json(
        "--tree", str(tree), "--series", branches["tracked-config-touch"],
        "--base", base, "--stress", "8", "--timeout", "60")
    assert code == 0, stderr
    assert "mrproper" not in stderr
    assert [r["verdict"] for r in report["results"]] == ["PASS", "PASS"]
    base_result, tip = report["results"]
    assert tip["build"]["steps"] < 150, tip["build"]
    assert tree_state(tree) == before


def test_series_that_does_not_build_shows_the_compiler_error(tree, branches):
    code, report, stderr = verify_json("--tree", str(tree), "--series",
                                       branches["build-error"])
    assert code == 41, stderr
    assert report is None
    lines = stderr.strip().splitlines()
    assert lines[0].startswith("patchgen: error: the series' tip (")
    assert any(line.strip().startswith("mm/memory-failure.c:")
               and "error:" in line and "this_is_not_declared" in line
               for line in lines), stderr
    assert len(lines) < 15 and "Traceback" not in stderr


def test_guest_that_hangs_gets_a_timeout_verdict(unmodified, tmp_path):
    run_dir = Path(unmodified[1]["run_dir"])
    hang = make_initramfs(RECIPE.program, init="#!/bin/sh\necho 'PATCHGEN: info guest up'\n"
                               "exec /bin/busybox sleep 100000\n")
    booted = boot(run_dir / "tree-bzImage", hang.path,
                  tmp_path / "serial.log", timeout=20)
    assert booted.timed_out and booted.seconds < 60
    verdict = parse_serial_log(booted.output, timed_out=True,
                               timeout=booted.timeout)
    assert verdict.kind == "timeout"
    assert verdict.exit_code == EXIT_GUEST_TIMEOUT
    assert "did not finish within 20 s" in verdict.reasons[0]


def test_config_symbols_kconfig_drops_are_named(tree, tmp_path):
    # Without X86_MCE, MEMORY_FAILURE loses its dependency; the other
    # symbol does not exist at all.  Real tinyconfig + olddefconfig.
    fragment = read_fragment(FRAGMENT).replace("CONFIG_X86_MCE=y\n", "")
    fragment += "CONFIG_PATCHGEN_NO_SUCH_SYMBOL=y\n"
    with pytest.raises(ConfigSymbolMissing) as caught:
        build_kernel(tree, tmp_path / "build.log", fragment=fragment)
    message = str(caught.value)
    assert "CONFIG_MEMORY_FAILURE" in message
    assert "CONFIG_PATCHGEN_NO_SUCH_SYMBOL" in message
    assert "CONFIG_PROC_SYSCTL" not in message


# --- the debug config: its checks and their negative controls -------------

@pytest.fixture(scope="module")
def debug_unmodified(tree):
    return verify_json("--tree", str(tree), "--config", "debug",
                       "--timeout", "150")


def test_debug_config_passes_on_the_unmodified_tree(debug_unmodified):
    code, report, stderr = debug_unmodified
    assert code == 0, stderr
    (result,) = report["results"]
    assert result["config"] == "debug"
    assert result["verdict"] == "PASS", result["reasons"]
    checks = {c["name"]: c for c in result["checks"]}
    for name in ("sysfs-soft-offline", "race-unpoison", "memory-offline",
                 "memory-offline-data"):
        assert checks[name]["passed"], checks[name]
    # Two CPUs really (one per socket, see boot.py), and page_owner on.
    assert "on 2 CPUs" in checks["race-unpoison"]["detail"]
    assert "page_owner=on" in result["boot"]["command"]
    assert "Movable" in checks["memory-offline"]["detail"]


def debug_series(tree, branch):
    code, report, stderr = verify_json("--tree", str(tree), "--series",
                                       branch, "--config", "debug",
                                       "--timeout", "150")
    assert report is not None, stderr
    base, tip = report["results"]
    assert base["verdict"] == "PASS", base["reasons"]
    return code, [c["name"] for c in tip["checks"] if not c["passed"]], tip


def test_memory_offline_fails_when_offline_refuses_hwpoisoned_pages(
        tree, branches):
    code, failed, tip = debug_series(tree, branches["offline-refuses-hwpoison"])
    assert code == 1
    assert failed == ["memory-offline"], tip["reasons"]
    detail = next(c["detail"] for c in tip["checks"]
                  if c["name"] == "memory-offline")
    assert "offlining the block failed" in detail


def test_sysfs_check_fails_when_the_interface_does_nothing(tree, branches):
    code, failed, tip = debug_series(tree, branches["sysfs-soft-offline-noop"])
    assert code == 1
    assert "sysfs-soft-offline" in failed, tip["reasons"]


def test_race_with_unpoison_is_caught_when_unpoison_skips_mf_mutex(
        tree, branches):
    """6.1 with unpoison_memory() outside mf_mutex (as 5.10 and 4.x):
    measured here, 4 of 6 boots of the debug guest FAIL (600 rounds; 2
    of 7 with 300), each with "Bad page state ... nonzero _refcount" (a
    page freed with the reference hwpoison took back); the window is a
    few instructions wide, so the test boots the kernel until one FAIL,
    at most RACE_BOOTS times."""
    code, failed, tip = debug_series(tree, branches["unpoison-unlocked"])
    run_dir = Path(tip["boot"]["serial_log"]).parent
    verdicts = [parse_serial_log(
        Path(tip["boot"]["serial_log"]).read_text())]
    config = load_config(RECIPE, "debug")
    initramfs = make_initramfs(RECIPE.program, extra_args=config.guest_args)
    while all(v.passed for v in verdicts) and len(verdicts) < RACE_BOOTS:
        booted = boot(run_dir / "tip-debug-bzImage", initramfs.path,
                      run_dir / f"tip-debug-again{len(verdicts)}-serial.log",
                      timeout=150, memory_mb=config.memory_mb,
                      extra_kernel_args=config.kernel_args, smp=config.smp)
        verdicts.append(parse_serial_log(booted.output,
                                         timed_out=booted.timed_out))
    caught = [v for v in verdicts if not v.passed]
    assert caught, f"{len(verdicts)} boots, none failed"
    assert any(p.kind == "bad page state" for p in caught[0].problems) or \
        any(c.name == "race-unpoison" and not c.passed
            for c in caught[0].checks), caught[0].reasons


# --- the movable config: poisoned zsmalloc pages in the block to offline ---

def test_offline_with_poisoned_zsmalloc_pages_loops_unless_the_mapping_goes(
        tree, branches):
    """The movable config on 6.1.  The unmodified tree is the failing
    side, and the check's negative control: free_pages_prepare()'s
    PageHWPoison early return keeps the PAGE_MAPPING_MOVABLE that
    zsmalloc's reset_page() left, scan_movable_pages() finds the page by
    __PageMovable(), do_migrate_range() skips it as HWPoison, and
    offline_pages() loops until the guest's deadline signal (measured:
    "no progress within 20 s").  Only that check fails.  The same tree
    with the early return also clearing page->mapping (what
    hwpoison-put-last's hook does on 4.x) passes every check, the block
    goes offline."""
    code, report, stderr = verify_json(
        "--tree", str(tree), "--series", branches["hwpoison-clears-mapping"],
        "--config", "movable", "--timeout", "200")
    assert report is not None, stderr
    base, tip = report["results"]
    assert [c["name"] for c in base["checks"] if not c["passed"]] == \
        ["memory-offline-movable"], base["reasons"]
    detail = next(c["detail"] for c in base["checks"]
                  if c["name"] == "memory-offline-movable")
    assert "4 of 4 zsmalloc pages poisoned by soft offline" in detail
    assert "no progress within 20 s" in detail
    assert code == 0, stderr
    assert tip["verdict"] == "PASS", tip["reasons"]
    detail = next(c["detail"] for c in tip["checks"]
                  if c["name"] == "memory-offline-movable")
    assert "4 of 4 zsmalloc pages poisoned" in detail
    assert "offlining the block succeeded" in detail
