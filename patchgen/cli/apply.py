"""patchgen apply: commit the rule's series on a new branch."""

import sys

from patchgen.engine.apply import apply_rule
from patchgen.cli.output import report_text
from patchgen.engine.registry import all_rules
from patchgen.engine.rule import REWRITE
from patchgen.infra.errors import RuleRequired

NAME = "apply"
HELP = ("rewrite the tree semantically and commit the series on a new branch "
        "(your checked-out branch, index and working tree are not touched)")


def add_arguments(parser):
    parser.add_argument("--tree", help="top of the kernel source tree, a git repository "
                        "(default: the one the current folder is in)")
    parser.add_argument("--rule", help="rule to run (needed when more than one "
                        "rule is installed; patchgen rules lists them)")
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
    facts = report.facts_text()
    for series in result.all_series:
        print(f"branch {series.branch}: {len(series.commits)} commits on "
              f"{series.base[:12]} (rule {report.rule}" + (f"; {facts})" if facts else ")"))
        total = len(series.commits)
        for number, commit in enumerate(series.commits, 1):
            print(f"  {number}/{total} {commit.sha[:12]} {commit.subject}")


def chosen_rule(rule_id: str | None, command: str) -> str:
    """The rule a command runs: the one given, or the only one installed."""
    if rule_id is not None:
        return rule_id
    rules = list(all_rules())
    if len(rules) == 1:
        return rules[0]
    raise RuleRequired(f"{command} needs --rule RULE: {len(rules)} rules are "
                       f"installed ({', '.join(rules)})")


def run(args) -> int:
    result = apply_rule(args.tree, chosen_rule(args.rule, "apply"), branch=args.branch,
                        dry_run=args.dry_run, force=args.force,
                        only=tuple(args.only))
    print_result(result, dry_run=args.dry_run)
    return 0
