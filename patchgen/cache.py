"""The cache folder outside any repository: real trees, build folders."""

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """$PATCHGEN_CACHE, else $XDG_CACHE_HOME/patchgen, else ~/.cache/patchgen."""
    root = os.environ.get("PATCHGEN_CACHE")
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = str(Path(xdg) / "patchgen")
    path = Path(root, *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path
