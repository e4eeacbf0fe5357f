"""patchgen apply: commit the rule's series on a new branch."""

import sys

from patchgen.engine.apply import apply_rule
from patchgen.cli.output import report_text
from patchgen.rules import DEFAULT_RULE, REWRITE

NAME = "apply"
HELP = ("rewrite the tree semantically and commit the series on a new branch "
        "(your checked-out branch, index and working tree are not touched)")


def add_arguments(parser):
    parser.add_argument("--tree", help="top of the kernel source tree, a git repository "
                        "(default: the one the current folder is in)")
    parser.add_argument("--rule", default=DEFAULT_RULE, help="rule to run (default: %(default)s)")
    parser.add_argument("--branch", help="name of the new branch (default: the rule's name)")
    parser.add_argument("--force", action="store_true",
                        help="replace the branch if it exists (never the checked-out one)")
    parser.add_argument("--dry-run", action="store_true",
                        help="print the combined diff and change nothing")
    parser.add_argument("--only", action="append", default=[], metavar="PATHSPEC",
                        help="look for sites only below this path (like "
                        "Coccinelle's M=), e.g. drivers/gpu/; may be repeated")


def print_result(result, *, dry_run: bool) -> None:
    report = result.report
    if report.verdict != REWRITE:
        print(report_text(report))
        print("nothing was created")
        return
    if dry_run:
        sys.stdout.write(result.diff)
        print(f"# dry run: {len(result.patches)} patches, nothing was created",
              file=sys.stderr)
        if len(result.branches) > 1:
            for name, count in result.branches:
                print(f"# would make branch {name}: {count} patches", file=sys.stderr)
        return
    eras = ", ".join(f"{k} {v}" for k, v in report.eras.items())
    for series in result.all_series:
        print(f"branch {series.branch}: {len(series.commits)} commits on "
              f"{series.base[:12]} (rule {report.rule}" + (f"; {eras}" if eras else "")
              + ")")
        total = len(series.commits)
        for number, commit in enumerate(series.commits, 1):
            print(f"  {number}/{total} {commit.sha[:12]} {commit.subject}")


def run(args) -> int:
    result = apply_rule(args.tree, args.rule, branch=args.branch,
                        dry_run=args.dry_run, force=args.force,
                        only=tuple(args.only))
    print_result(result, dry_run=args.dry_run)
    return 0
