"""The registry: which rules are installed, found at run time by name.

Rules are found in two places, and no rule is named here (the engine must
not import a rule module statically):

  * every subpackage of patchgen.rules whose __init__ exposes RULE (the
    built-in rules, patchgen/rules/<name>/);
  * every entry point of the group ``patchgen.rules`` (a rule in its own
    package, installed with pip), whose object is a Rule or a module
    exposing RULE:

        [project.entry-points."patchgen.rules"]
        my-rule = "my_rule:RULE"

A rule found both ways (the built-in ones are also registered as entry
points in patchgen's own pyproject.toml) is the same object and counts
once.  A rule that cannot be loaded or fails its check stops every
command with one sentence that names its package and entry point.
"""

import importlib
import importlib.metadata
import pkgutil
import types
from dataclasses import dataclass
from pathlib import Path

from patchgen.engine.rule import Rule
from patchgen.infra.errors import (BadRule, RuleConflict, RuleInvalid,
                                   RuleLoadFailed, UnknownRule)
from patchgen.infra.templates import add_template_folder

ENTRY_POINT_GROUP = "patchgen.rules"
BUILTIN_PACKAGE = "patchgen.rules"


@dataclass(frozen=True)
class Installed:
    """A loaded rule and where it came from."""

    rule: Rule
    module: str          # the module that defines RULE, e.g. patchgen.rules.<name>
    origin: str          # "built in" or "entry point NAME (distribution D)"
    folder: Path | None  # the rule package's folder (its snippets, data)

    def describe(self) -> str:
        return f"{self.module} ({self.origin})"


def _rule_of(obj, where: str) -> tuple[Rule, types.ModuleType | None]:
    if isinstance(obj, Rule):
        return obj, None
    if isinstance(obj, types.ModuleType):
        rule = getattr(obj, "RULE", None)
        if isinstance(rule, Rule):
            return rule, obj
    raise RuleLoadFailed(f"{where} gives {type(obj).__name__}, not a patchgen "
                         "Rule: point it at a Rule (module:RULE) or at a "
                         "module that defines RULE")


def _folder(module_name: str) -> Path | None:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    file = getattr(module, "__file__", None)
    return Path(file).resolve().parent if file else None


def _builtin() -> list[Installed]:
    package = importlib.import_module(BUILTIN_PACKAGE)   # by name: no static import
    found = []
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
        if not info.ispkg:
            continue
        name = f"{BUILTIN_PACKAGE}.{info.name}"
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # any error of a rule's own code
            raise RuleLoadFailed(f"the built-in rule package {name} cannot be "
                                 f"imported ({type(exc).__name__}: {exc}): fix "
                                 "or remove it") from exc
        if not hasattr(module, "RULE"):
            continue  # a helper package, not a rule
        rule, _ = _rule_of(module.RULE, f"the built-in rule package {name}")
        found.append(Installed(rule, name, "built in", _folder(name)))
    return found


def _entry_points() -> list[Installed]:
    found = []
    for point in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP),
                        key=lambda p: (p.name, p.value)):
        dist = getattr(point, "dist", None)
        dist_name = dist.metadata["Name"] if dist is not None else "an unknown package"
        where = (f"the entry point {point.name} = {point.value} of package "
                 f"{dist_name} (group {ENTRY_POINT_GROUP})")
        try:
            obj = point.load()
        except Exception as exc:  # any error of a rule's own code
            raise RuleLoadFailed(f"{where} cannot be loaded ({type(exc).__name__}: "
                                 f"{exc}): fix or uninstall that package") from exc
        rule, module = _rule_of(obj, where)
        module_name = module.__name__ if module else point.module
        found.append(Installed(rule, module_name,
                               f"entry point {point.name}, package {dist_name}",
                               _folder(module_name)))
    return found


def _validated(item: Installed) -> Installed:
    rule = item.rule
    try:
        if rule.template_folder is not None:
            add_template_folder(Path(rule.template_folder))
        rule.validate()
    except BadRule as exc:
        raise RuleInvalid(f"rule {rule.id!r} from {item.describe()} fails its "
                          f"check: {exc}") from exc
    return item


def _load() -> dict[str, Installed]:
    rules: dict[str, Installed] = {}
    for item in _builtin() + _entry_points():
        known = rules.get(item.rule.id)
        if known is not None:
            if known.rule is item.rule:
                continue  # a built-in rule also registered as an entry point
            raise RuleConflict(f"two installed packages give rule "
                               f"{item.rule.id!r}: {known.describe()} and "
                               f"{item.describe()}; uninstall one of them")
        rules[item.rule.id] = _validated(item)
    return dict(sorted(rules.items()))


_INSTALLED: dict[str, Installed] | None = None


def installed() -> dict[str, Installed]:
    """Every installed rule by id (sorted), with where it came from."""
    global _INSTALLED
    if _INSTALLED is None:
        _INSTALLED = _load()
    return _INSTALLED


def all_rules() -> dict[str, Rule]:
    return {rule_id: item.rule for rule_id, item in installed().items()}


def get_rule(rule_id: str) -> Rule:
    rules = all_rules()
    if rule_id not in rules:
        raise UnknownRule(f"there is no rule {rule_id!r}: choose one of "
                          f"{', '.join(rules) or '(none installed)'} "
                          "(patchgen rules lists them)")
    return rules[rule_id]


def origin(rule_id: str) -> Installed:
    get_rule(rule_id)
    return installed()[rule_id]
