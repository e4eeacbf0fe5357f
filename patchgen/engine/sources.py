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

import hashlib
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Protocol

import git

from patchgen.infra.errors import (CommandFailed, DirtyTree, MissingFile, NotAGitTree,
                             UnknownRevision, UserError)
from patchgen.infra import objects
from patchgen.infra.runner import run, run_git


class FileSource(Protocol):
    @property
    def label(self) -> str: ...

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
            # Tracked and untracked (not ignored) files, as on disk: two
            # greps, because `git grep --untracked` walks the folders and
            # skips what .gitignore names, tracked or not (the Debian
            # tree's .gitignore names nearly every tracked file).
            result = run(["git", "-C", self.root, "grep", "-l", "-I", "-F",
                          "--full-name", *_grep_pattern(words),
                          "--", *_pathspecs(suffixes)], check=False, timeout=600)
            names = result.stdout.splitlines()
            if result.returncode in (0, 1):
                names += self._untracked_containing(words, suffixes)
            prefix = os.path.relpath(self.root, self.git_top)
            prefix = "" if prefix == "." else prefix + "/"
            names = sorted({n[len(prefix):] if n.startswith(prefix) else n
                            for n in names})
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

    def _untracked_containing(self, words, suffixes) -> list[str]:
        """Untracked, not ignored files holding one of *words* (names from
        the repository top)."""
        listed = run(["git", "-C", self.root, "ls-files", "-z", "--others",
                      "--exclude-standard", "--full-name", "--",
                      *_pathspecs(suffixes)],
                     check=False, timeout=600)
        others = [n for n in listed.stdout.split("\0") if n]
        found: list[str] = []
        for start in range(0, len(others), 500):
            result = run(["grep", "-l", "-I", "-F", *_grep_pattern(words), "--",
                          *others[start:start + 500]], cwd=self.git_top,
                         check=False, timeout=600)
            found += result.stdout.splitlines()
        return found


@dataclass(frozen=True)
class CommitTree:
    """Files as they are in one commit of a repository."""

    repo: git.Repo = field(repr=False, compare=False)
    commit: str  # full hex id
    prefix: str = ""  # the kernel tree's folder inside the repository

    @property
    def label(self) -> str:
        return f"{self.repo.working_tree_dir} at {self.commit[:12]}"

    @property
    def top(self) -> str:
        """The repository's top folder."""
        return str(self.repo.working_tree_dir)

    # Read with one `git cat-file --batch` of our own (objects.py), not
    # GitPython's cat-file streams, whose finalizer can block for ever on
    # a blob an interrupt left half-read.  Faster still, and the same
    # bytes: the file in the working tree when its hash is the blob's id
    # (disk_copy), which it is for every file a clean checkout of the
    # commit has not changed.

    def _entry(self, path: str) -> tuple[str, str, str] | None:
        return tree_entry(self.top, self.commit, self.prefix + path)

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
        data = disk_copy(self.top, self.prefix + path, entry[2])
        if data is None:
            data = objects.blobs.get(self.top, entry[2])
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
        names = _grep_commit(self.top, self.commit,
                             tuple(sorted(set(words))), tuple(suffixes))
        return [n[len(self.prefix):] for n in names if n.startswith(self.prefix)]


def tree_entry(top: str, commit: str, path: str) -> tuple[str, str, str] | None:
    """(mode, type, id) of *path* in *commit*, or None when it has none
    (read from tree objects, which are kept: a commit never changes)."""
    return objects.entry(str(top), commit, str(path))


def disk_copy(top: str | Path, path: str, sha: str) -> bytes | None:
    """The bytes of the file *path* below *top* when they are the blob
    *sha* (their git hash is *sha*), else None.  Reading a file and hashing
    it is several times faster than inflating the blob from the object
    store, and what it returns is the blob, whatever the working tree
    holds: a file changed on disk simply does not match."""
    try:
        with open(os.path.join(top, path), "rb") as handle:
            data = handle.read()
    except OSError:
        return None
    digest = hashlib.sha1() if len(sha) == 40 else hashlib.sha256()
    digest.update(b"blob %d\0" % len(data))
    digest.update(data)
    return data if digest.hexdigest() == sha else None


