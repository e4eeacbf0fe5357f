"""patchgen verify: build the tree, boot it in qemu, judge the serial log."""

import argparse
import math
import json
import shlex
import sys
import time
from pathlib import Path

from patchgen.infra.errors import UsageError
from patchgen.vm.boot import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT
from patchgen.vm.kbuild import DEFAULT_BUILD_TIMEOUT, Progress
from patchgen.cli import lava_modes, matrix_mode
from patchgen.vm.initramfs import DEFAULT_STRESS
from patchgen.vm.verify import (ALL_CONFIGS, SERIES_STAGE, VerifyReport,
                                VerifyOptions, verify)

NAME = "verify"
HELP = ("build a kernel tree (or a series' base and tip), boot it in qemu "
        "and run the rule's guest test: PASS or FAIL with the reasons")


def add_arguments(parser) -> None:
    parser.add_argument("--tree", type=Path,
                        help="the kernel source tree to build (default: the "
                             "one the current folder is in; not with --matrix)")
    # SERIES as check spells it (a positional), and --series as before.
    parser.add_argument("series_positional", nargs="?", metavar="SERIES",
                        help="the same as --series")
    parser.add_argument("--series", metavar="BRANCH|SERIES_DIR|MBOX",
                        help="verify the base and the tip of a series: a "
                             "branch of --tree, a folder of patches (git "
                             "format-patch) or an mbox; both are built in a "
                             "private clone in the cache, never in --tree, "
                             "and nothing is added to its repository")
    parser.add_argument("--base", metavar="REV",
                        help="the series' base (default: the merge base of "
                             "the branch with HEAD; HEAD for a folder or an "
                             "mbox)")
    parser.add_argument("--rule", metavar="RULE",
                        help="whose verify recipe (guest test and kernel "
                             "configs) to run (default: the rule that made "
                             "the series, else the one installed rule that "
                             "has a recipe)")
    parser.add_argument("--kvm", action="store_true",
                        help="boot with -enable-kvm -cpu host (default: TCG; "
                             "KVM guests hang on some machines)")
    parser.add_argument("--stress", type=_count, default=DEFAULT_STRESS,
                        metavar="N",
                        help=f"how much load the guest test adds, passed to "
                             f"it as --stress N (default {DEFAULT_STRESS}; 0 "
                             "skips that part)")
    parser.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT,
                        metavar="SECONDS",
                        help=f"stop a guest after this long (default "
                             f"{DEFAULT_TIMEOUT:.0f})")
    parser.add_argument("--build-timeout", type=_seconds,
                        default=DEFAULT_BUILD_TIMEOUT, metavar="SECONDS",
                        help=f"stop make after this long (default "
                             f"{DEFAULT_BUILD_TIMEOUT:.0f})")
    parser.add_argument("-j", "--jobs", type=_count, default=None,
                        metavar="N", help="make -jN (default: all CPUs)")
    parser.add_argument("--parallel", metavar="N", type=_count, default=None,
                        help="with --matrix: verify N trees at once "
                             "(default 1; builds still take turns)")
    parser.add_argument("--memory", type=_megabytes, default=None,
                        metavar="MB",
                        help=f"guest memory (default: the config's, else "
                             f"{DEFAULT_MEMORY_MB})")
    parser.add_argument("--config", metavar="NAME|FILE|all", default="default",
                       help="the kernel config and the checks that go with "
                            "it: a config of the rule's recipe by name "
                            "(`patchgen verify --list-configs` lists them), "
                            "or a fragment FILE read after the default one; "
                            "all: every named config, results side by "
                            "side (default: default)")
    parser.add_argument("--list-configs", action="store_true",
                        help="list the named configs of each installed "
                             "rule's verify recipe and exit")
    parser.add_argument("--show-command", action="store_true",
                        help="print each qemu command line before it runs")
    parser.add_argument("--json", action="store_true",
                        help="print the verdicts as JSON on stdout")
    lava_modes.add_arguments(parser)
    matrix_mode.add_arguments(parser)


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
    if value < 0 or value > 4000:
        raise argparse.ArgumentTypeError(f"{value} is out of range 0..4000")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    if not math.isfinite(value) or value <= 0:   # nan would mean no timeout
        raise argparse.ArgumentTypeError("must be a number of seconds more than 0")
    return value


def _megabytes(text: str) -> int:
    """Guest memory: a guest needs some to boot at all."""
    value = _count(text)
    if value < 64:
        raise argparse.ArgumentTypeError(f"{value} MB is too little for the "
                                         "guest: give at least 64")
    return value


class ProgressPrinter:
    """Build progress on stderr: each stage, then a line every few seconds
    with the Kbuild step, the steps so far and the elapsed time."""

    EVERY = 10.0

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.last = None

    def __call__(self, event: Progress) -> None:
        now = time.monotonic()
        first_of_stage = event.count == 0
        if not first_of_stage and self.last and now - self.last < self.EVERY:
            return
        self.last = now
        minutes, seconds = divmod(int(event.elapsed), 60)
        if event.stage == SERIES_STAGE:
            text = event.target
        elif event.stage.endswith("boot"):
            text = f"booting {event.target}"
        elif first_of_stage:
            text = f"configuring ({event.target})"
        else:
            text = f"{event.step} {event.target} ({event.count} steps)"
        print(f"patchgen: [{event.stage} {minutes}:{seconds:02d}] {text}",
              file=self.stream, flush=True)


