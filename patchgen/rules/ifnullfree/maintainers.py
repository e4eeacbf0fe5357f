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


def _compile(pattern: str) -> tuple[str, re.Pattern, bool]:
    literal = re.split(r"[*?]", pattern, 1)[0]
    regex = "".join({"*": "[^/]*", "?": "[^/]"}.get(c, re.escape(c)) for c in pattern)
    return literal, re.compile(regex), pattern.endswith("/")


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