def _stands_in(top: str) -> bool:
    """Whether the working tree can stand in for a commit where git's stat
    comparison says a file is unchanged: not when files are marked
    assume-unchanged or skip-worktree (git would call them unchanged
    without looking), nor with content filters (the file is not the blob)."""
    marked = run(["git", "-C", top, "ls-files", "-v", "-z"], check=False,
                 timeout=600)
    return marked.returncode == 0 and not _converts(top) and not any(
        entry[:1].islower() or entry[:1] == "S"
        for entry in marked.stdout.split("\0") if entry)


def _changed_on_disk(top: str, commit: str) -> set[str] | None:
    """The paths where the working tree may differ from *commit* (git's
    own stat comparison through the index: a file whose stat changed is
    listed even when its content did not), or None."""
    result = run(["git", "-C", top, "diff-index", "--name-only", "-z",
                  "--no-renames", commit, "--"], check=False, timeout=600)
    if result.returncode != 0:
        return None
    return {n for n in result.stdout.split("\0") if n}


# The attributes that make a checked-out file differ from its blob.
CONVERTING = re.compile(rb"\b(filter|text|eol|crlf|ident|working-tree-encoding)\b")


def _converts(top: str) -> bool:
    """Whether files may be converted between the object store and the
    working tree: core.autocrlf, or an attribute that converts in a
    .gitattributes file (the Linux tree's set only diff= drivers)."""
    autocrlf = run(["git", "-C", top, "config", "--get", "core.autocrlf"],
                   check=False).stdout.strip()
    if autocrlf not in ("", "false"):
        return True
    listed = run(["git", "-C", top, "ls-files", "-z", "--",
                  ":(glob)**/.gitattributes"], check=False, timeout=600)
    git_dir = run(["git", "-C", top, "rev-parse", "--absolute-git-dir"],
                  check=False).stdout.strip()
    files = [os.path.join(top, n) for n in listed.stdout.split("\0") if n]
    files.append(os.path.join(git_dir, "info", "attributes"))
    global_file = run(["git", "-C", top, "config", "--path", "--get",
                       "core.attributesFile"], check=False).stdout.strip()
    config_home = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    files.append(global_file or os.path.join(config_home, "git", "attributes"))
    for name in files:
        try:
            with open(name, "rb") as handle:
                if CONVERTING.search(handle.read()):
                    return True
        except OSError:
            continue
    return False


def _grep_on_disk(top: str, commit: str, words: tuple,
                  suffixes: tuple) -> list[str] | None:
    """_grep_commit()'s answer from the working tree: `git grep` on the
    files that are as in *commit* (about 5x faster than inflating every
    blob), the object store for the few that are not.  None when the
    working tree cannot stand in for the commit, or changed during the
    search."""
    before = _changed_on_disk(top, commit) if _stands_in(top) else None
    if before is None:
        return None
    maybe = sorted(n for n in before if n.endswith(suffixes))
    if len(maybe) > 1000:
        return None
    result = run(["git", "-C", top, "grep", "-l", "-I", "-F", "--full-name",
                  *_grep_pattern(words), "--", *_pathspecs(suffixes)],
                 check=False, timeout=600)
    if result.returncode not in (0, 1) or _changed_on_disk(top, commit) != before:
        return None
    found = {n for n in result.stdout.splitlines() if n not in before}
    if maybe:
        result = run(["git", "-C", top, "grep", "-l", "-I", "-F", "--full-name",
                      *_grep_pattern(words), commit, "--",
                      *[f":(literal){n}" for n in maybe]],
                     check=False, timeout=600)
        if result.returncode not in (0, 1):
            return None
        found.update(line.split(":", 1)[1] for line in result.stdout.splitlines())
    return sorted(found)


@lru_cache(maxsize=64)
def _grep_commit(top: str, commit: str, words: tuple, suffixes: tuple) -> list[str]:
    """Files of *commit* holding one of *words*.  A commit never changes, so
    the answer is kept: apply asks once per step of its series."""
    on_disk = _grep_on_disk(top, commit, words, suffixes)
    if on_disk is not None:
        return on_disk
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

