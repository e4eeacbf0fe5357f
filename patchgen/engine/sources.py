"""The kernel tree: where rules read files from.

Three sources share one small interface (read, exists, files_containing):
WorkTree reads the files on disk (scan is read-only and works on any
folder), CommitTree reads a commit's blobs (apply works from HEAD and never
looks at the working tree), Overlay puts a patch's new file contents over
another source (each patch of a series sees the ones before it).

files_containing() is what keeps a whole-tree scan fast: `git grep` (or
grep outside git) finds the few files that can hold a pattern, and only
those are parsed.
"""

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Protocol

import git

from patchgen.infra.errors import (DirtyTree, MissingFile, NotAGitTree,
                             UnknownRevision, UserError)
from patchgen.infra import objects
from patchgen.infra.runner import run


class FileSource(Protocol):
    label: str

    def read(self, path: str) -> bytes: ...

    def exists(self, path: str) -> bool: ...

    def files_containing(self, words: Iterable[str],
                         suffixes: Iterable[str] = (".c", ".h")) -> list[str]: ...


def _grep_pattern(words: Iterable[str]) -> list[str]:
    args = []
    for word in sorted(set(words)):
        args += ["-e", word]
    return args


def _pathspecs(suffixes: Iterable[str]) -> list[str]:
    return [f"*{s}" for s in suffixes]


@dataclass(frozen=True)
class WorkTree:
    """Files as they are on disk below *root*."""

    root: Path
    git_top: Path | None = None  # the enclosing repository, if any

    @property
    def label(self) -> str:
        return str(self.root)

    def read(self, path: str) -> bytes:
        full = self.root / path
        try:
            return full.read_bytes()
        except FileNotFoundError:
            raise MissingFile(f"{path} is missing from {self.root}: the rule "
                              "needs it; check that --tree is the top of a "
                              "kernel source tree") from None
        except (PermissionError, IsADirectoryError, OSError) as exc:
            raise MissingFile(f"cannot read {full} ({exc.strerror or exc}): "
                              "fix its permissions and retry") from None

    def exists(self, path: str) -> bool:
        return (self.root / path).is_file()

    def files_containing(self, words, suffixes=(".c", ".h")) -> list[str]:
        words = list(words)
        if self.git_top is not None:
            # Tracked and untracked (not ignored) files, as on disk.  Two
            # greps: with --untracked, git skips tracked files that a
            # .gitignore matches (Debian's linux-source tree ignores "/*").
            found = []
            for extra in ([], ["--untracked"]):
                result = run(["git", "-C", self.root, "grep", "-l", "-I", "-F",
                              *extra, "--full-name", *_grep_pattern(words),
                              "--", *_pathspecs(suffixes)], check=False, timeout=600)
                if result.returncode not in (0, 1):
                    break
                found += result.stdout.splitlines()
            prefix = os.path.relpath(self.root, self.git_top)
            prefix = "" if prefix == "." else prefix + "/"
            names = sorted({n[len(prefix):] if n.startswith(prefix) else n
                            for n in found})
        else:
            includes = [f"--include=*{s}" for s in suffixes]
            result = run(["grep", "-r", "-l", "-I", "-F", *includes,
                          *_grep_pattern(words), "."], cwd=self.root,
                         check=False, timeout=600)
            names = [n[2:] if n.startswith("./") else n
                     for n in result.stdout.splitlines()]
        if result.returncode not in (0, 1):
            raise UserError(f"searching {self.root} failed: "
                            f"{result.stderr.strip()[:200]}")
        return sorted(names)


