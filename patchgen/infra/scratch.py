"""Private scratch: where patchgen keeps what it makes only for itself.

Private index files, mails split from an mbox, check's clone: none of it
may stay in the user's repository or in /tmp when patchgen is stopped
half-way (SIGKILL, a power cut).  So it lives in the cache folder, one
folder per use, named after the process that made it; every new run
removes the folders of processes that no longer exist (and the same for
names made elsewhere with owner_tag(), e.g. format's partial folders).
"""

import os
import re
import secrets
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from patchgen.infra.cache import cache_dir

# What this run made for the user on purpose (a branch): an interrupt
# after it must not say that nothing was left.
made_for_user: list[str] = []

_OWNED = re.compile(r"-p(\d+)-[0-9a-f]{8}$")


def owner_tag() -> str:
    """A suffix naming this process: `-p<pid>-<random>`."""
    return f"-p{os.getpid()}-{secrets.token_hex(4)}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def is_stale(path: Path) -> bool:
    """Whether *path* carries owner_tag() of a process that has ended."""
    match = _OWNED.search(path.name)
    return match is not None and not _alive(int(match.group(1)))


def sweep(folder: Path, prefix: str = "") -> list[Path]:
    """Remove what dead processes left in *folder* (names starting with
    *prefix* and ending in an owner_tag()); return what was removed."""
    removed: list[Path] = []
    try:
        entries = list(folder.iterdir())
    except OSError:
        return removed
    for entry in entries:
        if entry.name.startswith(prefix) and is_stale(entry):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                try:
                    entry.unlink()
                except OSError:
                    continue
            removed.append(entry)
    return removed


def scratch_root() -> Path:
    root = cache_dir("scratch")
    sweep(root)
    return root


@contextmanager
def scratch_folder(kind: str) -> Iterator[Path]:
    """A new empty folder for *kind* ("index", "mails", "check"), removed
    when the block ends, and by the next run if this one is killed."""
    path = scratch_root() / f"{kind}{owner_tag()}"
    path.mkdir()
    try:
        yield path
    finally:
        from patchgen.infra.objects import close_under   # objects imports runner
        close_under(path)
        shutil.rmtree(path, ignore_errors=True)
