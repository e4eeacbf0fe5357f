"""`patchgen verify --matrix FILE`: the table of a verify matrix.

    patchgen verify --matrix matrix.toml [--parallel N] [-j N] [--json]
                    [--kcidb FILE] [--lava-run | --lava-submit URL ...]

--parallel N is how many trees are verified at once (default 1); -j/--jobs
N is make -jN for every build of every cell, as for one verify (default:
all CPUs).  Builds never overlap (the machine-wide build lock).
"""

import json
import sys
import time
from pathlib import Path

from patchgen.vm.kbuild import Progress
from patchgen.infra.errors import BadArgument
from patchgen.vm.verify import SERIES_STAGE, VerifyOptions


def add_arguments(parser) -> None:
    parser.add_argument("--matrix", metavar="FILE", type=Path,
                        help="verify every tree x config of a matrix file "
                             "(TOML: trees, configs, series, base) and print "
                             "one table")
    parser.add_argument("--kcidb", metavar="FILE", type=Path,
                        help="with --matrix: also write the results as KCIDB "
                             "data (KernelCI's format) to FILE")


class CellProgress:
    """One line on stderr per stage of each cell, and every few seconds
    while it builds."""

    EVERY = 15.0

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.last: dict[str, float] = {}

    def __call__(self, cell: str, event) -> None:
        if not isinstance(event, Progress):
            print(f"patchgen: [{cell}] {event}", file=self.stream, flush=True)
            return
        now = time.monotonic()
        key = f"{cell} {event.stage}"
        if event.count and now - self.last.get(key, 0) < self.EVERY:
            return
        self.last[key] = now
        minutes, seconds = divmod(int(event.elapsed), 60)
        if event.stage == SERIES_STAGE:
            text = event.target
        elif event.stage.endswith("boot"):
            text = "booting"
        elif event.count == 0:
            text = "configuring"
        else:
            text = f"{event.step} {event.target} ({event.count} steps)"
        print(f"patchgen: [{cell} {event.stage} {minutes}:{seconds:02d}] "
              f"{text}", file=self.stream, flush=True)


def run(args, options: VerifyOptions, boot_with) -> int:
    from patchgen.vm.kcidb import GUEST_TEST, matrix_kcidb
    from patchgen.vm.matrix import (load_matrix, matrix_exit_code, run_matrix,
                                 table, to_dict)
    if args.tree or args.series or args.base:
        raise BadArgument("--matrix names the trees, the series and the base "
                          "itself: drop --tree, --series and --base")
    if args.lava_jobs:
        raise BadArgument("--lava-jobs does not go with --matrix: use "
                          "--lava-run or --lava-submit, or write the jobs "
                          "of one tree with --tree")
    matrix = load_matrix(args.matrix, options.rule)
    start = time.monotonic()
    cells = run_matrix(matrix, VerifyOptions(
        tree=Path("."), kvm=options.kvm, stress=options.stress,
        boot_timeout=options.boot_timeout,
        build_timeout=options.build_timeout, memory_mb=options.memory_mb,
        jobs=options.jobs),
        parallel=args.parallel or 1, boot_with=boot_with,
        progress=None if args.json else CellProgress())
    seconds = time.monotonic() - start
    if args.kcidb:
        test = matrix.recipe.kcidb_test if matrix.recipe else GUEST_TEST
        args.kcidb.write_text(json.dumps(matrix_kcidb(cells, matrix.series, test),
                                         indent=2) + "\n")
    if args.json:
        data = to_dict(matrix, cells)
        data["seconds"] = round(seconds, 1)
        print(json.dumps(data, indent=2))
    else:
        print("\n".join(table(cells, matrix.series)))
        print(f"{len(cells)} cells in {seconds:.0f} s"
              + (f"; KCIDB data in {args.kcidb}" if args.kcidb else ""))
    return matrix_exit_code(cells)
