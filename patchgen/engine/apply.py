"""Apply: scan a tree's HEAD, build the rule's series, commit it on a branch.

Works from the commit HEAD points to, never from the working tree, and
writes with git plumbing only (commits.py): the user's checked-out branch,
index and working tree stay as they were, and a failure leaves no branch.
"""

import os
from dataclasses import dataclass
from pathlib import Path

from patchgen.engine.commits import (Patch, Series, check_branch_free, commit_many,
                                     commit_series)
from patchgen.infra.errors import DirtyTree, IdentityUnset, ReadOnly, UserError
from patchgen.engine.rewrite import MessageFacts, build_patches, combined_diff
from patchgen.engine.rule import REFUSED, REWRITE, Report, Rule, Step
from patchgen.engine.registry import get_rule
from patchgen.engine.scan import limited
from patchgen.engine.sources import open_git_tree


@dataclass(frozen=True)
class ApplyResult:
    report: Report
    patches: tuple[Patch, ...]
    series: Series | None      # None for a dry run or when nothing was made
    diff: str                  # the combined diff (dry run)
    # Every series made (one for most rules; several for a rule that splits
    # its changes, Rule.split), and for a dry run the branches it would make.
    all_series: tuple[Series, ...] = ()
    branches: tuple[tuple[str, int], ...] = ()   # (branch, patch count)


def series_plan(rule: Rule, report: Report, branch: str) -> list[tuple[str, list[Step]]]:
    """(branch, steps) of each series apply makes for *report*: one branch
    named *branch*, or <branch>/<key> for each part of a rule that splits."""
    if rule.split is None:
        return [(branch, rule.steps(report))]
    return [(f"{branch}/{part.key}", list(part.steps)) for part in rule.split(report)]


MIDWAY = {"rebase-merge": "a rebase", "rebase-apply": "a rebase or git am",
          "BISECT_LOG": "a bisect", "MERGE_HEAD": "a merge",
          "CHERRY_PICK_HEAD": "a cherry-pick", "REVERT_HEAD": "a revert"}


def check_not_midway(tree) -> None:
    """HEAD in the middle of a rebase or a bisect is a temporary commit: a
    series based on it would be based on the wrong code."""
    git_dir = Path(tree.repo.git_dir)
    for name, what in MIDWAY.items():
        if (git_dir / name).exists():
            raise DirtyTree(f"{tree.root} is in the middle of {what}: HEAD is a "
                            "temporary commit; finish it or abort it, then "
                            "apply")


def check_writable(tree) -> None:
    """apply writes objects and one ref into the repository: say so before
    any work when it cannot (a read-only mount, a snapshot)."""
    common = Path(tree.repo.common_dir)
    for folder in (common / "objects", common / "refs" / "heads"):
        if folder.is_dir() and not os.access(folder, os.W_OK):
            raise ReadOnly(f"the repository of {tree.root} is read-only ({folder} "
                           "cannot be written): apply commits the series there; "
                           "run it on a writable clone")


def signing_identity(tree) -> tuple[str, str]:
    """The name and email git gives in *tree*, which sign the patches off."""
    identity = tree.identity()
    if identity is None:
        raise IdentityUnset(f"git user.name or user.email is not set for "
                            f"{tree.root}: set them (git config user.name ...; "
                            "git config user.email ...) so the patches can be "
                            "signed off")
    return identity


def apply_rule(path: str | Path, rule_id: str, *, branch: str | None = None,
               dry_run: bool = False, force: bool = False,
               only: tuple[str, ...] = (),
               identity: tuple[str, str] | None = None,
               private_clone: bool = False) -> ApplyResult:
    """Scan HEAD of the tree at *path* and commit *rule_id*'s series on
    *branch*.  *identity* (name, email) signs the patches instead of the
    tree's git config; *private_clone* says the tree is patchgen's own
    clone (verify's), whose working tree is nobody's uncommitted work."""
    rule = get_rule(rule_id)
    tree = open_git_tree(path)
    if not dry_run:
        if not private_clone:
            tree.ensure_clean()
        check_not_midway(tree)
    base = tree.head()
    source = tree.at(base)
    report = rule.scan(limited(source, only) if only else source)
    if report.verdict == REFUSED and report.refusal_code is not None:
        raise report.refusal_code(report.summary + " Nothing was created.")
    if report.verdict != REWRITE:
        return ApplyResult(report, (), None, "")
    if branch is not None and not branch.strip():
        raise UserError("--branch is empty: give the new branch a name, or "
                        f"leave --branch out for {rule.default_branch}")
    branch = branch or rule.default_branch
    identity = identity or signing_identity(tree)
    plan = series_plan(rule, report, branch)
    if not dry_run:
        for name, _ in plan:
            check_branch_free(tree, name, force)
        check_writable(tree)
    facts = MessageFacts(
        signer=f"{identity[0]} <{identity[1]}>",
        find_commit=lambda subject: tree.find_commit_by_subject(subject, base))
    # Each series starts from the base: the parts of a split touch
    # different files, and each goes to its own maintainers.
    groups = [(name, build_patches(rule, report, source, facts, steps))
              for name, steps in plan]
    groups = [(name, patches) for name, patches in groups if patches]
    patches = [patch for _, patches_ in groups for patch in patches_]
    branches = tuple((name, len(p)) for name, p in groups)
    if dry_run:
        return ApplyResult(report, tuple(patches), None,
                           combined_diff(source, patches), branches=branches)
    if rule.split is None:
        series = commit_series(tree, base, patches, branch, identity, force=force)
        return ApplyResult(report, tuple(patches), series, "", (series,), branches)
    made = commit_many(tree, base, groups, identity, force=force)
    return ApplyResult(report, tuple(patches), made[0] if made else None, "",
                       tuple(made), branches)
