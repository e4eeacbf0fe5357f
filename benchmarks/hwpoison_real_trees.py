#!/usr/bin/env python3
"""The hwpoison series on real kernel trees: verdicts, builds, checkpatch.

    python3 benchmarks/hwpoison_real_trees.py ~/trees [--build linux-4.14.67 ...]
        [--scratch /tmp/NAME] [-j 2]

For every tree in the folder (a git repository with one commit; never
modified: each is cloned with `git clone --shared` into the scratch folder)
it prints what `patchgen scan` concludes and what `patchgen apply` makes.
For the trees named with --build it also builds mm/ at the base and after
each patch, with CONFIG_MEMORY_FAILURE on and off (tinyconfig plus
patchgen/rules/hwpoison/check-build.config plus memory hot-remove, so that
mm/memory_hotplug.c is compiled too), compares the warnings of each patch
with those of the base by file and text, and runs the tree's own
scripts/checkpatch.pl, plain and --strict, on each patch.  Progress goes
to stderr, the table to stdout.
"""

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from patchgen.engine.registry import get_rule  # noqa: E402
from patchgen.engine.sources import open_worktree  # noqa: E402
from patchgen.kernel.toolchain import make_variables  # noqa: E402

RULE = get_rule("hwpoison-put-last")
ENABLE = ["64BIT", "X86_MCE", "MEMORY_FAILURE", "COMPACTION", "MIGRATION",
          "ADVISE_SYSCALLS", "SPARSEMEM_MANUAL", "MEMORY_HOTPLUG", "MEMORY_HOTREMOVE"]
# Extra make variables from --make-var; without them, what patchgen's own
# builds pass (KCFLAGS=-fno-pie for a tree before v4.9 and a compiler that
# builds position-independent code by default).
MAKE_VARS: list[str] = []


def make_vars(tree: Path) -> list[str]:
    return MAKE_VARS or make_variables(tree)


WARNING = re.compile(r"^(?P<path>[^\s:]+):\d+:\d+: warning: (?P<text>.*)$")


def say(*words):
    print(*words, file=sys.stderr, flush=True)


