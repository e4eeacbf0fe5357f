"""The Rule API: what a rule gives the engine, and what a scan concludes.

A rule is a package (patchgen/rules/<name>/, or any package registered in
the entry-point group ``patchgen.rules``) whose RULE is a Rule: how it
scans a tree into a Report, the Steps of its series (each a function from
the current files to Edits, plus the template of its commit message), and
its templates under templates/<rule id>/.  A rule is checked when it is
loaded (patchgen/engine/registry.py): its templates must compile and its
steps must be well formed.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

from patchgen.engine.edits import Edit
from patchgen.infra.errors import BadRule, UserError
from patchgen.infra.templates import check_templates
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
    label: str | None        # a short tag the rule gives it, shown in brackets
    action: str              # "rewrite", "add", "report", "none", "refuse", "done";
                             # for a review, one of REVIEW_ACTIONS
    message: str

    def location(self) -> str:
        where = self.path if self.line is None else f"{self.path}:{self.line}"
        return f"{where}: {self.function}()" if self.function else where

    def to_dict(self) -> dict:
        return {"kind": self.kind, "path": self.path, "line": self.line,
                "function": self.function, "label": self.label,
                "action": self.action, "message": self.message}


@dataclass(frozen=True)
class Report:
    """The result of one rule's scan of one tree."""

    rule: str
    tree: str
    kernel_version: str | None
    verdict: str
    summary: str                      # one sentence
    # What the rule found out about the tree as a whole, in the order the
    # output shows it: name -> value (e.g. the shapes of code a rule tells
    # apart, {"call site": "E3", "free path": "E3"}); may be empty.
    facts: Mapping[str, str]
    findings: tuple[Finding, ...]
    steps: tuple[str, ...] = ()       # subjects of the patches apply would make
    refusal_code: type[UserError] | None = field(default=None, compare=False)
    # What the rule's steps need, found by its scan and typed by the rule
    # (the sites, their parse offsets, the facts the messages cite): apply
    # hands it to the steps through the Report, so that no step rescans.
    # Not part of to_dict(): the JSON shows the findings, not the plan.
    plan: object | None = field(default=None, compare=False, repr=False)

    def facts_text(self) -> str:
        """`call site E3, free path E3`; "" without facts."""
        return ", ".join(f"{name} {value}" for name, value in self.facts.items())

    def to_dict(self) -> dict:
        return {"rule": self.rule, "tree": self.tree,
                "kernel_version": self.kernel_version,
                "verdict": self.verdict, "summary": self.summary,
                "facts": dict(self.facts),
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
class CheckBuild:
    """How `patchgen check --build` builds a rule's series (Rule.check_build).

    In a kernel tree: `make tinyconfig`, *fragment* appended, `make
    olddefconfig`, then `make <dir>/` for each folder the series touches a
    .c file in.  With *toggle*, a second O= folder builds the same with
    that symbol off (and *toggle_dependents*, the symbols that need it,
    dropped), so a `#ifndef CONFIG_X` stub the series adds is compiled
    too.  In a fixture tree (no Kbuild), gcc -fsyntax-only runs without
    -D and, with *toggle*, again with -D<toggle>.  A rule without
    check_build gets the generic build (review/build.py): defconfig plus
    the symbols the touched files' Makefile lines name.
    """

    fragment: Path | None = None            # a Kconfig fragment file
    toggle: str | None = None               # e.g. "CONFIG_FOO"
    toggle_dependents: tuple[str, ...] = ()  # symbols removed with it off


@dataclass(frozen=True)
class VerifyConfig:
    """One named kernel config of a verify recipe (`verify --config NAME`)."""

    # Fragments read in order, merged on tinyconfig; their "# patchgen-boot:",
    # "# patchgen-cmdline:", "# patchgen-guest:" and "# patchgen-optional:"
    # comments go to the boot, the kernel command line, the guest program's
    # arguments and the symbols an era may lack (vm/kbuild.py).
    fragments: tuple[Path, ...]
    description: str = ""                   # for --help: what it adds


@dataclass(frozen=True)
class LogCount:
    """Kernel lines a verdict counts (e.g. the rule's operation logged)."""

    key: str                    # the verdict's JSON key
    label: str                  # after the number in verify's report
    patterns: tuple[str, ...]   # regular expressions; a line counts once


@dataclass(frozen=True)
class VerifyRecipe:
    """How `patchgen verify` tests a rule's series in a booted kernel
    (Rule.verify): the guest program, the configs, what the verdict reads.

    The guest program speaks the engine's protocol (vm/verdict.py): lines
    "PATCHGEN: [#SEQ ]check NAME PASS|FAIL detail" and one "PATCHGEN:
    [#SEQ ]result PASS|FAIL ...", after "PATCHGEN: info start"; /init runs
    it as `/<program stem> --stress N [the config's patchgen-guest args]`.
    """

    program: Path                           # C source, built with gcc -static
    configs: Mapping[str, VerifyConfig]     # "default" is required
    lava_suite: str                         # LAVA test suite of the checks
    kcidb_test: str                         # KCIDB test path of the checks
    summary: str = "the rule's guest test"  # what verify runs, for --help
    counts: tuple[LogCount, ...] = ()
    # (kind, regular expression): kernel complaints the verdict counts as
    # failures besides the engine's own (panic, BUG, WARNING, ...).
    kernel_problems: tuple[tuple[str, str], ...] = ()
    # Where a matrix config NAME finds NAME.config (default: the program's
    # folder).
    fragment_dir: Path | None = None

    def fragment_folder(self) -> Path:
        return self.fragment_dir or self.program.parent


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
    # A folder holding this rule's templates (templates/<rule id>/... are
    # looked up there first): for a rule in its own package.  None: the
    # project's templates/ folder.
    template_folder: str | None = None
    # The sites the rule finds in one C file, each as its facts (name ->
    # value, e.g. {"action": "rewrite", "function": "f"}): what patchgen
    # rule-test compares with a snippet's `expect:` line.
    match: Callable[[bytes, str], Sequence[Mapping[str, object]]] | None = None
    # The rule's rewrite of one C file, for the expected-output snippets:
    # the file's new text (the same bytes when nothing changes).
    rewrite_snippet: Callable[[bytes, str], bytes] | None = None
    # A bundled fixture tree (patchgen demo --fixture) that shows the rule
    # at work; the demo runs the rule that names its fixture.
    demo_fixture: str | None = None
    # A rule whose changes go to several maintainers splits them into
    # several series, one branch each (None: one series, rule.steps()).
    split: Callable[[Report], list[SeriesPart]] | None = None
    # How check --build builds the series (None: the generic build).
    check_build: CheckBuild | None = None
    # How verify tests the series in a booted kernel (None: it cannot).
    verify: VerifyRecipe | None = None

    def validate(self) -> "Rule":
        if not self.id or "/" in self.id:
            raise BadRule(f"rule id {self.id!r} is not a plain name")
        if not self.site_words:
            raise BadRule(f"rule {self.id} gives no site words: a scan would "
                          "have to parse every file")
        check_templates(list(self.templates))
        if self.demo_fixture is not None:
            from patchgen.engine.fixtures import fixture_names
            if self.demo_fixture not in fixture_names():
                raise BadRule(f"rule {self.id}'s demo fixture {self.demo_fixture!r} "
                              "is not a bundled fixture tree (patchgen demo --list)")
        if self.verify is not None and "default" not in self.verify.configs:
            raise BadRule(f"rule {self.id}: its verify recipe has no "
                          "\"default\" config")
        return self
