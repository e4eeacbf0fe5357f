"""A private checkout of the user's tree, where a series is applied.

`patchgen check` and `patchgen verify --series` never touch the user's
checked-out branch, index or working tree, nor add anything to their
repository (no worktree, ref or object): they check out and apply a series
with `git am` in a clone made with `git clone --shared` (the clone reads
the user's objects through git's alternates and writes its own).

Two kinds:
  temporary   a new folder per run, removed afterwards; only the files the
              series touches are checked out (sparse), so a 78,000-file
              tree costs well under a second;
  persistent  a fixed folder in the cache, fully checked out and reused
              (under a lock) so that a kernel build folder beside it stays
              incremental: the output path is part of every compile
              command, and only files that changed get new times.
"""

import fcntl
import glob
import os
import re
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Protocol

import git

from patchgen.infra.errors import CommandFailed
from patchgen.infra.runner import run, run_git
from patchgen.infra.scratch import scratch_folder


class TreeInRepository(Protocol):
    """What a workspace needs of the user's tree: engine/sources.py's
    GitKernelTree (the kernel layer does not import the engine)."""

    @property
    def repo(self) -> git.Repo: ...

    @property
    def prefix(self) -> str: ...

# git am commits as this committer; authors come from the mails.
COMMITTER = {
    "GIT_COMMITTER_NAME": "patchgen check",
    "GIT_COMMITTER_EMAIL": "check@patchgen.invalid",
    "GIT_COMMITTER_DATE": "2016-04-06T12:00:00+00:00",
}
# Settings a user's git config could bring that change what `git am` does.
NEUTRAL_CONFIG = ["-c", "core.hooksPath=/dev/null", "-c", "commit.gpgSign=false",
                  "-c", "gc.auto=0",
                  "-c", "am.threeWay=false", "-c", "am.keepcr=false",
                  "-c", "core.autocrlf=false", "-c", "apply.whitespace=nowarn"]


# What an in-tree build leaves and Kbuild refuses to build out of tree
# beside ("source tree is not clean": 4.x checks the first two, 6.1 also
# arch/*/include/generated), plus include/generated, which an O= build's
# include path would read before its own.  A tree that tracks one of them
# in git (vendor trees commit their .config) has it in the private clone.
IN_TREE_BUILD_OUTPUT = (".config", "include/config", "include/generated",
                        "arch/*/include/generated")


def in_tree_build_output(root: Path) -> list[Path]:
    """The in-tree build output present in the kernel tree *root*."""
    found: list[Path] = []
    for pattern in IN_TREE_BUILD_OUTPUT:
        found.extend(Path(p) for p in sorted(glob.glob(str(root / pattern))))
    return [p for p in found if p.is_file() or p.is_dir()]


@dataclass(frozen=True)
class AmOutcome:
    applied: bool
    commit: str | None     # the new HEAD when applied
    error: str             # git am's own words when not


@dataclass(frozen=True)
class Workspace:
    top: Path              # the clone's working tree
    prefix: str            # the kernel tree's folder inside it ("" or "sub/")
    repo: git.Repo

    @property
    def kernel_root(self) -> Path:
        return self.top / self.prefix if self.prefix else self.top

    def git(self, *args, check=True, timeout=600):
        return run_git(self.top, *NEUTRAL_CONFIG, *args, env=COMMITTER,
                       check=check, timeout=timeout)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").stdout.strip()

    def checkout(self, commit: str) -> None:
        """Check out *commit*, whatever a previous run left (a half-applied
        am is discarded).  git rewrites only the files that differ, so only
        those get new times and a build folder beside stays incremental."""
        self.git("am", "--abort", check=False)
        self.git("checkout", "--quiet", "--force", "--detach", commit, timeout=1800)
        self.clear_in_tree_build()

    def clear_in_tree_build(self) -> None:
        """Remove, from this private checkout only, the in-tree build
        output the commit tracks (a committed .config): left there, it
        stops every out-of-tree build.  The clone's index keeps them, so
        git am and the commits it makes are unchanged."""
        for path in in_tree_build_output(self.kernel_root):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()

    def am(self, mail_file: Path) -> AmOutcome:
        """Apply one mail with git am, as a maintainer would (no 3-way)."""
        args = ["am", "--no-3way", "--quiet", "--whitespace=nowarn"]
        if self.prefix:
            args.append(f"--directory={self.prefix.rstrip('/')}")
        result = self.git(*args, str(mail_file), check=False)
        if result.returncode == 0:
            self.clear_in_tree_build()
            return AmOutcome(True, self.head(), "")
        words = [line[len("error: "):] for line in
                 (result.stderr + "\n" + result.stdout).splitlines()
                 if line.startswith(("error: ", "fatal: "))]
        words = [w.removeprefix("fatal: ") for w in words] or [
            (result.stderr or result.stdout).strip().splitlines()[0]
            if (result.stderr or result.stdout).strip() else "git am failed"]
        self.git("am", "--abort", check=False)
        return AmOutcome(False, None, "; ".join(dict.fromkeys(words)))


