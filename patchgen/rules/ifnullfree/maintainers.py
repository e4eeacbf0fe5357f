"""Which MAINTAINERS section a file belongs to (for one series per section).

The most specific section wins: of the sections whose F: patterns cover the
file (and whose X: patterns do not exclude it), the one with the longest
matching pattern; THE REST (everyone's fallback) never.  N: regexes are
not used: they match across the tree by name and would pull a driver's
file into an unrelated section.
"""

import re
from functools import lru_cache

from patchgen.series.recipients import CATCH_ALL, parse_maintainers


class _Lazy:
    """A pattern's regex, compiled the first time a path reaches it."""

    def __init__(self, pattern: str):
        self.pattern = pattern
        self._regex: re.Pattern | None = None

    def match(self, path):
        return self.regex.match(path)

    def fullmatch(self, path):
        return self.regex.fullmatch(path)

    @property
    def regex(self) -> re.Pattern:
        if self._regex is None:
            self._regex = re.compile("".join(
                {"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c)) for c in self.pattern))
        return self._regex


def _compile(pattern: str) -> tuple[str, _Lazy, bool]:
    literal = re.split(r"[*?]", pattern, maxsplit=1)[0]
    return literal, _Lazy(pattern), pattern.endswith("/")


@lru_cache(maxsize=2)
def _index(text: str) -> list[tuple[str, list, list]]:
    sections = []
    for section in parse_maintainers(text):
        if section.title == CATCH_ALL or not section.files:
            continue
        sections.append((section.title, [(_compile(f), f) for f in section.files],
                         [(_compile(x), x) for x in section.excludes]))
    return sections


def _covers(compiled, pattern: str, path: str) -> bool:
    literal, regex, folder = compiled
    if not path.startswith(literal):
        return False
    if folder or "*" not in pattern and "?" not in pattern and \
            path.startswith(pattern.rstrip("/") + "/"):
        return path.startswith(pattern) or bool(regex.match(path))
    match = regex.fullmatch(path)
    if match:
        return True
    # "drivers/foo/*" style patterns of a folder also cover its files only.
    return False


def section_of(text: str, path: str) -> tuple[str, str] | None:
    """(title, F: pattern) of the most specific section covering *path*."""
    best, best_length = None, -1
    for title, files, excludes in _index(text):
        if any(_covers(c, x, path) for c, x in excludes):
            continue
        for compiled, pattern in files:
            if len(pattern) > best_length and _covers(compiled, pattern, path):
                best, best_length = (title, pattern), len(pattern)
    return best