@dataclass(frozen=True)
class CommitTree:
    """Files as they are in one commit of a repository."""

    repo: git.Repo = field(repr=False, compare=False)
    commit: str  # full hex id
    prefix: str = ""  # the kernel tree's folder inside the repository

    @property
    def label(self) -> str:
        return f"{self.repo.working_tree_dir} at {self.commit[:12]}"

    # Read with one `git cat-file --batch` of our own (objects.py), not
    # GitPython's cat-file streams, whose finalizer can block for ever on
    # a blob an interrupt left half-read.

    def _entry(self, path: str) -> tuple[str, str, str] | None:
        return tree_entry(self.repo.working_tree_dir, self.commit, self.prefix + path)

    def read(self, path: str) -> bytes:
        entry = self._entry(path)
        if entry is not None and entry[0] == "120000":
            raise MissingFile(f"{path} is a symbolic link in commit "
                              f"{self.commit[:12]}, not a file: the rule reads "
                              "the file itself; commit the file in its place")
        if entry is None or entry[1] != "blob":
            raise MissingFile(f"{path} is missing from commit {self.commit[:12]}: "
                              "the rule needs it; check that --tree is the top "
                              "of a kernel source tree")
        data = objects.blobs.get(self.repo.working_tree_dir, entry[2])
        if data is None:
            raise MissingFile(f"the blob of {path} in commit {self.commit[:12]} "
                              "cannot be read (a damaged or partial clone): run "
                              "git fsck, or fetch it again")
        return data

    def exists(self, path: str) -> bool:
        # A symbolic link exists (so that read() says what it is) but is
        # never read as the text of its target.
        entry = self._entry(path)
        return entry is not None and entry[1] == "blob"

    def files_containing(self, words, suffixes=(".c", ".h")) -> list[str]:
        names = _grep_commit(self.repo.working_tree_dir, self.commit,
                             tuple(sorted(set(words))), tuple(suffixes))
        return [n[len(self.prefix):] for n in names if n.startswith(self.prefix)]


def tree_entry(top: str, commit: str, path: str) -> tuple[str, str, str] | None:
    """(mode, type, id) of *path* in *commit*, or None when it has none
    (read from its folder's tree object, which is kept: a commit never
    changes)."""
    folder, _, name = str(path).rpartition("/")
    entries = objects.folder_entries(str(top), commit, folder)
    return entries.get(name) if entries is not None else None


@lru_cache(maxsize=64)
def _grep_commit(top: str, commit: str, words: tuple, suffixes: tuple) -> list[str]:
    """Files of *commit* holding one of *words*.  A commit never changes, so
    the answer is kept: apply asks once per step of its series."""
    result = run(["git", "-C", top, "grep", "-l", "-I", "-F", "--full-name",
                  *_grep_pattern(words), commit, "--", *_pathspecs(suffixes)],
                 check=False, timeout=600)
    return sorted(line.split(":", 1)[1] if ":" in line else line
                  for line in result.stdout.splitlines())


@dataclass(frozen=True)
class Overlay:
    """New contents for some files, over another source."""

    base: FileSource
    changes: Mapping[str, bytes]

    @property
    def label(self) -> str:
        return self.base.label

    def read(self, path: str) -> bytes:
        if path in self.changes:
            return self.changes[path]
        return self.base.read(path)

    def exists(self, path: str) -> bool:
        return path in self.changes or self.base.exists(path)

    def files_containing(self, words, suffixes=(".c", ".h")) -> list[str]:
        words = list(words)
        return corrected_search(self.base.files_containing(words, suffixes),
                                self.changes.items(), words, suffixes)


def corrected_search(found: Iterable[str],
                     contents: Iterable[tuple[str, bytes | None]],
                     words: Iterable[str], suffixes: Iterable[str]) -> list[str]:
    """What files_containing(*words*, *suffixes*) answers after a change,
    from its answer before (*found*) and the new contents of the files the
    change touched (*contents*: path and bytes, None for a removed file):
    as a grep of the changed tree would answer, without grepping it."""
    found = set(found)
    needles = [w.encode() for w in words]
    suffixes = tuple(suffixes)
    for path, data in contents:
        if not path.endswith(suffixes):
            continue
        if data is not None and any(n in data for n in needles):
            found.add(path)
        else:
            found.discard(path)
    return sorted(found)


def commit_id(folder: str | Path, rev: str) -> str | None:
    """The full id of the commit *rev* names in the repository at *folder*
    (a tag is peeled to its commit), or None when it names no commit."""
    result = run(["git", "-C", folder, "rev-parse", "--verify", "--quiet",
                  f"{rev}^{{commit}}"], check=False, timeout=300)
    return result.stdout.strip() if result.returncode == 0 else None


# --- the kernel version a tree's Makefile declares ------------------------

def makefile_version(source: FileSource) -> tuple[int, int, int, str] | None:
    """(VERSION, PATCHLEVEL, SUBLEVEL, EXTRAVERSION) from the top Makefile."""
    if not source.exists("Makefile"):
        return None
    fields: dict[str, str] = {}
    text = source.read("Makefile").decode("utf-8", "replace")
    for line in text.splitlines()[:20]:
        key, sep, value = line.partition("=")
        if sep and key.strip() in ("VERSION", "PATCHLEVEL", "SUBLEVEL",
                                   "EXTRAVERSION"):
            fields.setdefault(key.strip(), value.strip())
    try:
        return (int(fields["VERSION"]), int(fields["PATCHLEVEL"]),
                int(fields.get("SUBLEVEL") or 0), fields.get("EXTRAVERSION", ""))
    except (KeyError, ValueError):
        return None


