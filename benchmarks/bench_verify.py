"""Benchmark `patchgen verify` on the real Debian 6.1 tree.

Measures, side by side:

- the first full build (tinyconfig + verify.config, make -jN bzImage) in
  an empty O= folder;
- a no-op rebuild, and an incremental rebuild after a change that touches
  mm/memory-failure.c (same source folder, same O= folder);
- boot-to-verdict under TCG (qemu start to the parsed verdict);
- with --teeth N: N boots each of the unmodified kernel, the kernel whose
  free path lets poisoned pages through, one whose soft offline keeps no
  reference (unpoison leaks the page), and one that panics at boot, with
  their PASS/FAIL counts.

It works in its own worktree of the cached tree (the cache's
bench-trees/), never in the tests' or the user's.  Run from a checkout:

    python3 benchmarks/bench_verify.py [--boots 5] [--teeth 5] [--keep]

--keep skips wiping the build folder (no "first full build" number).
"""

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from patchgen.boot import boot  # noqa: E402
from patchgen.build import FRAGMENT, build_kernel  # noqa: E402
from patchgen.cache import cache_dir, workdir_for  # noqa: E402
from patchgen.initramfs import make_initramfs  # noqa: E402
from patchgen.kconfig import build_dir_for, read_fragment  # noqa: E402
from patchgen.realtree import ensure_linux61  # noqa: E402
from patchgen.verdict import parse_serial_log  # noqa: E402
from verify_variants import root_commit, variant_branch  # noqa: E402


def bench_worktree(cached: Path) -> Path:
    path = cache_dir("bench-trees") / "linux61"
    if not (path / ".git").exists():
        subprocess.run(["git", "-C", cached, "worktree", "prune"], check=True)
        subprocess.run(["git", "-C", cached, "worktree", "add", "-q", "--detach",
                        "--force", path, root_commit(cached)], check=True)
    return path


def checkout(tree: Path, rev: str) -> None:
    subprocess.run(["git", "-C", tree, "checkout", "-q", "-f", "--detach",
                    rev], check=True)


def timed_build(tree: Path, label: str, logs: Path):
    start = time.monotonic()
    result = build_kernel(tree, logs / f"{label}.log")
    return time.monotonic() - start, result


def boots(kernel: Path, initrd: Path, n: int, logs: Path, label: str):
    verdicts, seconds = [], []
    for i in range(n):
        start = time.monotonic()
        booted = boot(kernel, initrd, logs / f"{label}-{i}.log", timeout=180)
        verdict = parse_serial_log(booted.output, timed_out=booted.timed_out,
                                   timeout=booted.timeout)
        seconds.append(time.monotonic() - start)
        verdicts.append(verdict)
    return verdicts, seconds


def describe(verdicts) -> str:
    counts = Counter(v.label for v in verdicts)
    kinds = Counter(v.kind for v in verdicts if not v.passed)
    failed_checks = Counter(c.name for v in verdicts for c in v.checks
                            if not c.passed)
    problems = Counter(p.kind for v in verdicts for p in v.problems)
    text = f"{counts['PASS']}/{len(verdicts)} PASS, {counts['FAIL']} FAIL"
    if kinds:
        text += " (" + ", ".join(f"{k} {n}" for k, n in kinds.items()) + ")"
    if failed_checks:
        text += "; failed checks: " + ", ".join(
            f"{k} {n}/{len(verdicts)}" for k, n in failed_checks.most_common(4))
    if problems:
        text += "; kernel: " + ", ".join(
            f"{k} in {n}/{len(verdicts)}" for k, n in problems.items())
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boots", type=int, default=5)
    parser.add_argument("--teeth", type=int, default=0, metavar="N")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    tree = bench_worktree(ensure_linux61())
    base = root_commit(tree)
    touched = variant_branch(tree, "touch-memory-failure")
    logs = cache_dir("bench-logs") / time.strftime("%Y%m%d-%H%M%S")
    logs.mkdir(parents=True)
    rows = []

    checkout(tree, base)
    build_dir = build_dir_for(workdir_for(tree), tree, read_fragment(FRAGMENT))
    if not args.keep:
        shutil.rmtree(build_dir)
        seconds, result = timed_build(tree, "full", logs)
        rows.append(("first full build", seconds, f"{result.steps} steps"))
        full = seconds
    else:
        full = None
    seconds, result = timed_build(tree, "noop", logs)
    rows.append(("no-op rebuild", seconds, f"{result.steps} steps"))
    checkout(tree, touched)
    seconds, result = timed_build(tree, "incremental", logs)
    rows.append(("rebuild after touching mm/memory-failure.c", seconds,
                 f"{result.steps} steps"))
    incremental = seconds
    checkout(tree, base)
    _, good = timed_build(tree, "back-to-base", logs)
    good_kernel = logs / "good-bzImage"
    shutil.copyfile(good.bzimage, good_kernel)

    initrd = make_initramfs().path
    verdicts, seconds = boots(good_kernel, initrd, args.boots, logs, "boot")
    rows.append((f"boot to verdict, TCG ({args.boots} boots, stress 64)",
                 statistics.median(seconds),
                 f"min {min(seconds):.1f} max {max(seconds):.1f}; "
                 + describe(verdicts)))

    width = max(len(r[0]) for r in rows) + 2
    print(f"patchgen verify benchmark on {tree} (logs in {logs})")
    for name, seconds, note in rows:
        print(f"{name:<{width}}{seconds:8.1f} s   {note}")
    if full:
        print(f"{'full / incremental':<{width}}{full / incremental:8.1f} x")

    if args.teeth:
        print(f"\nteeth: {args.teeth} boots of each kernel")
        kernels = {"unmodified": good_kernel}
        for name in ("broken-free-path", "leak-no-reference",
                     "panic-at-boot"):
            checkout(tree, variant_branch(tree, name))
            _, built = timed_build(tree, name, logs)
            kernels[name] = logs / f"{name}-bzImage"
            shutil.copyfile(built.bzimage, kernels[name])
        checkout(tree, base)
        for name, kernel in kernels.items():
            verdicts, seconds = boots(kernel, initrd, args.teeth, logs, name)
            print(f"{name:<19}{describe(verdicts)}; "
                  f"median {statistics.median(seconds):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
