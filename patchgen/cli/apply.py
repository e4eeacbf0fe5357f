"""patchgen apply: commit the rule's series on a new branch."""

import sys

from patchgen.engine.apply import apply_rule
from patchgen.cli.output import report_text
from patchgen.rules import DEFAULT_RULE
from patchgen.engine.rule import REWRITE

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
        return
    series = result.series
    print(f"branch {series.branch}: {len(series.commits)} commits on "
          f"{series.base[:12]} (rule {report.rule}; "
          + ", ".join(f"{k} {v}" for k, v in report.eras.items()) + ")")
    total = len(series.commits)
    for number, commit in enumerate(series.commits, 1):
        print(f"  {number}/{total} {commit.sha[:12]} {commit.subject}")


def run(args) -> int:
    result = apply_rule(args.tree, args.rule, branch=args.branch,
                        dry_run=args.dry_run, force=args.force)
    print_result(result, dry_run=args.dry_run)
    return 0