def _clone(tree: TreeInRepository, dest: Path) -> None:
    source = tree.repo.working_tree_dir
    run(["git", "clone", "--quiet", "--shared", "--no-checkout", source, dest],
        timeout=900)


@contextmanager
def temporary_workspace(tree: TreeInRepository, base: str,
                        paths: Iterable[str] | None) -> Iterator[Workspace]:
    """A clone in a temporary folder at *base*; with *paths*, only those
    files (relative to the kernel tree) are checked out."""
    with scratch_folder("check") as tmp:
        top = Path(tmp) / "tree"
        _clone(tree, top)
        workspace = Workspace(top, tree.prefix, git.Repo(top))
        if paths is not None:
            patterns = sorted({"/" + tree.prefix + p for p in paths}) or ["/Makefile"]
            workspace.git("sparse-checkout", "set", "--no-cone", *patterns)
        workspace.checkout(base)
        try:
            yield workspace
        finally:
            workspace.repo.close()


def _remove_stale_locks(top: Path) -> None:
    """The lock files a killed run left in patchgen's own clone (index.lock
    from an interrupted checkout, HEAD.lock): we hold the workspace lock,
    so no git command of ours is using them."""
    git_dir = top / ".git"
    for name in ("index.lock", "HEAD.lock", "ORIG_HEAD.lock", "config.lock",
                 "packed-refs.lock", "shallow.lock"):
        try:
            (git_dir / name).unlink()
        except FileNotFoundError:
            pass
    for lock in (git_dir / "refs").rglob("*.lock"):
        lock.unlink(missing_ok=True)


_DIFF_PATHS = re.compile(r"^diff --git a/(\S+) b/(\S+)$", re.M)


def first_that_does_not_apply(tree: TreeInRepository, base: str, mails
                              ) -> tuple[Any, str] | None:
    """The first of *mails* (incoming.Mail) that `git am` cannot apply in
    order on *base*, with git's words, or None when all apply.  Tried in a
    temporary sparse clone (only the files the mails touch): well under a
    second on a kernel tree, so a series is known to apply before a build
    of minutes starts."""
    paths = set()
    for mail in mails:
        for match in _DIFF_PATHS.finditer(mail.diff):
            paths |= {p for p in match.groups()}
    with temporary_workspace(tree, base, paths) as workspace, \
            scratch_folder("mails") as folder:
        for mail in mails:
            mail_file = folder / f"{mail.position:04d}.patch"
            mail_file.write_bytes(mail.raw)
            outcome = workspace.am(mail_file)
            if not outcome.applied:
                return mail, outcome.error
    return None


@contextmanager
def persistent_workspace(tree: TreeInRepository, base: str,
                         workdir: Path) -> Iterator[Workspace]:
    """The reusable full checkout in *workdir*/src, locked while in use."""
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / "workspace.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        top = workdir / "src"
        if not (top / ".git").is_dir():
            shutil.rmtree(top, ignore_errors=True)
            partial = workdir / "src.partial"
            shutil.rmtree(partial, ignore_errors=True)
            _clone(tree, partial)
            os.rename(partial, top)
        _remove_stale_locks(top)
        workspace = Workspace(top, tree.prefix, git.Repo(top))
        try:
            if workspace.git("config", "--bool", "core.sparseCheckout",
                             check=False).stdout.strip() == "true":
                workspace.git("sparse-checkout", "disable")
            workspace.checkout(base)
        except CommandFailed:
            workspace.repo.close()
            raise
        try:
            yield workspace
        finally:
            workspace.repo.close()
