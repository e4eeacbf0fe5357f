"""The cache folder outside any repository: real trees, build folders.

Also the machine-wide lock that lets one kernel build run at a time: it
belongs to no stage, since `patchgen check --build` and `patchgen verify`
both take it.
"""

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def cache_dir(*parts: str) -> Path:
    """$PATCHGEN_CACHE, else $XDG_CACHE_HOME/patchgen, else ~/.cache/patchgen."""
    root = os.environ.get("PATCHGEN_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "patchgen")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def kernel_build_lock() -> Iterator[None]:
    """One kernel build at a time on this machine (builds take every core)."""
    with open(cache_dir("locks") / "kernel-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