# The top folders of a kernel source tree: a tree has its Makefile and at
# least one of them.  Which folders a rule needs is the rule's business
# (its scan says so in its own words).
KERNEL_FOLDERS = ("arch", "block", "crypto", "drivers", "fs", "include", "init",
                  "ipc", "kernel", "lib", "mm", "net", "scripts", "security",
                  "sound", "virt")


def has_kernel_layout(folder: Path) -> bool:
    """Whether *folder* has the shape of the top of a kernel tree."""
    return (folder / "Makefile").is_file() and any(
        (folder / name).is_dir() for name in KERNEL_FOLDERS)


def _check_kernel_layout(root: Path) -> None:
    if not root.is_dir():
        raise MissingFile(f"{root} is not a folder: pass --tree the top of a "
                          "kernel source tree")
    if not has_kernel_layout(root):
        raise MissingFile(f"{root} is not the top of a kernel source tree (it "
                          "needs a Makefile and the kernel's folders, such as "
                          "include/ or drivers/): pass --tree that folder")


def open_worktree(path: str | Path) -> WorkTree:
    """A tree to scan: a folder in the kernel's shape, in git or not."""
    root = Path(path).resolve()
    _check_kernel_layout(root)
    try:
        repo = git.Repo(root, search_parent_directories=True)
        top: Path | None = Path(str(repo.working_tree_dir)).resolve()
    except (git.InvalidGitRepositoryError, git.NoSuchPathError):
        top = None
    return WorkTree(root, top)


@dataclass(frozen=True)
class GitKernelTree:
    """A kernel tree in a git repository, ready for apply."""

    root: Path
    repo: git.Repo = field(repr=False, compare=False)
    prefix: str  # root relative to the repository top, "" or "sub/dir/"

    # The repository is a git.Repo for its paths (working_tree_dir,
    # git_dir, common_dir) only: every git command goes through the
    # runner (run_git: a timeout, the log), none through GitPython.

    @property
    def top(self) -> str:
        """The repository's top folder."""
        return str(self.repo.working_tree_dir)

    def head(self) -> str:
        sha = commit_id(self.top, "HEAD")
        if sha is None:
            raise NotAGitTree(f"{self.root} has no commits yet: commit the tree "
                              "first (git add -A -f && git commit)")
        return sha

    def resolve(self, rev: str) -> str:
        sha = commit_id(self.top, rev)
        if sha is None:
            raise UnknownRevision(f"{rev!r} is not a commit in {self.root}: "
                                  "give a branch, tag or commit id")
        return sha

    def at(self, commit: str) -> CommitTree:
        return CommitTree(self.repo, commit, self.prefix)

    def is_dirty(self, path: str | None = None) -> bool:
        """Whether tracked files (below *path*) have changes, staged or not."""
        where = ["--", path] if path else []
        for staged in (["--cached"], []):
            result = run_git(self.top, "diff", "--quiet", "--no-ext-diff",
                             *staged, *where, check=False)
            if result.returncode == 1:
                return True
            if result.returncode != 0:
                raise CommandFailed(f"git diff in {self.top} failed: "
                                    f"{result.stderr.strip()[:200]}")
        return False

    def ensure_clean(self) -> None:
        """Refuse a tree with uncommitted changes to tracked files."""
        if self.is_dirty(self.prefix.rstrip("/") or None):
            raise DirtyTree(f"{self.root} has uncommitted changes: commit or "
                            "stash them first (patchgen works from HEAD and "
                            "never touches your working tree)")

    def branch_exists(self, name: str) -> bool:
        return run_git(self.top, "show-ref", "--verify", "--quiet",
                       f"refs/heads/{name}", check=False).returncode == 0

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
    top = Path(str(repo.working_tree_dir)).resolve()
    prefix = os.path.relpath(root, top)
    prefix = "" if prefix == "." else prefix.replace(os.sep, "/") + "/"
    tree = GitKernelTree(root, repo, prefix)
    tree.head()
    return tree
