"""Commits: a list of patches becomes a branch, with git plumbing only.

The user's checked-out branch, index and working tree are never touched:
blobs and trees are written with hash-object and a private index file
(GIT_INDEX_FILE), commits with commit-tree, and the branch ref is created
last, in one update-ref, only when every commit exists.  A failure before
that leaves only unreachable objects (git gc removes them), no branch.
Paths are added with update-index --cacheinfo, so a .gitignore that hides
everything (Debian's linux-source tree) cannot drop a new file.
"""

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from patchgen.infra.errors import ApplyFailed, BranchExists, PatchgenError, UserError
from patchgen.infra.runner import run, run_git
from patchgen.infra.scratch import made_for_user, scratch_folder
from patchgen.engine.sources import GitKernelTree, tree_entry


@dataclass(frozen=True)
class Patch:
    """One commit to make: its message and the new contents of its files."""

    subject: str
    message: str                     # the whole message, subject line first
    changes: Mapping[str, bytes]     # path in the kernel tree -> new contents


@dataclass(frozen=True)
class Commit:
    sha: str
    subject: str


@dataclass(frozen=True)
class Series:
    branch: str
    base: str
    commits: tuple[Commit, ...]


def check_branch_name(tree: GitKernelTree, name: str) -> None:
    # Not `check-ref-format --branch`: it expands @{-1} to another branch.
    result = run(["git", "-C", tree.root, "check-ref-format", f"refs/heads/{name}"],
                 check=False)
    if not name or name.startswith("-") or "@{" in name or result.returncode != 0:
        raise UserError(f"{name!r} is not a valid branch name: choose another "
                        "with --branch")
    # refs/heads/a and refs/heads/a/b cannot both exist.
    clash = _ref_clash(tree, f"refs/heads/{name}")
    if clash:
        raise BranchExists(f"branch {name} cannot be made beside the branch "
                           f"{clash.removeprefix('refs/heads/')} (git keeps "
                           "branches as files and folders): choose another "
                           "name with --branch")


def _ref_clash(tree: GitKernelTree, ref: str) -> str | None:
    """A ref that is a folder of *ref* or that *ref* is a folder of."""
    refs = run(["git", "-C", tree.root, "for-each-ref", "--format=%(refname)",
                "refs/heads/"], check=False).stdout.split()
    parts = ref.split("/")
    prefixes = {"/".join(parts[:i]) for i in range(3, len(parts))}
    for other in refs:
        if other in prefixes or other.startswith(ref + "/"):
            return other
    return None


def current_branch(tree: GitKernelTree) -> str | None:
    result = run(["git", "-C", tree.root, "symbolic-ref", "-q", "HEAD"], check=False)
    return result.stdout.strip() or None


def worktrees_on(tree: GitKernelTree, ref: str) -> list[str]:
    """The worktrees of *tree*'s repository that have *ref* checked out
    (the main one and every `git worktree add`): git itself refuses to move
    such a branch, and so do we."""
    result = run(["git", "-C", tree.root, "worktree", "list", "--porcelain"],
                 check=False)
    found, path = [], None
    for line in result.stdout.splitlines():
        if line.startswith("worktree "):
            path = line[len("worktree "):]
        elif line == f"branch {ref}" and path is not None:
            found.append(path)
    return found


def check_branch_free(tree: GitKernelTree, name: str, force: bool) -> None:
    check_branch_name(tree, name)
    if current_branch(tree) == f"refs/heads/{name}":
        raise BranchExists(f"branch {name} is checked out in {tree.root}: "
                           "patchgen never moves your checked-out branch; "
                           "choose another name with --branch")
    elsewhere = worktrees_on(tree, f"refs/heads/{name}")
    if elsewhere:
        raise BranchExists(f"branch {name} is checked out in the worktree "
                           f"{elsewhere[0]}: patchgen never moves a checked-out "
                           "branch, even with --force; choose another name "
                           "with --branch")
    if tree.branch_exists(name) and not force:
        raise BranchExists(f"branch {name} already exists: choose another name "
                           "with --branch, or pass --force to replace it")


def commit_series(tree: GitKernelTree, base: str, patches: list[Patch],
                  branch: str, identity: tuple[str, str], *,
                  force: bool = False) -> Series:
    """Commit *patches* on top of *base* and point *branch* at the result."""
    check_branch_free(tree, branch, force)
    name, email = identity
    who = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
           "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}
    made: list[Commit] = []
    # The private index lives in patchgen's scratch, never in the user's
    # .git: a process killed half-way cannot leave it there.
    with scratch_folder("index") as scratch:
        index_env = {"GIT_INDEX_FILE": str(scratch / "index")}
        parent = _commit_all(tree, base, patches, who, index_env, made)
        _move_branch(tree, branch, parent, force)
    return Series(branch, base, tuple(made))


