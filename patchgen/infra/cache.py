"""The cache folder outside any repository: real trees, build folders.

Also what `patchgen check --build` and `patchgen verify` share there, so
that it belongs to neither stage: the folder kept for one user tree (its
private checkout and its build folders), and the machine-wide lock that
lets one kernel build run at a time.
"""

import errno
import fcntl
import hashlib
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from patchgen.infra.errors import CacheFull


def cache_root() -> Path:
    """$PATCHGEN_CACHE, else $XDG_CACHE_HOME/patchgen, else ~/.cache/patchgen
    (not created)."""
    root = os.environ.get("PATCHGEN_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "patchgen")
    return Path(root)


def cache_dir(*parts: str) -> Path:
    """A folder of the cache (cache_root()), made if missing."""
    path = Path(cache_root(), *parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise CacheFull(f"the disk under the cache {cache_root()} is full "
                            f"({exc.strerror}): free space there or point "
                            "PATCHGEN_CACHE at a larger disk") from None
        raise
    return path


def workdir_for(tree: Path) -> Path:
    """The cache folder of one user tree (the top of its repository, or
    the kernel tree verify builds in place): its private checkout and its
    build folders."""
    top = Path(tree).resolve()
    digest = hashlib.sha1(str(top).encode()).hexdigest()[:10]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", top.name) or "tree"
    return cache_dir("workspaces", f"{name}-{digest}")


@contextmanager
def kernel_build_lock(what: str = "a kernel build") -> Iterator[None]:
    """One kernel build at a time on this machine (builds take every core).
    The holder writes its pid and *what* into the lock file; a run that
    has to wait says on stderr for whom, once, instead of going quiet."""
    with open(cache_dir("locks") / "kernel-build.lock", "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another patchgen run"
            print(f"patchgen: waiting for the machine's kernel build lock "
                  f"({lock.name}), held by {holder}", file=sys.stderr,
                  flush=True)
            fcntl.flock(lock, fcntl.LOCK_EX)
        lock.truncate(0)
        lock.write(f"pid {os.getpid()}: {what}\n")
        lock.flush()
        try:
            yield
        finally:
            lock.truncate(0)
