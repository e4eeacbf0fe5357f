"""Rules: each subpackage here is one rule (patchgen/rules/<name>/).

A rule package exposes RULE, a patchgen.engine.rule.Rule: what to find and
how to rewrite it, as a small module plus templates, snippets and review.
The registry (patchgen/engine/registry.py) finds every subpackage here that
exposes RULE, and every rule installed through the entry-point group
``patchgen.rules``.  The Rule API lives in patchgen/engine/rule.py; the
names below are re-exported for compatibility.
"""

from patchgen.engine.rule import (ALREADY_APPLIED, NO_MATCH, NOT_AFFECTED,  # noqa: F401
                                  REFUSED, REVIEW_ACTIONS, REVIEW_FAIL,
                                  REVIEW_PENDING, REVIEW_WARN, REWRITE,
                                  VERDICTS, Finding, Report, Rule, SeriesPart,
                                  Step, StepResult)
from patchgen.engine.registry import all_rules, get_rule  # noqa: F401
