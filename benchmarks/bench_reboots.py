"""How often each guest check fails over N boots of kernels verify built.

A race check's verdict from one boot is one sample.  This takes the JSON
of a `patchgen verify --matrix FILE --json` run (or of `patchgen verify
--json`), boots every kernel it built N more times with the same config
(its bzImage in the run folder, the recipe's initramfs, boot settings and
kernel arguments), and prints per kernel how many boots failed and which
checks failed how often.  Nothing is rebuilt.

    patchgen verify --matrix matrix.toml --json > run.json
    python3 benchmarks/bench_reboots.py run.json --boots 5 [--config debug]
"""

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_verify_trees import RECIPE, check_counts, reboot, tally  # noqa: E402
from patchgen.vm.kbuild import load_config  # noqa: E402


def cells_of(data: dict) -> list[dict]:
    """The verify reports of a matrix run, or the one report of a verify."""
    if "cells" in data:
        return [c for c in data["cells"] if "results" in c]
    return [dict(data, tree=Path(data.get("tree", "?")).name,
                 config=data["results"][0].get("config", "default"))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("json", type=Path,
                        help="the JSON that verify --json (--matrix) printed")
    parser.add_argument("--boots", type=int, default=5, metavar="N")
    parser.add_argument("--config", action="append", default=[],
                        help="only the cells of these configs")
    args = parser.parse_args()
    data = json.loads(args.json.read_text())
    rows = []
    for cell in cells_of(data):
        if args.config and cell["config"] not in args.config:
            continue
        run_dir = Path(cell["run_dir"])
        for outcome in cell["results"]:
            config = load_config(RECIPE, outcome["config"])
            start = time.monotonic()
            print(f"bench: {cell['tree']}/{cell['config']} "
                  f"{outcome['label']}: {args.boots} boots", file=sys.stderr,
                  flush=True)
            more = reboot(outcome, config, args.boots, run_dir)
            seconds = (time.monotonic() - start) / max(args.boots, 1)
            rows.append((cell["tree"], cell["config"], outcome["label"],
                         tally(outcome, more), check_counts(outcome, more),
                         f"{seconds:.1f} s"))
    head = ("tree", "config", "kernel", "verdict (failed/boots)",
            "failing checks (boots)", "boot")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
