"""Rules: what to find and how to rewrite it, as small modules + templates.

The engine (scan, apply) knows nothing about any rule's subject.  A rule
is a module here that provides a Rule: how it scans a tree into a Report,
the Steps of its series (each a function from the current files to Edits,
plus the template of its commit message), and its templates under
templates/<rule id>/.  A rule is checked when it is loaded: its templates
must compile and its steps must be well formed.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from patchgen.engine.edits import Edit
from patchgen.infra.errors import BadRule, UserError
from patchgen.infra.templates import add_template_folder, check_templates
from patchgen.engine.sources import FileSource

# What a scan concluded, and what apply does about it.
REWRITE = "rewrite"                  # apply makes a series
NOT_AFFECTED = "not-affected"        # fixed upstream another way: nothing to do
ALREADY_APPLIED = "already-applied"  # the series is in the tree
REFUSED = "refused"                  # the tree cannot take the series as is
NO_MATCH = "no-match"                # the pattern is not in this tree
VERDICTS = (REWRITE, NOT_AFFECTED, ALREADY_APPLIED, REFUSED, NO_MATCH)

# How bad a review finding is (Finding.action of what Rule.review returns;
# `patchgen check` compares the findings before and after each patch).
REVIEW_FAIL = "fail"        # wrong in any commit: a patch that introduces it fails
REVIEW_WARN = "warn"        # worth a reviewer's look
REVIEW_PENDING = "pending"  # a half-done state a later patch may complete (a
                            # helper not called yet): wrong only at the series' end
REVIEW_ACTIONS = (REVIEW_FAIL, REVIEW_WARN, REVIEW_PENDING)


@dataclass(frozen=True)
class Finding:
    """One thing a scan found, where, and what the rule does about it."""

    kind: str                # e.g. "call-site", "related-site", "free-path"
    path: str
    line: int | None
    function: str | None
    era: str | None
    action: str              # "rewrite", "add", "report", "none", "refuse", "done";
                             # for a review, one of REVIEW_ACTIONS
    message: str

    def location(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.function}()" if self.function else where

    def to_dict(self) -> dict:
        return {"kind": self.kind, "path": self.path, "line": self.line,
                "function": self.function, "era": self.era,
                "action": self.action, "message": self.message}


@dataclass(frozen=True)
class Report:
    """The result of one rule's scan of one tree."""

    rule: str
    tree: str
    kernel_version: str | None
    verdict: str
    summary: str                      # one sentence
    eras: Mapping[str, str]           # e.g. {"call site": "E3", "free path": "E3"}
    findings: tuple[Finding, ...]
    steps: tuple[str, ...] = ()       # subjects of the patches apply would make
    refusal_code: type[UserError] | None = field(default=None, compare=False)
    # What the rule's steps need, found by its scan and typed by the rule
    # (the sites, their parse offsets, the facts the messages cite): apply
    # hands it to the steps through the Report, so that no step rescans.
    # Not part of to_dict(): the JSON shows the findings, not the plan.
    plan: object | None = field(default=None, compare=False, repr=False)

    def to_dict(self) -> dict:
        return {"rule": self.rule, "tree": self.tree,
                "kernel_version": self.kernel_version,
                "verdict": self.verdict, "summary": self.summary,
                "eras": dict(self.eras),
                "findings": [f.to_dict() for f in self.findings],
                "steps": list(self.steps)}


@dataclass(frozen=True)
class StepResult:
    """What one step changes, and the facts its commit message needs."""

    edits: tuple[Edit, ...]
    context: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One patch of a rule's series."""

    key: str
    subject: str
    message_template: str
    make: Callable[[FileSource, Report], StepResult]
    fixes_subject: str | None = None   # Fixes: this commit, if in history
    values: Mapping[str, object] = field(default_factory=dict)  # for its template


@dataclass(frozen=True)
class SeriesPart:
    """One series of a rule that splits its changes (Rule.split): its own
    branch, <branch>/<key>, and its own recipients."""

    key: str                  # branch suffix: a plain slug, no "/"
    title: str                # e.g. the MAINTAINERS section it goes to
    steps: tuple[Step, ...]


@dataclass(frozen=True)
class Rule:
    id: str
    title: str
    default_branch: str
    scan: Callable[[FileSource], Report]
    steps: Callable[[Report], list[Step]]
    templates: tuple[str, ...]
    # Words that a file must contain to hold a site (keeps scans fast).
    site_words: tuple[str, ...]
    cover_template: str | None = None
    # Values every template of the rule may use (names the rule defines).
    template_values: Mapping[str, object] = field(default_factory=dict)
    # Reviewer checks on the code of one commit (patchgen check): what is
    # wrong there, as Findings whose action is one of REVIEW_ACTIONS.  The
    # same problem must give the same (kind, path, function, message) in
    # every commit, so keep line numbers in Finding.line, not the message.
    # A tree the rule does not apply to gives no findings.
    review: Callable[[FileSource], list[Finding]] | None = None
    # A rule whose changes go to several maintainers splits them into
    # several series, one branch each (None: one series, rule.steps()).
    split: Callable[[Report], list[SeriesPart]] | None = None
    # The rule's own template folder (inside its package): its templates
    # are then named "<rule id>/<file>".
    template_folder: Path | None = None

    def validate(self) -> "Rule":
        if not self.id or "/" in self.id:
            raise BadRule(f"rule id {self.id!r} is not a plain name")
        if not self.site_words:
            raise BadRule(f"rule {self.id} gives no site words: a scan would "
                          "have to parse every file")
        if self.template_folder is not None:
            add_template_folder(self.id, self.template_folder)
        check_templates(list(self.templates))
        return self


def _load_rules() -> dict[str, Rule]:
    from patchgen.rules import hwpoison, ifnullfree
    rules = [hwpoison.RULE, ifnullfree.RULE]
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


DEFAULT_RULE = "hwpoison-put-last"
