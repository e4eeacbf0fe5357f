"""patchgen scan: where the pattern is, which era, what would change."""

from patchgen.cli.output import report_json, report_text
from patchgen.rules import DEFAULT_RULE
from patchgen.engine.scan import scan_tree

NAME = "scan"
HELP = "report where the rule's pattern is, its era and what apply would do (read-only)"


def add_arguments(parser):
    parser.add_argument("--tree", help="top of the kernel source tree (default: the "
                        "one the current folder is in)")
    parser.add_argument("--rule", default=DEFAULT_RULE, help="rule to run (default: %(default)s)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--only", action="append", default=[], metavar="PATHSPEC",
                        help="look for sites only below this path (like "
                        "Coccinelle's M=), e.g. drivers/gpu/; may be repeated")


def run(args) -> int:
    report = scan_tree(args.tree, args.rule, tuple(args.only))
    print(report_json(report) if args.json else report_text(report))
    return 0
