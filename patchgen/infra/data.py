"""Where the project's data folders are, installed or in a checkout.

A checkout keeps templates/ and kernel-fixtures/ at the top of the
repository; an installed wheel carries them in patchgen/_data/.
"""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent


def data_dir(name: str) -> Path:
    """Return the folder *name* ("templates" or "kernel-fixtures")."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"patchgen data folder {name!r} is missing")
