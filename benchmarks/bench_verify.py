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
  their PASS/FAIL counts;
- with --debug-teeth N: the "debug" config (--config debug: two CPUs,
  memory hotplug, DEBUG_VM, page_owner): N boots each of the unmodified
  kernel and of the negative control of each of its checks (unpoison
  without mf_mutex, memory offline that refuses hwpoisoned pages, a sysfs
  soft_offline_page that does nothing), with how often each check failed
  and how long each phase of the guest test took (its "info time" lines);
- with --movable-teeth N: the "movable" config (debug + zram): N boots of
  the unmodified kernel, which fails memory-offline-movable (its offline
  loops on a soft-offlined zsmalloc page that keeps PAGE_MAPPING_MOVABLE),
  and of the kernel whose hwpoison early return also clears page->mapping,
  which passes it.

It works in its own worktree of the cached tree (the cache's
bench-trees/), never in the tests' or the user's.  Run from a checkout:

    python3 benchmarks/bench_verify.py [--boots 5] [--teeth 5] [--keep]
        [--debug-teeth 5] [--movable-teeth 5]

--keep skips wiping the build folder (no "first full build" number).
"""

import argparse
import re
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

from patchgen.vm.boot import boot  # noqa: E402
from patchgen.vm.kbuild import build_kernel, load_config  # noqa: E402
from patchgen.rules.hwpoison.recipe import VERIFY as RECIPE, VERIFY_FRAGMENT as FRAGMENT  # noqa: E402
from patchgen.infra.cache import cache_dir, workdir_for  # noqa: E402
from patchgen.vm.initramfs import make_initramfs  # noqa: E402
from patchgen.kernel.kconfig import build_dir_for, read_fragment  # noqa: E402
from patchgen.kernel.realtree import ensure_linux61  # noqa: E402
from patchgen.vm.verdict import parse_serial_log as _parse_serial_log  # noqa: E402
from verify_variants import root_commit, variant_branch  # noqa: E402


def parse_serial_log(text, **kwargs):
    """The verdict as verify gives it for the hwpoison rule's recipe."""
    return _parse_serial_log(text, recipe=RECIPE, **kwargs)


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


def timed_build(tree: Path, label: str, logs: Path, config=None):
    start = time.monotonic()
    if config is None:
        result = build_kernel(tree, logs / f"{label}.log",
                              fragment=load_config(RECIPE).fragment)
    else:
        result = build_kernel(tree, logs / f"{label}.log", jobs=2,
                              fragment=config.fragment,
                              optional=config.optional)
    return time.monotonic() - start, result


def boots(kernel: Path, initrd: Path, n: int, logs: Path, label: str,
          config=None, outputs: list | None = None):
    verdicts, seconds = [], []
    extra = {} if config is None else dict(
        memory_mb=config.memory_mb or 256, smp=config.smp,
        extra_kernel_args=config.kernel_args)
    for i in range(n):
        start = time.monotonic()
        booted = boot(kernel, initrd, logs / f"{label}-{i}.log", timeout=180,
                      **extra)
        verdict = parse_serial_log(booted.output, timed_out=booted.timed_out,
                                   timeout=booted.timeout)
        seconds.append(time.monotonic() - start)
        verdicts.append(verdict)
        if outputs is not None:
            outputs.append(booted.output)
    return verdicts, seconds


_PHASE_TIME = re.compile(r"PATCHGEN: (?:#\d+ )?info time (\S+) ([\d.]+) s")


def phase_times(outputs) -> str:
    """Median seconds of each guest phase over the boots' serial logs."""
    seen: dict[str, list[float]] = {}
    for output in outputs:
        found = dict(_PHASE_TIME.findall(output))
        for name, value in found.items():
            seen.setdefault(name, []).append(float(value))
    return ", ".join(f"{k} {statistics.median(v):.1f} s"
                     for k, v in seen.items())


DEBUG_CONTROLS = ("unpoison-unlocked", "offline-refuses-hwpoison",
                  "sysfs-soft-offline-noop")
# The movable config: the unmodified tree is the failing side.
MOVABLE_CONTROLS = ("hwpoison-clears-mapping",)


def debug_teeth(tree: Path, base: str, n: int, logs: Path,
                config_name: str = "debug",
                controls: tuple = DEBUG_CONTROLS) -> None:
    config = load_config(RECIPE, config_name)
    initrd = make_initramfs(RECIPE.program, extra_args=config.guest_args).path
    print(f"\n{config_name} teeth: {n} boots of each kernel, config "
          f"{config_name} (-smp {config.smp}, {' '.join(config.kernel_args)})")
    for name in ("unmodified", *controls):
        checkout(tree, base if name == "unmodified"
                 else variant_branch(tree, name))
        label = f"{config_name}-{name}"
        seconds, built = timed_build(tree, label, logs, config)
        kernel = logs / f"{label}-bzImage"
        shutil.copyfile(built.bzimage, kernel)
        outputs: list[str] = []
        verdicts, boot_seconds = boots(kernel, initrd, n, logs, label,
                                       config, outputs)
        print(f"{name:<26}{describe(verdicts)}; build {seconds:.0f} s "
              f"({built.steps} steps), boot median "
              f"{statistics.median(boot_seconds):.1f} s; phases: "
              f"{phase_times(outputs)}", flush=True)
    checkout(tree, base)


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
    parser.add_argument("--debug-teeth", type=int, default=0, metavar="N")
    parser.add_argument("--movable-teeth", type=int, default=0, metavar="N")
    parser.add_argument("--only-debug", action="store_true",
                        help="skip everything but --debug-teeth and "
                        "--movable-teeth")
    args = parser.parse_args()

    tree = bench_worktree(ensure_linux61())
    base = root_commit(tree)
    touched = variant_branch(tree, "touch-memory-failure")
    logs = cache_dir("bench-logs") / time.strftime("%Y%m%d-%H%M%S")
    logs.mkdir(parents=True)
    rows = []
    if args.only_debug:
        if args.debug_teeth or not args.movable_teeth:
            debug_teeth(tree, base, args.debug_teeth or 3, logs)
        if args.movable_teeth:
            debug_teeth(tree, base, args.movable_teeth, logs, "movable",
                        MOVABLE_CONTROLS)
        return 0

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

    initrd = make_initramfs(RECIPE.program).path
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
    if args.debug_teeth:
        debug_teeth(tree, base, args.debug_teeth, logs)
    if args.movable_teeth:
        debug_teeth(tree, base, args.movable_teeth, logs, "movable",
                    MOVABLE_CONTROLS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
