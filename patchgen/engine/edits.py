"""Edits: byte-range replacements in one file, and applying them safely.

A rule describes what it changes as Edits against the exact bytes it
parsed; apply_edits() refuses overlapping edits, and checked_result()
re-parses the result and refuses any edit that adds a syntax error.
"""

from dataclasses import dataclass

from patchgen.infra.errors import BadRule
from patchgen.engine.parse import parse


@dataclass(frozen=True)
class Edit:
    """Replace source[start:end] of *path* with *text* (bytes offsets)."""

    path: str
    start: int
    end: int
    text: str
    why: str = ""

    def __post_init__(self):
        if not 0 <= self.start <= self.end:
            raise BadRule(f"edit of {self.path} has a bad range "
                          f"{self.start}..{self.end}")


def apply_edits(source: bytes, edits: list[Edit]) -> bytes:
    """Apply non-overlapping *edits* (any order) to *source*."""
    ordered = sorted(edits, key=lambda e: (e.start, e.end))
    for before, after in zip(ordered, ordered[1:]):
        if after.start < before.end:
            raise BadRule(f"overlapping edits in {before.path} at bytes "
                          f"{after.start}..{before.end}")
    out = []
    position = 0
    for edit in ordered:
        if edit.end > len(source):
            raise BadRule(f"edit of {edit.path} ends past the end of the file")
        out.append(source[position:edit.start])
        out.append(edit.text.encode())
        position = edit.end
    out.append(source[position:])
    return b"".join(out)


def checked_result(path: str, source: bytes, edits: list[Edit]) -> bytes:
    """apply_edits(), then refuse a result with more syntax errors."""
    result = apply_edits(source, edits)
    before = parse(source, path).error_count()
    after = parse(result, path).error_count()
    if after > before:
        raise BadRule(f"the rewrite of {path} would add {after - before} syntax "
                      "error(s); nothing was changed")
    return result


def indent_block(text: str, indent: str) -> str:
    """Indent every non-empty line of *text* by *indent*."""
    return "".join(indent + line if line.strip() else line
                   for line in text.splitlines(keepends=True))


TAB = 8
MAX_COLUMNS = 80


def columns(line: str) -> int:
    """Display width of *line*, tabs expanded to 8 columns."""
    return len(line.expandtabs(TAB))


def _reflow_comment(lines: list[str], width: int) -> list[str]:
    """Reflow the body of one `/*` ... ` */` block comment to *width*."""
    head = lines[0]
    indent = head[:len(head) - len(head.lstrip())]
    prefix = indent + " * "
    room = width - columns(prefix)
    out = [head]
    paragraph: list[str] = []

    def flush():
        if paragraph:
            words = " ".join(paragraph).split()
            line = ""
            for word in words:
                candidate = f"{line} {word}" if line else word
                if line and len(candidate) > room:
                    out.append(prefix + line)
                    line = word
                else:
                    line = candidate
            out.append(prefix + line)
            paragraph.clear()

    for body in lines[1:-1]:
        text = body.strip()
        text = text[1:].strip() if text.startswith("*") else text
        if not text:
            flush()
            out.append(indent + " *")
        else:
            paragraph.append(text)
    flush()
    out.append(lines[-1])
    return out


def fit_comments(text: str, width: int = MAX_COLUMNS) -> str:
    """Reflow multi-line block comments (not kernel-doc) whose lines are
    wider than *width*, keeping the kernel comment style."""
    lines = text.split("\n")
    out = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == "/*":
            end = i + 1
            while end < len(lines) and not lines[end].strip().startswith("*/"):
                end += 1
            block = lines[i:end + 1]
            if end < len(lines) and any(columns(l) > width for l in block):
                block = _reflow_comment(block, width)
            out.extend(block)
            i = end + 1
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def format_c(text: str, indent: str) -> str:
    """Template output placed at *indent*, its comments fitted to 80 columns."""
    return fit_comments(indent_block(text, indent))