def sh(argv, cwd=None, check=True, timeout=7200):
    result = subprocess.run([str(a) for a in argv], cwd=cwd, capture_output=True,
                            text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise SystemExit(f"{' '.join(map(str, argv))} failed:\n{result.stderr[-2000:]}")
    return result


def configure(tree: Path, out: Path, memory_failure: bool, jobs: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    sh(["make", "-C", tree, f"O={out}", *make_vars(tree), "tinyconfig"])
    config = tree / "scripts" / "config"
    args = []
    for symbol in ENABLE:
        if symbol == "MEMORY_FAILURE" and not memory_failure:
            args += ["--disable", symbol]
        else:
            args += ["--enable", symbol]
    sh([config, "--file", out / ".config", *args])
    sh(["make", "-C", tree, f"O={out}", *make_vars(tree), "olddefconfig"])
    text = (out / ".config").read_text()
    for symbol in ("MEMORY_HOTREMOVE", "MIGRATION"):
        if f"CONFIG_{symbol}=y" not in text:
            raise SystemExit(f"{out}: CONFIG_{symbol} is not set after olddefconfig")
    if (f"CONFIG_MEMORY_FAILURE=y" in text) != memory_failure:
        raise SystemExit(f"{out}: CONFIG_MEMORY_FAILURE is not as asked")
    sh(["make", "-C", tree, f"O={out}", *make_vars(tree), f"-j{jobs}", "prepare"], timeout=7200)


# --objects: build only the objects the series touches (make 4.3 rebuilds
# all of mm/ on every run in trees before the "fix # escaping in .cmd
# files" change, 4.6 among them).
OBJECTS: list[str] = []


def build_mm(tree: Path, out: Path, jobs: int, touch: bool,
             memory_failure: bool = True) -> tuple[bool, set, str]:
    if touch:
        now = time.time()
        import os
        for source in (tree / "mm").glob("*.c"):
            os.utime(source, (now, now))
    targets = OBJECTS or ["mm/"]
    if not memory_failure:
        targets = [t for t in OBJECTS if "memory-failure" not in t]
    result = sh(["make", "-C", tree, f"O={out}", *make_vars(tree), f"-j{jobs}", *targets],
                check=False)
    output = result.stdout + result.stderr
    warnings = set()
    for line in output.splitlines():
        match = WARNING.match(line.strip())
        if match:
            path = match.group("path").replace(str(tree) + "/", "")
            warnings.add((path, match.group("text")))
    return result.returncode == 0, warnings, output


def checkpatch(tree: Path, patch: Path, strict: bool) -> tuple[int, int, int]:
    argv = ["perl", tree / "scripts" / "checkpatch.pl", "--no-tree", patch]
    if strict:
        argv.insert(2, "--strict")
    output = sh(argv, cwd=tree, check=False).stdout
    found = re.search(r"total: (\d+) errors, (\d+) warnings(?:, (\d+) checks)?", output)
    if not found:
        return (-1, -1, -1)
    return tuple(int(g or 0) for g in found.groups())


def one_tree(source: Path, scratch: Path, build: bool, jobs: int) -> list[str]:
    name = source.name
    clone = scratch / name
    if clone.exists():
        sh(["rm", "-rf", clone])
    say(f"{name}: clone")
    sh(["git", "clone", "-q", "--shared", source, clone])
    sh(["git", "-C", clone, "config", "user.name", "Patchgen Bench"])
    sh(["git", "-C", clone, "config", "user.email", "bench@example.org"])
    report = RULE.scan(open_worktree(clone))
    rows = [f"{name}: scan {report.verdict}, eras {dict(report.facts)}, "
            f"{len(report.steps)} patches"]
    for finding in report.findings:
        if finding.kind in ("related-site", "invalidate-site", "hotplug", "mutex"):
            rows.append(f"    {finding.kind} {finding.location()}: {finding.action}")
    applied = sh([sys.executable, "-m", "patchgen", "apply", "--rule", "hwpoison-put-last", "--tree", clone],
                 cwd=REPO, check=False)
    rows.append(f"    apply: exit {applied.returncode}: "
                f"{(applied.stdout + applied.stderr).strip().splitlines()[0]}")
    if applied.returncode != 0 or not build:
        return rows
    base = sh(["git", "-C", clone, "rev-parse", "HEAD"]).stdout.strip()
    commits = sh(["git", "-C", clone, "rev-list", "--reverse",
                  f"{base}..{RULE.default_branch}"]).stdout.split()
    patches = scratch / f"{name}-patches"
    sh(["rm", "-rf", patches])
    sh(["git", "-C", clone, "format-patch", "-q", "-o", patches,
        f"{base}..{RULE.default_branch}"])
    for number, patch in enumerate(sorted(patches.glob("*.patch")), 1):
        plain = checkpatch(clone, patch, False)
        strict = checkpatch(clone, patch, True)
        rows.append(f"    checkpatch {number}/{len(commits)} {patch.name[:40]}: "
                    f"plain {plain[0]}E/{plain[1]}W, strict {strict[0]}E/{strict[1]}W/"
                    f"{strict[2]}C")
    for memory_failure in (True, False):
        setting = "on" if memory_failure else "off"
        out = scratch / f"{name}-build-mf-{setting}"
        say(f"{name}: configure MEMORY_FAILURE {setting}")
        sh(["git", "-C", clone, "checkout", "-q", base])
        configure(clone, out, memory_failure, jobs)
        say(f"{name}: build mm/ at the base, MEMORY_FAILURE {setting}")
        ok, known, _ = build_mm(clone, out, jobs, touch=True,
                                memory_failure=memory_failure)
        built = [name for name in ("memory-failure", "memory_hotplug", "migrate",
                                   "page_alloc") if (out / "mm" / f"{name}.o").exists()]
        rows.append(f"    MEMORY_FAILURE {setting}: base {'ok' if ok else 'FAILED'}, "
                    f"{len(known)} warnings in mm/; built {', '.join(built)}")
        for number, sha in enumerate(commits, 1):
            sh(["git", "-C", clone, "checkout", "-q", sha])
            say(f"{name}: build mm/ after patch {number}, MEMORY_FAILURE {setting}")
            ok, warnings, output = build_mm(clone, out, jobs, touch=False,
                                            memory_failure=memory_failure)
            new = sorted(warnings - known)
            known |= warnings
            rows.append(f"        patch {number}/{len(commits)}: "
                        f"{'builds' if ok else 'FAILS'}, new warnings: "
                        f"{'; '.join(f'{p}: {t}' for p, t in new) or 'none'}")
            if not ok:
                tail = [l for l in output.splitlines() if "error" in l][:3]
                rows.append(f"            {' | '.join(tail)}")
        sh(["git", "-C", clone, "checkout", "-q", base])
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("trees", type=Path)
    parser.add_argument("--build", nargs="*", default=[])
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/hwpoison-real-trees"))
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--objects", nargs="*", default=[],
                        help="build these objects instead of mm/, e.g. "
                        "mm/memory-failure.o mm/migrate.o")
    parser.add_argument("--make-var", action="append", default=[],
                        help="a VAR=VALUE for every make, e.g. KCFLAGS=-fno-pie")
    options = parser.parse_args(argv)
    MAKE_VARS.extend(options.make_var)
    OBJECTS.extend(options.objects)
    options.scratch.mkdir(parents=True, exist_ok=True)
    for source in sorted(p for p in options.trees.iterdir() if (p / ".git").exists()):
        if options.only is not None and source.name not in options.only:
            continue
        for row in one_tree(source, options.scratch, source.name in options.build,
                            options.jobs):
            print(row, flush=True)
    if OBJECTS:
        print(f"(built {' '.join(OBJECTS)} only, not all of mm/)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
