"""patchgen rule-test RULE: run the rule's snippets (patchgen/engine/snippets.py)."""

from patchgen.engine.registry import get_rule, origin
from patchgen.engine.snippets import run_snippets
from patchgen.infra.errors import SnippetsFailed

NAME = "rule-test"
HELP = ("run a rule's snippets (must-match, must-not-match, expected-output) and "
        "print pass or FAIL for each")


def add_arguments(parser):
    parser.add_argument("rule", metavar="RULE", help="the rule's id (patchgen rules "
                        "lists them)")


def run(args) -> int:
    rule = get_rule(args.rule)
    item = origin(args.rule)
    folder = item.folder / "snippets" if item.folder is not None else None
    print(f"patchgen rule-test {rule.id}: snippets of {item.module} ({folder})")
    results = run_snippets(rule, folder)
    for result in results:
        print(f"  {result.line()}")
    failed = [r for r in results if not r.ok]
    print(f"{len(results) - len(failed)} of {len(results)} snippets pass")
    if failed:
        raise SnippetsFailed(f"{len(failed)} of {len(results)} snippets of rule "
                             f"{rule.id} fail, the first {failed[0].name}: "
                             f"{failed[0].detail}")
    return 0