def version_text(version: tuple[int, int, int, str] | None) -> str | None:
    """"4.14.5", "4.5", "6.1.192-rc1" (the form kernel.org uses)."""
    if version is None:
        return None
    major, minor, sub, extra = version
    text = f"{major}.{minor}" + (f".{sub}" if sub else "")
    return text + extra


# --- opening a tree -------------------------------------------------------

def _check_kernel_layout(root: Path) -> None:
    if not root.is_dir():
        raise MissingFile(f"{root} is not a folder: pass --tree the top of a "
                          "kernel source tree")
    if not (root / "mm").is_dir():
        raise MissingFile(f"{root} has no mm/ folder: pass --tree the top of a "
                          "kernel source tree (the folder with Makefile, mm/ "
                          "and include/)")


def open_worktree(path: str | Path) -> WorkTree:
    """A tree to scan: any folder with mm/, in git or not."""
    root = Path(path).resolve()
    _check_kernel_layout(root)
    try:
        repo = git.Repo(root, search_parent_directories=True)
        top = Path(repo.working_tree_dir).resolve()
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        top = None
    return WorkTree(root, top)


@dataclass(frozen=True)
class GitKernelTree:
    """A kernel tree in a git repository, ready for apply."""

    root: Path
    repo: git.Repo = field(repr=False, compare=False)
    prefix: str  # root relative to the repository top, "" or "sub/dir/"

    def head(self) -> str:
        try:
            return self.repo.head.commit.hexsha
        except ValueError:
            raise NotAGitTree(f"{self.root} has no commits yet: commit the tree "
                              "first (git add -A -f && git commit)") from None

    def resolve(self, rev: str) -> str:
        try:
            return self.repo.commit(rev).hexsha
        except (git.BadName, ValueError, git.GitCommandError):
            raise UnknownRevision(f"{rev!r} is not a commit in {self.root}: "
                                  "give a branch, tag or commit id") from None

    def at(self, commit: str) -> CommitTree:
        return CommitTree(self.repo, commit, self.prefix)

    def ensure_clean(self) -> None:
        """Refuse a tree with uncommitted changes to tracked files."""
        path = self.prefix.rstrip("/") or None
        if self.repo.is_dirty(index=True, working_tree=True,
                              untracked_files=False, path=path):
            raise DirtyTree(f"{self.root} has uncommitted changes: commit or "
                            "stash them first (patchgen works from HEAD and "
                            "never touches your working tree)")

    def branch_exists(self, name: str) -> bool:
        return f"refs/heads/{name}" in {ref.path for ref in self.repo.branches}

    def identity(self) -> tuple[str, str] | None:
        """user.name and user.email as git itself reads them (so also from
        GIT_CONFIG_GLOBAL, GIT_CONFIG_COUNT and includes), or None."""
        values = []
        for key in ("user.name", "user.email"):
            result = run(["git", "-C", self.repo.working_tree_dir, "config",
                          "--get", key], check=False)
            values.append(result.stdout.strip())
        name, email = values
        return (name, email) if name and email else None

    def find_commit_by_subject(self, subject: str, rev: str = "HEAD") -> str | None:
        """The newest commit in *rev*'s history whose subject is *subject*."""
        result = run(["git", "-C", self.repo.working_tree_dir, "log",
                      "--format=%H%x09%s", "--fixed-strings", f"--grep={subject}",
                      rev], check=False, timeout=300)
        for line in result.stdout.splitlines():
            sha, _, found = line.partition("\t")
            if found.strip() == subject:
                return sha
        return None


def open_git_tree(path: str | Path) -> GitKernelTree:
    root = Path(path).resolve()
    if not root.exists():
        raise MissingFile(f"{root} does not exist: pass --tree the top of a "
                          "kernel source tree")
    _check_kernel_layout(root)
    try:
        repo = git.Repo(root, search_parent_directories=True)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        raise NotAGitTree(f"{root} is not in a git repository: run `git init && "
                          "git add -A -f && git commit` there first, so the "
                          "series has a base to start from") from None
    if repo.bare:
        raise NotAGitTree(f"{root} is a bare repository: pass a checkout")
    top = Path(repo.working_tree_dir).resolve()
    prefix = os.path.relpath(root, top)
    prefix = "" if prefix == "." else prefix.replace(os.sep, "/") + "/"
    tree = GitKernelTree(root, repo, prefix)
    tree.head()
    return tree
