"""patchgen scan: where each rule's pattern is, what the rule found out
about the tree, and what apply would do.

Without --rule, scan runs every installed rule (as coccicheck runs every
semantic patch): one report per rule, in the order `patchgen rules` lists
them; a rule that cannot read the tree (it lacks the files the rule
needs) says so on stderr and the others still report.
"""

import json
import sys

from patchgen.cli.output import report_json, report_text
from patchgen.engine.registry import all_rules
from patchgen.engine.scan import scan_tree
from patchgen.infra.errors import PatchgenError, UserError

NAME = "scan"
HELP = ("report where a rule's pattern is, what it found out about the tree and "
        "what apply would do (read-only; default: every installed rule)")


def add_arguments(parser):
    parser.add_argument("--tree", help="top of the kernel source tree (default: the "
                        "one the current folder is in)")
    parser.add_argument("--rule", help="rule to run (default: every installed "
                        "rule; patchgen rules lists them)")
    parser.add_argument("--json", action="store_true", help="print one JSON document "
                        "(a report; without --rule, a list of reports)")
    parser.add_argument("--only", action="append", default=[], metavar="PATHSPEC",
                        help="look for sites only below this path (like "
                        "Coccinelle's M=), e.g. drivers/gpu/; may be repeated")


def run(args) -> int:
    if args.rule is not None:
        report = scan_tree(args.tree, args.rule, tuple(args.only))
        print(report_json(report) if args.json else report_text(report))
        return 0
    reports = []
    problems: list[PatchgenError] = []
    for rule_id in all_rules():
        try:
            reports.append(scan_tree(args.tree, rule_id, tuple(args.only)))
        except UserError as exc:
            if len(all_rules()) == 1:
                raise
            problems.append(exc)
            print(f"patchgen: note: rule {rule_id} skipped: {exc}", file=sys.stderr)
    if not reports:
        raise problems[0]
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=2))
    else:
        print("\n\n".join(report_text(r) for r in reports))
    # Every rule on a tree: one that cannot read it (a tree without mm/
    # for a rule about mm/) is skipped with a note; --rule makes it an error.
    return 0
