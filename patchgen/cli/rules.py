"""patchgen rules: the installed rules, their titles and where they come from."""

from patchgen.engine.registry import installed

NAME = "rules"
HELP = "list the installed rules: id, one-line title, the package each comes from"


def add_arguments(parser):
    pass


def run(args) -> int:
    rules = installed()
    width = max((len(rule_id) for rule_id in rules), default=0)
    for rule_id, item in rules.items():
        print(f"{rule_id:{width}}  {item.rule.title}")
        print(f"{'':{width}}  from {item.describe()}")
    return 0
