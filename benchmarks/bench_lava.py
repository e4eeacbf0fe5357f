"""Benchmark a verify boot through lava-run against the direct qemu boot.

Takes a kernel verify already built (a run folder's <label>-bzImage, so
nothing is built here) and boots it N times each way, alternating:

- direct: boot.boot, qemu to the parsed verdict;
- lava-run: the LAVA job patchgen writes (lava.write_job), run by
  lava-run (deploy, qemu, monitors, power-off) to the verdict read back.

Prints each time, the medians and their ratio, and the verdicts (they must
agree).  Run from a checkout, as root (lava-run works in /var/lib/lava):

    python3 benchmarks/bench_lava.py RUN_FOLDER/tree-bzImage [--boots 5]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from patchgen.vm.boot import boot  # noqa: E402
from patchgen.vm.initramfs import make_initramfs  # noqa: E402
from patchgen.rules.hwpoison.recipe import VERIFY as RECIPE  # noqa: E402
from patchgen.vm.lava import lava_verdict, qemu_settings, write_job  # noqa: E402
from patchgen.vm.lava_run import run_job  # noqa: E402
from patchgen.vm.verdict import parse_serial_log as _parse_serial_log  # noqa: E402


def parse_serial_log(text, **kwargs):
    """The verdict as verify gives it for the hwpoison rule's recipe."""
    return _parse_serial_log(text, recipe=RECIPE, **kwargs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bzimage", type=Path)
    parser.add_argument("--boots", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    initramfs = make_initramfs(RECIPE.program)
    times = {"direct": [], "lava-run": []}
    verdicts = {"direct": [], "lava-run": []}
    with tempfile.TemporaryDirectory(prefix="bench-lava-") as folder:
        folder = Path(folder)
        files = write_job(folder / "jobs", "bench", args.bzimage,
                          initramfs.path, settings=qemu_settings(),
                          boot_timeout=args.timeout)
        for n in range(args.boots):
            start = time.monotonic()
            booted = boot(args.bzimage, initramfs.path,
                          folder / f"direct{n}.log", timeout=args.timeout)
            verdict = parse_serial_log(booted.output,
                                       timed_out=booted.timed_out)
            times["direct"].append(time.monotonic() - start)
            verdicts["direct"].append(verdict.label)

            start = time.monotonic()
            ran = run_job(files, folder / f"lava{n}", timeout=args.timeout)
            verdict = lava_verdict(ran.outcome, timeout=args.timeout)
            times["lava-run"].append(time.monotonic() - start)
            verdicts["lava-run"].append(verdict.label)
            print(f"boot {n + 1}: direct {times['direct'][-1]:.1f} s "
                  f"{verdicts['direct'][-1]}, lava-run "
                  f"{times['lava-run'][-1]:.1f} s {verdicts['lava-run'][-1]}",
                  flush=True)
    direct = statistics.median(times["direct"])
    lava = statistics.median(times["lava-run"])
    print(f"median: direct {direct:.1f} s, lava-run {lava:.1f} s "
          f"(x{lava / direct:.2f}, +{lava - direct:.1f} s per boot)")
    same = verdicts["direct"] == verdicts["lava-run"]
    print("verdicts " + ("agree" if same else "DIFFER") + ": "
          + ", ".join(verdicts["lava-run"]))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