def _commit_all(tree, base, patches, who, index_env, made) -> str:
    try:
        run_git(tree.top, "read-tree", base, env=index_env, writes=True)
        parent = base
        for patch in patches:
            for path, data in sorted(patch.changes.items()):
                full = tree.prefix + path
                blob = _hash_blob(tree, data)
                mode = _mode_of(tree, parent, full)
                run_git(tree.top, "update-index", "--add", "--cacheinfo",
                        f"{mode},{blob},{full}", env=index_env, writes=True)
            tree_id = run_git(tree.top, "write-tree", env=index_env, writes=True).stdout.strip()
            sha = run_git(tree.top, "commit-tree", tree_id, "-p", parent, "-F", "-",
                          env=who, input=patch.message, writes=True).stdout.strip()
            made.append(Commit(sha, patch.subject))
            parent = sha
    except PatchgenError as exc:
        raise ApplyFailed(f"making the series failed ({exc}); no branch was "
                          "created and your tree is untouched") from exc
    return parent


def _move_branch(tree: GitKernelTree, branch: str, tip: str, force: bool) -> None:
    old = [] if force else [""]
    if force and tree.branch_exists(branch):
        old = [tree.resolve(f"refs/heads/{branch}")]
    lock = Path(tree.repo.common_dir) / "refs" / "heads" / f"{branch}.lock"
    if lock.exists():
        raise ApplyFailed(f"{lock} exists: another git command is updating "
                          f"branch {branch} (or one was killed); if none runs, "
                          "remove that file and retry")
    try:
        run(["git", "-C", tree.repo.working_tree_dir, "update-ref", "-m",
             "patchgen apply", f"refs/heads/{branch}", tip, *old],
            timeout=UPDATE_REF_TIMEOUT,
            waiting_for=f"git update-ref {branch} (a reference-transaction hook?)")
    except BaseException as exc:
        # Our update-ref was stopped (a hook that hangs, an interrupt): the
        # lock it left is ours, as none was there before it started.
        if lock.exists():
            try:
                lock.unlink()
            except OSError:
                pass
        if isinstance(exc, PatchgenError):
            raise ApplyFailed(f"making the series failed ({exc}); no branch was "
                              "created and your tree is untouched") from exc
        raise
    made_for_user.append(f"branch {branch}")


def commit_many(tree: GitKernelTree, base: str,
                groups: list[tuple[str, list[Patch]]], identity: tuple[str, str],
                *, force: bool = False) -> list[Series]:
    """Commit each (branch, patches) of *groups* on top of *base*, then
    create every branch in one ref transaction: all of them or none (a
    failure half-way, or a branch that appears meanwhile, leaves no branch
    at all, as commit_series() leaves none)."""
    for branch, _ in groups:
        check_branch_free(tree, branch, force)
    names = [branch for branch, _ in groups]
    if len(set(names)) != len(names):
        raise ApplyFailed("a rule gave two series the same branch name: "
                          "nothing was created")
    name, email = identity
    who = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email,
           "GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}
    made: list[Series] = []
    tips = []
    with scratch_folder("index") as scratch:
        index_env = {"GIT_INDEX_FILE": str(scratch / "index")}
        for branch, patches in groups:
            commits: list[Commit] = []
            tip = _commit_all(tree, base, patches, who, index_env, commits)
            made.append(Series(branch, base, tuple(commits)))
            tips.append((branch, tip))
    _move_branches(tree, tips, force)
    return made


def _move_branches(tree: GitKernelTree, tips: list[tuple[str, str]],
                   force: bool) -> None:
    """One `git update-ref --stdin` transaction: git takes every lock
    first and changes no ref unless it can change them all."""
    lines = ["start"]
    for branch, tip in tips:
        ref = f"refs/heads/{branch}"
        if force and tree.branch_exists(branch):
            old = tree.repo.commit(ref).hexsha
            lines.append(f"update {ref} {tip} {old}")
        else:
            lines.append(f"create {ref} {tip}")
    lines += ["prepare", "commit", ""]
    try:
        run(["git", "-C", tree.repo.working_tree_dir, "update-ref", "-m",
             "patchgen apply", "--stdin"], input="\n".join(lines),
            timeout=UPDATE_REF_TIMEOUT,
            waiting_for="git update-ref --stdin (a reference-transaction hook?)")
    except PatchgenError as exc:
        raise ApplyFailed(f"making the series failed ({exc}); no branch was "
                          "created and your tree is untouched") from exc
    for branch, _ in tips:
        made_for_user.append(f"branch {branch}")


# How long a branch update may take: git's own work is instant; what can
# wait is a reference-transaction hook of the user's.
UPDATE_REF_TIMEOUT = float(os.environ.get("PATCHGEN_UPDATE_REF_TIMEOUT", "120"))


def _hash_blob(tree: GitKernelTree, data: bytes) -> str:
    # --no-filters: the bytes are exactly the file's, whatever attributes say.
    result = run(["git", "-C", tree.repo.working_tree_dir, "hash-object", "-w",
                  "--no-filters", "--stdin"], input=data, text=False, timeout=120,
                 finish_on_interrupt=True)
    return result.stdout.decode().strip()


def _mode_of(tree: GitKernelTree, commit: str, path: str) -> str:
    entry = tree_entry(tree.top, commit, path)
    return entry[0] if entry is not None else "100644"
