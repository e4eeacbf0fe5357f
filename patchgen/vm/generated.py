"""A series a rule makes for a tree, in the tree's private clone.

A matrix with `series = { rule = "RULE" }` verifies, on every tree, the
series RULE's apply makes for that tree: the same scan, steps and
templates as `patchgen apply`, run in the private clone verify builds in
(workspace.py), at the base.  The user's repository gets nothing: no
branch, no object, no change to the working tree (the clone writes its
own objects and refs).  The series is signed off with the identity git
gives in the user's tree, as `patchgen apply` would sign it there.

The branch is kept in the clone under a name made of the base and a
fingerprint of what makes the series (the engine, the templates and the
rule's package): a second run, or a second config of the same tree,
takes the same commits instead of making new ones, so its checkouts and
KCIDB ids are the same.  A tree the rule says is not affected (or where
it finds nothing to change) gets the rule's one-line reason and is
verified at its base only.
"""

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from patchgen.engine.apply import apply_rule, signing_identity
from patchgen.engine.registry import origin
from patchgen.engine.rule import REWRITE
from patchgen.engine.sources import open_git_tree
from patchgen.infra.data import data_dir
from patchgen.infra.errors import SeriesProblem
from patchgen.kernel.workspace import Workspace

_PACKAGE = Path(__file__).resolve().parent.parent
# Where the generated branches live in the private clone.
BRANCHES = "patchgen/generated"


@dataclass(frozen=True)
class Generated:
    """What the rule made for one tree."""

    rule: str
    base: str
    tip: str | None         # None: the rule changes nothing in this tree
    patches: int
    verdict: str            # the rule's verdict (rewrite, not-affected, ...)
    reason: str             # its one-line summary
    reused: bool            # the branch of an earlier run was taken

    def to_dict(self) -> dict:
        return {"rule": self.rule, "base": self.base, "tip": self.tip,
                "patches": self.patches, "verdict": self.verdict,
                "reason": self.reason, "reused": self.reused}


def _files(folder: Path):
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and "__pycache__" not in p.parts)


# The parts of patchgen that shape what apply commits (not vm/, review/ or
# cli/, which never touch a series).
SHAPING = ("engine", "infra", "kernel", "series")


def shaping_folders(rule_id: str) -> list[Path]:
    """The parts of patchgen apply runs, its templates and the rule's own
    package."""
    folders = [*(_PACKAGE / part for part in SHAPING), data_dir("templates")]
    rule_folder = origin(rule_id).folder
    if rule_folder is not None:
        folders.append(rule_folder)
    return folders


@functools.lru_cache(maxsize=None)
def fingerprint(rule_id: str) -> str:
    """A hash of every file that shapes *rule_id*'s series, read once per
    process: every cell of a matrix run names the same series, even if a
    file changes while it runs."""
    folders = shaping_folders(rule_id)
    digest = hashlib.sha256(rule_id.encode())
    for folder in folders:
        digest.update(folder.name.encode() + b"\0")
        for path in _files(folder):
            digest.update(str(path.relative_to(folder)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


def user_identity(tree: Path) -> tuple[str, str]:
    """The name and email the user's tree signs off with; checked before
    any build."""
    opened = open_git_tree(tree)
    try:
        return signing_identity(opened)
    finally:
        opened.repo.close()


def branch_name(rule_id: str, base: str) -> str:
    return f"{BRANCHES}/{rule_id}/{base[:12]}-{fingerprint(rule_id)[:12]}"


def _forget_older(workspace: Workspace, rule_id: str, base: str) -> None:
    """Delete, in the clone, the series an older patchgen or rule made on
    *base*: they would only pile up."""
    refs = workspace.git("for-each-ref", "--format=%(refname)",
                         f"refs/heads/{BRANCHES}/{rule_id}/{base[:12]}-*")
    for ref in refs.stdout.split():
        workspace.git("update-ref", "-d", ref)


def generate(workspace: Workspace, rule_id: str, base: str,
             identity: tuple[str, str]) -> Generated:
    """The series of *rule_id* on *base* in *workspace* (checked out at
    *base*): the branch of an earlier run when there is one, else made
    now with apply.  The checkout stays at *base*."""
    branch = branch_name(rule_id, base)
    found = workspace.git("rev-parse", "--verify", "--quiet",
                          f"refs/heads/{branch}^{{commit}}", check=False)
    if found.returncode == 0:
        tip = found.stdout.strip()
        count = workspace.git("rev-list", "--count", f"{base}..{tip}")
        subject = workspace.git("log", "-1", "--format=%s", tip).stdout.strip()
        return Generated(rule_id, base, tip, int(count.stdout), REWRITE,
                         f"made earlier, last patch: {subject}", True)
    _forget_older(workspace, rule_id, base)
    result = apply_rule(workspace.kernel_root, rule_id, branch=branch, force=True,
                        identity=identity, private_clone=True)
    report = result.report
    reason = " ".join(report.summary.split())
    if report.verdict != REWRITE or result.series is None:
        return Generated(rule_id, base, None, 0, report.verdict, reason, False)
    if len(result.all_series) > 1:
        raise SeriesProblem(
            f"rule {rule_id} splits its changes into "
            f"{len(result.all_series)} series; a matrix verifies one per "
            "tree: make them with patchgen apply and name one branch as "
            "the matrix's series")
    return Generated(rule_id, base, result.series.commits[-1].sha,
                     len(result.series.commits), REWRITE, reason, False)
