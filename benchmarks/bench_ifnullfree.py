"""The ifnullfree rule on a real tree, side by side (issue 11, items 5 and 7).

In one run, on one tree: `grep -rl kfree` (the floor: reading every file
that could hold a site), `patchgen scan --rule ifnullfree`, `patchgen
apply` (on a `git clone --shared` of the tree, so the tree itself gets no
branch) and `patchgen format` of each branch apply made; with --spatch
also the kernel's own scripts/coccinelle/free/ifnullfree.cocci over the
same folders, and the comparison: every site spatch finds must be among
patchgen's (rewritten or reported), and each site patchgen finds beyond
spatch is printed with its reason.

    python3 benchmarks/bench_ifnullfree.py TREE [FOLDER ...] [--spatch]

TREE is the top of a kernel tree in git (e.g. the Debian 6.1 tree in
~/.cache/patchgen/trees/linux-source-6.1); FOLDERs limit the run like
--only (default: the whole tree).  Prints seconds and ratios to grep.

Measured on the Debian 6.1 tree (2 shared cores, load ~6, 2026-12-02):
grep -rl kfree 5.1 s; scan 11.7 s (2.3x); apply 21.9 s (9 branches,
17 patches); format of the 9 branches 155.7 s (each format scans the
base again for its cover letter and runs checkpatch.pl and
get_maintainer.pl).  spatch with ifnullfree.cocci over the whole tree:
51 min wall (9 min CPU, niced), 20 sites, all of them found by patchgen
(16 rewritten, 4 reported: a comment says the test is a fast path) and
one more (drivers/block/z2ram.c: a braced body the SmPL does not match).
"""

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COCCI = "scripts/coccinelle/free/ifnullfree.cocci"


def timed(argv, **kwargs) -> tuple[float, subprocess.CompletedProcess]:
    start = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    return time.monotonic() - start, result


def patchgen(*args: str, cwd=None) -> list[str]:
    return [sys.executable, "-m", "patchgen", *args]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tree", type=Path)
    parser.add_argument("folders", nargs="*")
    parser.add_argument("--spatch", action="store_true",
                        help="also run spatch with the tree's ifnullfree.cocci")
    args = parser.parse_args()
    tree = args.tree.resolve()
    folders = args.folders or ["."]
    only = [a for f in args.folders for a in ("--only", f)]
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin:/usr/local/bin"}
    import os
    env = dict(os.environ, PYTHONPATH=str(ROOT))

    rows = []
    grep_time, _ = timed(["grep", "-rl", "--include=*.[ch]", "kfree",
                          *[str(tree / f) for f in folders]])
    rows.append(("grep -rl kfree", grep_time))
    scan_time, scan = timed(patchgen("scan", "--tree", str(tree), "--rule",
                                     "ifnullfree", "--json", *only), env=env, cwd=ROOT)
    if scan.returncode != 0:
        print(scan.stderr, file=sys.stderr)
        return 1
    rows.append(("patchgen scan --rule ifnullfree", scan_time))
    import json
    report = json.loads(scan.stdout)
    actions = [f["action"] for f in report["findings"]]

    with tempfile.TemporaryDirectory(prefix="bench-ifnullfree-") as scratch:
        clone = Path(scratch) / "linux"
        subprocess.run(["git", "clone", "-q", "--shared", str(tree), str(clone)],
                       check=True)
        for key, value in (("user.name", "Bench Mark"),
                           ("user.email", "bench@example.org")):
            subprocess.run(["git", "-C", str(clone), "config", key, value], check=True)
        apply_time, applied = timed(patchgen("apply", "--tree", str(clone), "--rule",
                                             "ifnullfree", *only), env=env, cwd=ROOT)
        rows.append(("patchgen apply --rule ifnullfree", apply_time))
        branches = re.findall(r"^branch (\S+):", applied.stdout, re.M)
        format_time = 0.0
        for branch in branches:
            seconds, formatted = timed(patchgen(
                "format", "--tree", str(clone), "--branch", branch, "-o",
                str(Path(scratch) / "out" / branch.replace("/", "_"))),
                env=env, cwd=ROOT)
            format_time += seconds
            if formatted.returncode != 0:
                print(f"format {branch}: {formatted.stderr.strip()}", file=sys.stderr)
        rows.append((f"patchgen format ({len(branches)} branches)", format_time))

    spatch_sites = None
    if args.spatch:
        spatch_time = 0.0
        spatch_sites = set()
        for folder in folders:
            seconds, result = timed(["spatch", "--very-quiet", "-D", "report",
                                     "--no-includes", "--include-headers",
                                     "--cocci-file", str(tree / COCCI),
                                     "--dir", str(tree / folder)])
            spatch_time += seconds
            for line in result.stdout.splitlines():
                match = re.match(r"(.+?):(\d+):\d+-\d+: WARNING", line)
                if match:
                    spatch_sites.add((str(Path(match.group(1)).resolve()
                                          .relative_to(tree)), int(match.group(2))))
        rows.append(("spatch ifnullfree.cocci", spatch_time))

    print(f"tree {tree}, folders {' '.join(folders)}")
    for name, seconds in rows:
        print(f"  {name:40s} {seconds:8.1f} s  {seconds / grep_time:6.1f}x grep")
    print(f"  sites: {actions.count('rewrite')} rewritten, "
          f"{actions.count('report')} reported; {len(branches)} branches")
    if spatch_sites is not None:
        from patchgen.engine.scan import scan_tree
        plan = scan_tree(tree, "ifnullfree", tuple(args.folders)).plan
        ours = {(s.path, s.call_line): s for s in plan.sites}
        missed = sorted(spatch_sites - set(ours))
        print(f"  spatch: {len(spatch_sites)} sites; patchgen misses {len(missed)}")
        for key in missed:
            print(f"    MISSED {key[0]}:{key[1]}")
        for key, site in sorted(ours.items()):
            if key in spatch_sites:
                if site.action == "report":
                    print(f"    both, patchgen only reports {key[0]}:{key[1]}: {site.reason}")
            elif "does more than" not in site.reason:
                print(f"    patchgen only {key[0]}:{key[1]} ({site.action}): {site.reason}")
        return 1 if missed else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
