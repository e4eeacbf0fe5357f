#!/usr/bin/env python3
"""Reading many files, side by side, as ratios to grep.

On one tree, interleaved so machine noise hits all alike:
  grep -rl WORD (every .c and .h)             -- the baseline
  WorkTree:   files_containing([WORD]) + read() of each file found
  CommitTree: files_containing([WORD]) + read() of each file found (HEAD)
Each patchgen row runs in a fresh Python process (so nothing is cached
from the round before: a fresh `git cat-file --batch`, fresh tree
lookups), timed inside it without the interpreter's start-up, and also
including it.  Prints medians and each one's ratio to grep.  The goal:
files_containing + reading each file within 2x grep -rl.

    python3 benchmarks/bench_read.py [TREE] [--word kfree] [--rounds N]

TREE defaults to the cached Debian 6.1 tree (patchgen.kernel.realtree).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))
from bench_scan import timed  # noqa: E402  (one timer for the benchmarks)

# Run in a child process: open the tree, find the files, read them all.
CHILD = r"""
import json, sys, time
start = time.perf_counter()
from patchgen.engine.sources import open_worktree, open_git_tree
kind, tree, word = sys.argv[1:4]
source = open_worktree(tree) if kind == "work" else open_git_tree(tree).at(open_git_tree(tree).head())
names = source.files_containing([word])
size = sum(len(source.read(n)) for n in names)
print(json.dumps({"files": len(names), "bytes": size,
                  "seconds": time.perf_counter() - start}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tree", nargs="?",
                        help="kernel tree (default: the cached Debian 6.1 tree)")
    parser.add_argument("--word", default="kfree")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if args.tree:
        tree = Path(args.tree).resolve()
    else:
        from patchgen.kernel.realtree import ensure_linux61
        tree = ensure_linux61()
    env = dict(os.environ, PYTHONPATH=str(HERE.parent))
    grep = ["grep", "-rl", "--include=*.c", "--include=*.h", "-F", "-e",
            args.word, "."]
    rows = {f"grep -rl {args.word}": None, "WorkTree": "work", "CommitTree": "commit"}
    wall = {name: [] for name in rows}
    inner = {name: [] for name in rows}
    counts = {}

    def one(name, kind):
        if kind is None:
            seconds, out = timed(grep, cwd=tree)
            counts[name] = len(out.splitlines())
            return seconds, seconds
        start = time.perf_counter()
        result = subprocess.run([sys.executable, "-c", CHILD, kind, str(tree), args.word],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, timeout=900, env=env)
        seconds = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"{name} failed: {result.stderr[-600:]}")
        answer = json.loads(result.stdout)
        counts[name] = answer["files"]
        return seconds, answer["seconds"]

    for name, kind in rows.items():   # warm the page cache
        one(name, kind)
    for _ in range(args.rounds):
        for name, kind in rows.items():
            total, work = one(name, kind)
            wall[name].append(total)
            inner[name].append(work)
    base = statistics.median(wall[f"grep -rl {args.word}"])
    print(f"tree: {tree}; word {args.word!r}; {args.rounds} rounds, interleaved")
    print(f"{'':22} {'files':>6} {'median s':>9} {'x grep':>7} "
          f"{'no start-up s':>14} {'x grep':>7}")
    for name in rows:
        wall_m, inner_m = statistics.median(wall[name]), statistics.median(inner[name])
        print(f"{name:22} {counts[name]:6} {wall_m:9.2f} {wall_m / base:7.2f} "
              f"{inner_m:14.2f} {inner_m / base:7.2f}")
    for name in ("WorkTree", "CommitTree"):
        ratio = statistics.median(wall[name]) / base
        print(f"{name} files_containing + read / grep -rl = {ratio:.2f} (goal: <= 2)")


if __name__ == "__main__":
    main()
