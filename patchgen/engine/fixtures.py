"""Bundled fixture trees: small kernel-shaped trees, one per era.

kernel-fixtures/_base holds support headers every era shares (types,
lists, atomics); kernel-fixtures/<name> holds the files whose shape
differs per era, and its INHERIT file names those it takes unchanged
from another era.  materialize() writes base + era into a new folder and
makes it a git repository with a fixed author and date, so the same
fixture always gives the same commit ids.
"""

import shutil
from pathlib import Path

from patchgen.infra.data import data_dir
from patchgen.infra.errors import UserError
from patchgen.infra.gitenv import FIXED_IDENTITY
from patchgen.infra.runner import run

BASE = "_base"


# Files of a fixture folder that describe the tree and are not part of it.
META_FILES = ("ERA", "INHERIT")


def inherited_files(name: str, _seen: tuple = ()) -> dict[str, Path]:
    """The files fixture *name* takes unchanged from other eras' trees
    (its INHERIT file: `path<TAB>era` lines), resolved to where they are."""
    if name in _seen:
        raise UserError(f"fixture {name} inherits from itself: "
                        f"{' -> '.join(_seen + (name,))}")
    root = data_dir("kernel-fixtures")
    listing = root / name / "INHERIT"
    found: dict[str, Path] = {}
    if not listing.exists():
        return found
    for line in listing.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        path, owner = line.split()
        own = root / owner / path
        found[path] = own if own.exists() else \
            inherited_files(owner, _seen + (name,))[path]
    return found


def fixture_names() -> list[str]:
    root = data_dir("kernel-fixtures")
    return sorted(p.name for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(("_", ".")))


def fixture_description(name: str) -> str:
    """The first line of the fixture's ERA file (what it stands for)."""
    era_file = data_dir("kernel-fixtures") / name / "ERA"
    return era_file.read_text().splitlines()[0] if era_file.exists() else name


def materialize(name: str, dest: Path, *, git: bool = True,
                identity: tuple[str, str] | None = ("Fixture Author",
                                                    "fixture@example.org"),
                ) -> Path:
    """Write fixture *name* to *dest* (which must not exist) and commit it.

    *identity* becomes the repository's user.name/user.email (what apply
    signs off with); None leaves the repository without one.
    """
    root = data_dir("kernel-fixtures")
    if name not in fixture_names():
        raise UserError(f"there is no fixture tree {name!r}: choose one of "
                        f"{', '.join(fixture_names())}")
    dest = Path(dest)
    shutil.copytree(root / BASE, dest)
    for path, source in inherited_files(name).items():
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest / path)
    shutil.copytree(root / name, dest, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(*META_FILES))
    if git:
        run(["git", "init", "-q", "-b", "master", str(dest)])
        if identity:
            run(["git", "-C", dest, "config", "user.name", identity[0]])
            run(["git", "-C", dest, "config", "user.email", identity[1]])
        run(["git", "-C", dest, "add", "-A"])
        run(["git", "-C", dest, "commit", "-q", "-m",
             f"Import fixture tree {name}"], env=FIXED_IDENTITY)
    return dest
