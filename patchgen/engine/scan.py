"""Scan: run a rule over a tree, read-only, and return its Report.

`--only PATHSPEC` (like Coccinelle's M=) limits where a rule looks for
sites: the rule's searches (files_containing) answer only files under the
given paths, while reading any file stays possible (a rule may need a
header or the definition of a function elsewhere to decide).
"""

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from patchgen.infra.errors import UserError
from patchgen.engine.rule import Report
from patchgen.engine.registry import get_rule
from patchgen.engine.sources import FileSource, open_worktree


def _clean(spec: str) -> str:
    spec = spec.strip()
    while spec.startswith("./"):
        spec = spec[2:]
    if not spec or spec.startswith("/") or ".." in spec.split("/"):
        raise UserError(f"--only {spec!r} is not a path inside the tree: give "
                        "one relative to its top, e.g. --only drivers/gpu/")
    return spec


def in_pathspec(path: str, specs: tuple[str, ...]) -> bool:
    """*path* is under one of *specs*: a folder ("drivers/gpu/" or
    "drivers/gpu"), a file, or a glob ("drivers/*/foo.c")."""
    for spec in specs:
        if any(c in spec for c in "*?["):
            if fnmatch.fnmatchcase(path, spec) or fnmatch.fnmatchcase(path, spec.rstrip("/") + "/*"):
                return True
        elif path == spec.rstrip("/") or path.startswith(spec.rstrip("/") + "/"):
            return True
    return False


@dataclass(frozen=True)
class Limited:
    """*base*, with its searches limited to *specs*."""

    base: FileSource
    specs: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.base.label} (only {', '.join(self.specs)})"

    def read(self, path: str) -> bytes:
        return self.base.read(path)

    def exists(self, path: str) -> bool:
        return self.base.exists(path)

    def files_containing(self, words, suffixes=(".c", ".h")) -> list[str]:
        return [p for p in self.base.files_containing(words, suffixes)
                if in_pathspec(p, self.specs)]

    def __getattr__(self, name):
        if name.startswith("__") or name in ("base", "specs"):
            raise AttributeError(name)
        # root, git_top, repo, commit, prefix: what history and the rest
        # read from the source it limits.
        return getattr(self.base, name)


def limited(source, only: tuple[str, ...] | list[str]):
    """*source* with its searches limited to *only* (unchanged if empty)."""
    specs = tuple(_clean(s) for s in only)
    return Limited(source, specs) if specs else source


def scan_tree(path: str | Path, rule_id: str, only: tuple[str, ...] = ()) -> Report:
    """Scan the files on disk below *path* (a git tree or not), or with
    *only* the files below those paths."""
    rule = get_rule(rule_id)
    return rule.scan(limited(open_worktree(path), only))
