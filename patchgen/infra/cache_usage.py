"""What the cache folder holds, and pruning what was not used for a while.

The cache (cache.py: $PATCHGEN_CACHE, else ~/.cache/patchgen) grows by
about a gigabyte per real tree that `check --build` or `verify` builds:
workspaces/<tree>-<hash>/ holds a private checkout (src/) and its build
folders (build-*/).  usage() measures every top-level folder and, inside
workspaces/, every checkout and build; prune() removes the builds and
checkouts not used for N days, and verify's run logs (runs/) as old.

Never a build in use: a build folder is removed only while patchgen holds
its lock itself, taken without waiting; the locks are the ones the
builders take (build.py: build-*.lock beside a verify build; workspace.py:
workspace.lock over the checkout and the builds `check --build` makes in
it).  The unpacked real trees (trees/) are never pruned: they take long
to make and are not per-run.

"Used" is the newest modification time of the folder, the files at its
top (a build's .config, vmlinux) and its lock file (which every user
opens for writing, so its time is the last use).
"""

import fcntl
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from patchgen.infra.cache import cache_dir
from patchgen.infra.errors import PatchgenError
from patchgen.infra.runner import run

DAY = 86400
WORKSPACE_LOCK = "workspace.lock"
PRUNED = ("workspaces", "runs")          # what prune looks into


@dataclass(frozen=True)
class Entry:
    path: Path
    kind: str            # "folder", "checkout", "build", "run"
    size: int            # bytes on disk
    last_used: float     # seconds since the epoch

    def age_days(self, now: float) -> float:
        return max(0.0, (now - self.last_used) / DAY)


@dataclass(frozen=True)
class Usage:
    root: Path
    folders: tuple[Entry, ...]       # the top-level folders
    workspaces: tuple[Entry, ...]    # checkouts and builds inside workspaces/

    @property
    def total(self) -> int:
        return sum(e.size for e in self.folders)


@dataclass(frozen=True)
class PruneResult:
    removed: tuple[Entry, ...]
    kept_in_use: tuple[Entry, ...]   # stale, but locked by a running build
    freed: int
    dry_run: bool


Notify = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


def disk_size(path: Path) -> int:
    """Bytes a folder takes on disk (as du counts them: blocks, each
    hard-linked file once, symbolic links not followed); what prune frees,
    and usage() when du cannot be run."""
    total, seen = 0, set()
    try:
        top = os.lstat(path)
    except OSError:
        return 0
    total += top.st_blocks * 512
    for folder, dirs, files in os.walk(path):
        for name in dirs + files:
            try:
                info = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if info.st_nlink > 1:
                if (info.st_dev, info.st_ino) in seen:
                    continue
                seen.add((info.st_dev, info.st_ino))
            total += info.st_blocks * 512
    return total


def du_sizes(root: Path) -> dict[str, int] | None:
    """Bytes on disk of every folder down to workspaces/<tree>/<build>,
    from one walk of the real du (about four times faster than walking
    here); None when du cannot be run."""
    try:
        result = run(["du", "-B1", "--max-depth=3", str(root)], timeout=3600,
                     check=False)
    except PatchgenError:
        return None
    sizes = {}
    # du exits 1 when a file vanished under it (a build running): the
    # sizes it printed still stand.
    for line in result.stdout.splitlines():
        size, _, path = line.partition("\t")
        if size.isdigit() and path:
            sizes[path] = int(size)
    return sizes or None


def last_used(path: Path, lock: Path | None = None) -> float:
    times = []
    for candidate in (path, lock):
        if candidate is not None:
            try:
                times.append(os.stat(candidate).st_mtime)
            except OSError:
                pass
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                try:
                    times.append(entry.stat(follow_symlinks=False).st_mtime)
                except OSError:
                    pass
    except OSError:
        pass
    return max(times, default=0.0)


def _build_lock(build: Path) -> Path:
    return build.with_name(build.name + ".lock")