def run(args) -> int:
    if args.series_positional is not None:
        if args.series is not None and args.series != args.series_positional:
            raise UsageError(f"two series: {args.series_positional} and --series "
                             f"{args.series}: give one")
        args.series = args.series_positional
    if args.parallel and not args.matrix:
        raise UsageError("--parallel N is how many trees of a --matrix run "
                         "at once: give --matrix, or use -j N for make")
    options = VerifyOptions(tree=args.tree, series=args.series,
                            base=args.base, kvm=args.kvm, stress=args.stress,
                            boot_timeout=args.timeout,
                            build_timeout=args.build_timeout, jobs=args.jobs,
                            memory_mb=args.memory,
                            configs=(ALL_CONFIGS,) if args.config == "all"
                            else (args.config,), rule=args.rule)
    if args.list_configs:
        print("\n".join(list_configs()))
        return 0
    progress = None if args.json else ProgressPrinter()

    def show(argv) -> None:
        if args.show_command:
            print(shlex.join(argv), file=sys.stderr if args.json
                  else sys.stdout, flush=True)

    written: list = []
    boot_with = lava_modes.boot_function(args, written)
    if args.matrix:
        return matrix_mode.run(args, options, boot_with)
    if args.tree is None:
        # A usage error, as argparse's own (exit 2).
        print("patchgen verify: error: give --tree (the kernel tree to "
              "verify) or --matrix (a file of trees and configs)",
              file=sys.stderr)
        return 2
    report = verify(options, progress=progress, on_boot=show,
                    boot_with=boot_with)
    if args.lava_jobs:
        return lava_modes.print_written(args, written)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        print(format_report(report))
    return report.exit_code


def list_configs() -> list[str]:
    """RULE: NAME (what it adds) for each config of each verify recipe."""
    from patchgen.vm.recipes import with_recipes
    lines = []
    for rule, recipe in with_recipes().items():
        lines.append(f"{rule}: {recipe.summary}")
        for name, config in recipe.configs.items():
            lines.append(f"  {name}" + (f": {config.description}"
                                        if config.description else ""))
    return lines or ["no installed rule has a verify recipe"]


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes}m{rest:02d}s"


def format_report(report: VerifyReport) -> str:
    lines = []
    for outcome in report.outcomes:
        rev = f" at {outcome.revision[:12]}" if outcome.revision else ""
        v = outcome.verdict
        config = ("" if outcome.config == "default"
                  else f" [config {outcome.config}]")
        lines.append(f"{outcome.label}{rev}{config}: {v.label}"
                     + ("" if v.passed else f" ({v.kind})"))
        if outcome.build.missing_optional:
            lines.append("  note   not in this tree's Kconfig (optional): "
                         + ", ".join(outcome.build.missing_optional))
        lines.append(f"  build  {_duration(outcome.build.seconds)}, "
                     f"{outcome.build.steps} steps, log {outcome.build.log}")
        lines.append(f"  boot   {_duration(outcome.boot.seconds)}, serial log "
                     f"{outcome.boot.serial_log}")
        passed = sum(c.passed for c in v.checks)
        lines.append(f"  checks {passed} of {len(v.checks)} passed"
                     + "".join(f", {number} {label}"
                               for _, label, number in v.counts))
        for reason in v.reasons:
            lines.append(f"  - {reason}")
        if v.offending:
            lines.append("  first offending lines:")
            lines.extend(f"    {line}" for line in v.offending)
    for config in dict.fromkeys(o.config for o in report.outcomes):
        pair = [o for o in report.outcomes if o.config == config]
        if len(pair) == 2:
            lines.append("")
            if len(report.outcomes) > 2:
                lines.append(f"config {config}:")
            lines.extend(side_by_side(*pair))
    lines.append(f"run folder: {report.run_dir}")
    return "\n".join(lines)


def side_by_side(base, tip) -> list[str]:
    names = []
    for outcome in (base, tip):
        for check in outcome.verdict.checks:
            if check.name not in names:
                names.append(check.name)

    def cell(outcome, name):
        found = [c for c in outcome.verdict.checks if c.name == name]
        return ("PASS" if found[0].passed else "FAIL") if found else "-"

    head = [("", f"base {(base.revision or '')[:12]}",
             f"tip {(tip.revision or '')[:12]}"),
            ("verdict", base.verdict.label
             + ("" if base.verdict.passed else f" ({base.verdict.kind})"),
             tip.verdict.label
             + ("" if tip.verdict.passed else f" ({tip.verdict.kind})")),
            ("build", _duration(base.build.seconds),
             _duration(tip.build.seconds)),
            ("boot", _duration(base.boot.seconds),
             _duration(tip.boot.seconds))]
    rows = head + [(name, cell(base, name), cell(tip, name)) for name in names]
    problems = sorted({p.kind for o in (base, tip) for p in o.verdict.problems})
    for kind in problems:
        def count(o):
            found = [p.count for p in o.verdict.problems if p.kind == kind]
            return str(found[0]) if found else "0"
        rows.append((f"kernel: {kind}", count(base), count(tip)))
    width = max(len(r[0]) for r in rows) + 2
    col = max(len(r[1]) for r in rows) + 2
    return [f"{r[0]:<{width}}{r[1]:<{col}}{r[2]}".rstrip() for r in rows]
