#!/usr/bin/env python3
"""Scan speed on the real Debian 6.1 tree, side by side, as ratios.

Runs, on the same files and interleaved so machine noise hits all alike:
  grep -rl put_page (every .c and .h)   -- the baseline the issue names
  git grep -l put_page
  patchgen scan (the whole command, Python start-up included)
and, once (it takes tens of seconds), Coccinelle's spatch asking the same
question (benchmarks/put_then_poison.cocci).  Prints medians and each
one's ratio to grep.  The goal: patchgen scan <= 2x grep.

    python3 benchmarks/bench_scan.py [--tree PATH] [--rounds N] [--no-spatch]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def timed(argv, cwd=None, timeout=900):
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    if result.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(map(str, argv))} failed: {result.stderr[:300]}")
    return seconds, result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", help="kernel tree (default: the cached Debian 6.1 tree)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--no-spatch", action="store_true")
    args = parser.parse_args()
    if args.tree:
        tree = Path(args.tree)
    else:
        from patchgen.kernel.realtree import ensure_linux61
        tree = ensure_linux61()
    env_python = [sys.executable, "-m", "patchgen"]
    commands = {
        "grep -rl put_page": ["grep", "-rl", "--include=*.c", "--include=*.h",
                              "put_page", "."],
        "git grep -l put_page": ["git", "grep", "-l", "put_page", "--", "*.c", "*.h"],
        "patchgen scan": env_python + ["scan", "--tree", str(tree), "--rule", "hwpoison-put-last"],
    }
    os.environ["PYTHONPATH"] = str(HERE.parent)
    files = sum(1 for _ in tree.rglob("*.c"))
    print(f"tree: {tree} ({files} .c files); {args.rounds} rounds, interleaved")
    for argv in commands.values():  # warm the page cache
        timed(argv, cwd=tree)
    times = {name: [] for name in commands}
    for _ in range(args.rounds):
        for name, argv in commands.items():
            times[name].append(timed(argv, cwd=tree)[0])
    base = statistics.median(times["grep -rl put_page"])
    rows = [(name, statistics.median(t), min(t), max(t)) for name, t in times.items()]
    if not args.no_spatch:
        seconds, out = timed(["spatch", "--very-quiet", "--no-includes",
                              "--sp-file", str(HERE / "put_then_poison.cocci"),
                              "--dir", "."], cwd=tree, timeout=3600)
        rows.append(("spatch (1 run)", seconds, seconds, seconds))
        print(f"spatch found: {' '.join(out.split()) or 'nothing'}")
    print(f"{'command':24} {'median s':>9} {'min':>7} {'max':>7} {'x grep':>7}")
    for name, median, low, high in rows:
        print(f"{name:24} {median:9.2f} {low:7.2f} {high:7.2f} {median / base:7.2f}")
    ratio = statistics.median(times["patchgen scan"]) / base
    print(f"patchgen scan / grep -rl put_page = {ratio:.2f} (goal: <= 2)")


if __name__ == "__main__":
    main()
