"""The registry: which rules are installed, found at run time by name.

No rule is named here: the engine must not import a rule module statically.
"""

from patchgen.engine.rule import Rule
from patchgen.infra.errors import UserError


def _load_rules() -> dict[str, Rule]:
    from patchgen.rules import hwpoison
    rules = [hwpoison.RULE]
    return {rule.id: rule.validate() for rule in rules}


_RULES: dict[str, Rule] | None = None


def all_rules() -> dict[str, Rule]:
    global _RULES
    if _RULES is None:
        _RULES = _load_rules()
    return _RULES


def get_rule(rule_id: str) -> Rule:
    rules = all_rules()
    if rule_id not in rules:
        raise UserError(f"there is no rule {rule_id!r}: choose one of "
                        f"{', '.join(sorted(rules))}")
    return rules[rule_id]