def _entries_of(workdir: Path, sizes: dict[str, int] | None = None) -> list[Entry]:
    """The checkout and the builds of one workspace folder (*sizes*: from
    du_sizes(), else measured here)."""
    def size_of(path: Path) -> int:
        if sizes is not None and str(path) in sizes:
            return sizes[str(path)]
        return disk_size(path)

    entries = []
    for child in sorted(p for p in workdir.iterdir() if p.is_dir()):
        if child.name.startswith("build-"):
            entries.append(Entry(child, "build", size_of(child),
                                 last_used(child, _build_lock(child))))
        elif child.name == "src":
            lock = workdir / WORKSPACE_LOCK
            entries.append(Entry(child, "checkout", size_of(child),
                                 last_used(lock) if lock.exists() else last_used(child)))
    return entries


def _workdirs(root: Path) -> list[Path]:
    workspaces = root / "workspaces"
    return sorted(p for p in workspaces.iterdir() if p.is_dir()) \
        if workspaces.is_dir() else []


def usage(notify: Notify = _quiet) -> Usage:
    root = cache_dir()
    notify(f"measuring {root} (du)")
    sizes = du_sizes(root)
    workspaces = []
    for workdir in _workdirs(root):
        workspaces += _entries_of(workdir, sizes)
    folders = []
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if sizes is not None and str(folder) in sizes:
            size = sizes[str(folder)]
        else:
            notify(f"measuring {folder}")
            size = disk_size(folder)
        folders.append(Entry(folder, "folder", size, last_used(folder)))
    return Usage(root, tuple(folders), tuple(workspaces))


class _TryLock:
    """An exclusive flock taken without waiting; .held says if it was."""

    def __init__(self, path: Path, create: bool = True):
        self.path = path
        self.create = create      # False (a dry run): make no lock file
        self.file = None
        self.held = False

    def __enter__(self):
        if not self.create and not self.path.exists():
            self.held = True      # nobody can hold a lock file that is not there
            return self
        try:
            # "a": never truncate, so taking the lock does not count as a use.
            self.file = open(self.path, "a")
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.held = True
        except BlockingIOError:
            self.held = False
        except OSError:
            self.held = False
        return self

    def __exit__(self, *exc):
        if self.file is not None:
            self.file.close()
        return False


def prune(days: float, *, dry_run: bool = False, now: float | None = None,
          notify: Notify = _quiet) -> PruneResult:
    """Remove builds, checkouts and run logs not used for *days* days."""
    now = time.time() if now is None else now
    limit = now - days * DAY
    root = cache_dir()
    removed: list[Entry] = []
    in_use: list[Entry] = []

    def remove(entry: Entry) -> None:
        notify(f"{'would remove' if dry_run else 'removing'} {entry.path}")
        if not dry_run:
            shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry)

    for workdir in _workdirs(root):
        notify(f"looking at {workdir}")
        entries = _entries_of(workdir)
        stale = [e for e in entries if e.last_used < limit]
        if not stale:
            continue
        # The checkout and the builds check makes in it are under the
        # workspace lock; a verify build has its own lock as well.
        with _TryLock(workdir / WORKSPACE_LOCK, not dry_run) as workspace_lock:
            if not workspace_lock.held:
                in_use.extend(stale)
                continue
            for entry in (e for e in stale if e.kind == "build"):
                with _TryLock(_build_lock(entry.path), not dry_run) as build_lock:
                    if not build_lock.held:
                        in_use.append(entry)
                        continue
                    remove(entry)
                    if not dry_run:
                        _build_lock(entry.path).unlink(missing_ok=True)
            left = [e for e in entries if e not in removed]
            if all(e.last_used < limit for e in left):
                for entry in (e for e in left if e.kind == "checkout"):
                    remove(entry)
        if not dry_run and not any(p for p in workdir.iterdir()
                                   if p.name != WORKSPACE_LOCK):
            (workdir / WORKSPACE_LOCK).unlink(missing_ok=True)
            try:
                workdir.rmdir()
            except OSError:
                pass

    runs = root / "runs"
    for run_dir in sorted(p for p in runs.iterdir() if p.is_dir()) \
            if runs.is_dir() else ():
        used = last_used(run_dir)
        if used < limit:
            remove(Entry(run_dir, "run", disk_size(run_dir), used))
    return PruneResult(tuple(removed), tuple(in_use),
                       sum(e.size for e in removed), dry_run)
