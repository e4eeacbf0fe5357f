"""How check's time grows with the number of patches (issue 10, item 9).

Makes a fixture tree (e3-v4.14) with N commits on top (each adds a small
function to one of 20 files under mm/, so later patches touch files
earlier ones changed, as a long series does), then times
`patchgen check BASE..TIP --tree TREE` for each N and prints seconds, the
time per patch and the ratio to the smallest N: a linear check keeps the
time per patch flat.

    python3 benchmarks/bench_check.py [--sizes 75 150 300]
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from patchgen.engine.fixtures import materialize  # noqa: E402


def make_series(tree: Path, count: int) -> None:
    env = dict(os.environ, GIT_AUTHOR_DATE="2016-04-07T09:00:00+00:00",
               GIT_COMMITTER_DATE="2016-04-07T09:00:00+00:00")
    for number in range(1, count + 1):
        path = tree / "mm" / f"bench{number % 20:02d}.c"
        with open(path, "a") as out:
            out.write(f"\nint bench_{number}(void)\n{{\n\treturn {number};\n}}\n")
        subprocess.run(["git", "-C", str(tree), "add", str(path)], check=True)
        subprocess.run(["git", "-C", str(tree), "commit", "-q", "-m",
                        f"mm/bench: add bench_{number}()\n\nWhy: to measure.\n\n"
                        "Signed-off-by: Fixture Author <fixture@example.org>"],
                       check=True, env=env)


def time_check(tree: Path, count: int) -> tuple[float, int]:
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "patchgen", "check",
                           f"HEAD~{count}..HEAD", "--tree", str(tree), "-q"],
                          env=dict(os.environ, PYTHONPATH=str(ROOT)),
                          capture_output=True, text=True)
    return time.monotonic() - start, proc.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[75, 150, 300])
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="patchgen-bench-check-") as scratch:
        for count in args.sizes:
            tree = materialize("e3-v4.14", Path(scratch) / f"t{count}")
            make_series(tree, count)
            seconds, code = time_check(tree, count)
            rows.append((count, seconds, code))
            print(f"{count:5d} patches: {seconds:7.1f} s  "
                  f"({seconds / count * 1000:6.0f} ms per patch, exit {code})",
                  flush=True)
    first_count, first_seconds, _ = rows[0]
    print()
    for count, seconds, _ in rows:
        print(f"{count:5d}/{first_count}: patches x{count / first_count:.1f}, "
              f"time x{seconds / first_seconds:.2f}")


if __name__ == "__main__":
    main()
