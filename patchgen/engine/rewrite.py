"""Rewrite: a rule's steps, run in order, become the patches of a series.

Each step sees the files as the previous steps left them (an Overlay over
the base), returns Edits, and gets its commit message rendered from its
template with the facts the engine knows (who signs off, the Fixes: commit
if the tree's history has it, the tool and rule) and the facts the step
found.  Every edited file is re-parsed: an edit that adds a syntax error
stops the series before anything is committed.
"""

import difflib
from dataclasses import dataclass
from typing import Callable

from patchgen import __version__
from patchgen.engine.commits import Patch
from patchgen.engine.edits import checked_result
from patchgen.infra.errors import BadRule
from patchgen.infra.provenance import GENERATED_BY, generated_by_line
from patchgen.infra.prose import wrap_message
from patchgen.engine.rule import Report, Rule, Step
from patchgen.infra.templates import render
from patchgen.engine.sources import FileSource, Overlay


@dataclass(frozen=True)
class MessageFacts:
    """What the engine knows for every commit message."""

    signer: str                                  # "Name <email>"
    find_commit: Callable[[str], str | None]     # subject -> full sha or None


def tree_description(report: Report) -> str:
    version = f"Linux {report.kernel_version}" if report.kernel_version else "unknown version"
    facts = report.facts_text()
    return f"{version}; {facts}" if facts else version


def build_patches(rule: Rule, report: Report, base: FileSource,
                  facts: MessageFacts, steps: list[Step] | None = None) -> list[Patch]:
    """Run *steps* (default: all of *rule*'s steps for *report*) over
    *base*; return the patches.  Each step gets the Report, and with it
    the plan the rule's scan made (Report.plan): nothing is scanned again."""
    current: FileSource = base
    changed: dict[str, bytes] = {}
    patches = []
    for step in (rule.steps(report) if steps is None else steps):
        result = step.make(current, report)
        if not result.edits:
            continue
        by_file: dict[str, list] = {}
        for edit in result.edits:
            by_file.setdefault(edit.path, []).append(edit)
        changes = {path: checked_result(path, current.read(path), edits)
                   for path, edits in by_file.items()}
        message = render_message(rule, step, report, result.context, facts)
        patches.append(Patch(step.subject, message, changes))
        changed.update(changes)
        current = Overlay(base, dict(changed))
    return patches


def render_message(rule: Rule, step: Step, report: Report, step_context,
                   facts: MessageFacts) -> str:
    fixes = None
    if step.fixes_subject:
        sha = facts.find_commit(step.fixes_subject)
        if sha:
            fixes = {"sha": sha[:12], "subject": step.fixes_subject}
    context = {
        "subject": step.subject,
        "signer": facts.signer,
        "version": __version__,
        "rule": report.rule,
        "kernel_version": (f"Linux {report.kernel_version}"
                           if report.kernel_version else "this tree"),
        "facts": dict(report.facts),
        "tree_description": tree_description(report),
        "generated_by": generated_by_line(__version__, report.rule),
        "fixes": fixes,
        **rule.template_values,
        **step.values,
        **step_context,
    }
    message = wrap_message(render(step.message_template, **context))
    if not message.startswith(step.subject + "\n"):
        raise BadRule(f"the message template {step.message_template} must start "
                      "with the subject line")
    mark = GENERATED_BY.search(message)
    if mark is None or mark.group(2) != report.rule:
        raise BadRule(f"the message template {step.message_template} must write "
                      "the provenance line, {{ generated_by }}, above the tags")
    last = message.rstrip("\n").rsplit("\n", 1)[-1]
    if last != f"Signed-off-by: {facts.signer}":
        raise BadRule(f"the message template {step.message_template} must end "
                      "with Signed-off-by")
    return message


def combined_diff(base: FileSource, patches: list[Patch]) -> str:
    """One unified diff from *base* to the end of the series."""
    final: dict[str, bytes] = {}
    for patch in patches:
        final.update(patch.changes)
    out = []
    for path in sorted(final):
        old = base.read(path).decode("utf-8", "replace") if base.exists(path) else ""
        new = final[path].decode("utf-8", "replace")
        out.append(f"diff --git a/{path} b/{path}\n")
        out.extend(difflib.unified_diff(old.splitlines(keepends=True),
                                        new.splitlines(keepends=True),
                                        f"a/{path}", f"b/{path}"))
    return "".join(out)
