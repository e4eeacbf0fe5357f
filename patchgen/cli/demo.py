"""patchgen demo: the whole job on a bundled fixture tree, no download.

The demo runs a rule that ships a demo fixture (Rule.demo_fixture): the
only such rule, or the one --rule names; --fixture defaults to its own.
"""

import tempfile
from pathlib import Path

from patchgen.engine.apply import apply_rule
from patchgen.cli.apply import print_result
from patchgen.cli.output import report_text
from patchgen.infra.errors import FolderExists
from patchgen.engine.fixtures import fixture_description, fixture_names, materialize
from patchgen.engine.registry import all_rules, get_rule
from patchgen.infra.errors import RuleRequired
from patchgen.infra.runner import run as run_command
from patchgen.engine.scan import scan_tree

NAME = "demo"
HELP = "copy a bundled fixture tree to a temporary git repo, scan it and apply the rule there"


def add_arguments(parser):
    parser.add_argument("--fixture", help="which bundled tree (default: the "
                        "rule's demo fixture; --list shows all)")
    parser.add_argument("--rule", help="the rule to show (default: the one "
                        "installed rule that ships a demo fixture)")
    parser.add_argument("--list", action="store_true", help="list the bundled fixture trees")
    parser.add_argument("--dir", help="make the demo repository here (default: a new temporary folder)")


def run(args) -> int:
    if args.list:
        for name in fixture_names():
            print(f"{name:12} {fixture_description(name)}")
        return 0
    if args.dir and Path(args.dir).exists():
        raise FolderExists(f"{args.dir} already exists: demo makes a new "
                           "repository there; give --dir a path that does not "
                           "exist yet (or leave --dir out)")
    rule = _demo_rule(args.rule)
    args.fixture = args.fixture or rule.demo_fixture
    parent = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="patchgen-demo-"))
    tree = parent / args.fixture if args.dir is None else parent
    identity = _user_identity()
    materialize(args.fixture, tree, identity=identity)
    print(f"== fixture {args.fixture}: {fixture_description(args.fixture)}")
    print(f"== a git repository at {tree}, signing off as {identity[0]} <{identity[1]}>")
    print()
    print("$ patchgen scan --tree", tree, "--rule", rule.id)
    print(report_text(scan_tree(tree, rule.id)))
    print()
    print("$ patchgen apply --tree", tree, "--rule", rule.id)
    result = apply_rule(tree, rule.id)
    print_result(result, dry_run=False)
    if result.series is not None:
        log = run_command(["git", "-C", tree, "log", "--reverse", "--stat",
                           "--format=%n--- %h %s%n%n%b",
                           f"{result.series.base}..{result.series.branch}"])
        print(log.stdout)
        print(f"== explore it: git -C {tree} log -p {result.series.branch}; "
              f"remove it: rm -rf {parent}")
    return 0


def _demo_rule(rule_id: str | None):
    if rule_id is not None:
        return get_rule(rule_id)
    shown = [rule for rule in all_rules().values() if rule.demo_fixture]
    if len(shown) != 1:
        raise RuleRequired(f"demo needs --rule RULE: {len(shown)} installed rules "
                           "ship a demo fixture ("
                           + (", ".join(r.id for r in shown) or "none") + ")")
    return shown[0]


def _user_identity() -> tuple[str, str]:
    """The user's own git identity if set, else a demo one (said so)."""
    name = run_command(["git", "config", "--global", "user.name"], check=False).stdout.strip()
    email = run_command(["git", "config", "--global", "user.email"], check=False).stdout.strip()
    if name and email:
        return name, email
    return "patchgen demo", "demo@patchgen.invalid"
