"""`patchgen apply` then `patchgen verify --series` on real kernel trees.

For every git tree in a folder (the argument, or PATCHGEN_REAL_TREES):

- E2/E3 (the call-site era `patchgen scan` reports): a private clone in the
  cache (never the tree itself), `patchgen apply --force` there, then
  `patchgen verify --series hwpoison-put-last` with each config (default,
  debug): the base and the series' tip, built incrementally in one folder;
- E5 (a 6.x tree): `patchgen verify` with each config;
- any other era: listed, not built.

With --boots N each kernel verify built is booted N more times (its own
bzImage from the run folder, the same initramfs and boot settings), so the
table says how often a check fails, not only whether it failed once.
One table at the end: tree, era, config, base verdict, series verdict,
failing checks, times.  Kernel builds take minutes each (-j2 here); they
stay in the cache, so a second run only boots.

    python3 benchmarks/bench_verify_trees.py ~/trees [--boots 5]
        [--only linux-4.14.67] [--config debug] [-j 2]
"""

import argparse
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from patchgen.vm.boot import DEFAULT_MEMORY_MB, boot  # noqa: E402
from patchgen.vm.kbuild import load_config  # noqa: E402
from patchgen.rules.hwpoison.recipe import VERIFY as RECIPE  # noqa: E402
from patchgen.infra.cache import cache_dir  # noqa: E402
from patchgen.vm.initramfs import make_initramfs  # noqa: E402
from patchgen.kernel.realtree import ensure_linux61  # noqa: E402
from patchgen.vm.verdict import parse_serial_log as _parse_serial_log  # noqa: E402


def parse_serial_log(text, **kwargs):
    """The verdict as verify gives it for the hwpoison rule's recipe."""
    return _parse_serial_log(text, recipe=RECIPE, **kwargs)

BRANCH = "hwpoison-put-last"


