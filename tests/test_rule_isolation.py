"""The engine knows no rule: outside patchgen/rules/, nothing in patchgen/
mentions the hwpoison rule's subject (issue 11).

The words are those of the hwpoison-put-last rule.  ALLOWED would list
files that still do, each with its reason; the verify recipe and the
check-build settings moved into the rule package (rules/hwpoison/recipe.py),
so it is empty and the test holds for every file.
"""

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "patchgen"
WORDS = re.compile(r"hwpoison|soft_offline|soft-offline|MEMORY_FAILURE|memory-failure"
                   r"|poison|put_page", re.IGNORECASE)

ALLOWED: set[str] = set()


def _allowed(relative: str) -> bool:
    return any(relative == entry or (entry.endswith("/") and relative.startswith(entry))
               for entry in ALLOWED)


def _mentions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*")):
        relative = path.relative_to(PACKAGE).as_posix()
        if not path.is_file() or relative.startswith("rules/") or "__pycache__" in relative:
            continue
        text = path.read_text(encoding="utf-8", errors="replace")
        lines = [f"{relative}:{number}: {line.strip()}"
                 for number, line in enumerate(text.splitlines(), 1) if WORDS.search(line)]
        if lines:
            found[relative] = lines
    return found


def test_nothing_outside_the_rules_mentions_hwpoison():
    leaks = [line for relative, lines in _mentions().items() if not _allowed(relative)
             for line in lines]
    assert leaks == [], "\n".join(leaks)


def test_the_allow_list_holds_only_files_that_need_it():
    # An entry whose files no longer mention the rule must go.
    mentioned = _mentions()
    stale = [entry for entry in ALLOWED
             if not any(relative == entry or (entry.endswith("/") and relative.startswith(entry))
                        for relative in mentioned)]
    assert stale == []


def test_the_grep_sees_a_mention():
    # The pattern is not vacuous: the rule's own package is full of them.
    text = (PACKAGE / "rules" / "hwpoison" / "rule.py").read_text()
    assert WORDS.search(text) and WORDS.search("mm: hwPoison")