def patchgen(*args, timeout=7200):
    """The real CLI, from this checkout; stderr (progress) passes through."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "patchgen", *args],
                            stdout=subprocess.PIPE, text=True, env=env,
                            timeout=timeout)
    return result.returncode, result.stdout, time.monotonic() - start


def era_of(tree: Path) -> tuple[str, str]:
    code, out, _ = patchgen("scan", "--tree", str(tree), "--rule", "hwpoison-put-last", "--json")
    try:
        data = json.loads(out)
    except ValueError:
        return "?", f"scan failed (exit {code})"
    version = data.get("kernel_version") or "?"
    if version.startswith("6."):
        return "E5", version
    return (data.get("facts") or {}).get("call site") or "?", version


def private_clone(tree: Path) -> Path:
    clone = cache_dir("bench-trees") / f"real-{tree.name}"
    if not (clone / ".git").is_dir():
        subprocess.run(["git", "clone", "-q", "--shared", str(tree),
                        str(clone)], check=True, timeout=1800)
    return clone


def reboot(outcome: dict, config, n: int, run_dir: Path) -> list:
    """n more boots of the kernel behind *outcome*."""
    name = outcome["label"] + ("" if outcome["config"] == "default"
                               else f"-{outcome['config']}")
    kernel = run_dir / f"{name}-bzImage"
    initrd = make_initramfs(RECIPE.program, extra_args=config.guest_args).path
    verdicts = []
    for i in range(n):
        booted = boot(kernel, initrd, run_dir / f"{name}-again{i}-serial.log",
                      timeout=180, memory_mb=config.memory_mb
                      or DEFAULT_MEMORY_MB,
                      extra_kernel_args=config.kernel_args, smp=config.smp)
        verdicts.append(parse_serial_log(booted.output,
                                         timed_out=booted.timed_out,
                                         timeout=booted.timeout))
    return verdicts


def failing(result: dict) -> list[str]:
    names = [c["name"] for c in result.get("checks", []) if not c["passed"]]
    names += [f"kernel:{p['kind']}" for p in result.get("kernel_problems", [])]
    if result.get("verdict") == "FAIL" and not names:
        names = [result.get("kind", "fail")]
    return names


def tally(first: dict, more: list) -> str:
    """'FAIL' or 'PASS', with N more boots: 'FAIL 4/5' (failed in 4 of 5)."""
    label = first.get("verdict", "-")
    if not more:
        return label
    fails = (label == "FAIL") + sum(not v.passed for v in more)
    return f"{label} {fails}/{len(more) + 1}"


def check_counts(first: dict, more: list) -> str:
    counts = Counter(failing(first))
    for verdict in more:
        counts.update({c.name for c in verdict.checks if not c.passed})
        counts.update({f"kernel:{p.kind}" for p in verdict.problems})
    total = len(more) + 1
    return ", ".join(f"{k} {n}/{total}" for k, n in counts.most_common(5)) or "-"


def run_tree(tree: Path, era: str, configs, args, rows) -> None:
    config_args = []
    for name in configs:
        start = time.monotonic()
        if era == "E5":
            code, out, seconds = patchgen("verify", "--tree", str(tree),
                                          "--config", name, "--json",
                                          *config_args)
        else:
            clone = private_clone(tree)
            patchgen("apply", "--tree", str(clone), "--rule", "hwpoison-put-last", "--force")
            code, out, seconds = patchgen("verify", "--tree", str(clone),
                                          "--series", BRANCH, "--config",
                                          name, "--json", "--timeout", "120",
                                          *config_args)
        report = json.loads(out) if out.strip() else None
        if report is None:
            rows.append((tree.name, era, name, "-", "-",
                         f"verify exit {code} (no report)",
                         f"{time.monotonic() - start:.0f} s"))
            continue
        config = load_config(RECIPE, name)
        run_dir = Path(report["run_dir"])
        results = report["results"]
        more = {r["label"]: reboot(r, config, args.boots, run_dir)
                for r in results}
        base = results[0]
        tip = results[-1] if len(results) > 1 else None
        times = "; ".join(f"{r['label']} build {r['build']['seconds']:.0f} s "
                          f"boot {r['boot']['seconds']:.1f} s"
                          for r in results)
        optional = sorted({s for r in results
                           for s in r.get("missing_optional_symbols", [])})
        note = f" (no {', '.join(optional)})" if optional else ""
        rows.append((tree.name, era, name + note,
                     tally(base, more[base["label"]]),
                     tally(tip, more[tip["label"]]) if tip else "-",
                     "base: " + check_counts(base, more[base["label"]])
                     + (" | series: " + check_counts(tip, more[tip["label"]])
                        if tip else ""),
                     times))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?",
                        default=os.environ.get("PATCHGEN_REAL_TREES"))
    parser.add_argument("--boots", type=int, default=0, metavar="N",
                        help="more boots of each kernel built")
    parser.add_argument("--only", action="append", default=[],
                        metavar="NAME", help="only these trees")
    parser.add_argument("--config", action="append", default=[],
                        choices=list(RECIPE.configs), help="default: every config")
    parser.add_argument("--with-61", action="store_true",
                        help="also the cached Debian 6.1 tree (E5)")
    args = parser.parse_args()
    if not args.folder:
        parser.error("give a folder of trees or set PATCHGEN_REAL_TREES")
    configs = args.config or list(RECIPE.configs)
    trees = sorted(p for p in Path(args.folder).expanduser().iterdir()
                   if (p / ".git").exists() and (p / "Makefile").is_file())
    if args.only:
        trees = [t for t in trees if t.name in args.only]
    if args.with_61:
        trees.append(ensure_linux61())
    rows = []
    for tree in trees:
        era, version = era_of(tree)
        print(f"bench: {tree.name}: {version}, era {era}", file=sys.stderr,
              flush=True)
        if era in ("E2", "E3", "E5"):
            run_tree(tree, era, configs, args, rows)
        else:
            rows.append((tree.name, era, "-", "-", "-",
                         "not built (only E2, E3 and E5 are)", "-"))
    head = ("tree", "era", "config", "base", "series", "failing checks",
            "times")
    widths = [max(len(str(r[i])) for r in [head, *rows]) for i in range(5)]
    print("  ".join(h.ljust(w) for h, w in zip(head[:5], widths))
          + "  " + "  ".join(head[5:]))
    for row in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(row[:5], widths))
              + "  " + "  ".join(row[5:]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
