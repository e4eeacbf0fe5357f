"""Commit-message prose: wrapping to kernel width.

Templates write paragraphs as they come; wrap_message() reflows them to
the width kernel commit messages use (SERIES.md: at most 75 columns),
leaving alone what must not be reflowed: the subject, indented lines (code,
quoted output), tag lines (`Fixes:`, `Link:`, `Signed-off-by:` ...) and
lines that cannot be broken (a long URL).
"""

import re
import textwrap

WIDTH = 72
TAG = re.compile(r"^[A-Z][A-Za-z-]*(-by|-to)?: |^(Fixes|Link|Cc|Closes): ")
BULLET = re.compile(r"^(\s*)([-*]|\d+[.)]) ")


def _is_verbatim(line: str) -> bool:
    return line.startswith((" ", "\t")) or bool(TAG.match(line))


def wrap_paragraph(lines: list[str], width: int = WIDTH) -> list[str]:
    first = lines[0]
    bullet = BULLET.match(first)
    words = " ".join(line.strip() for line in lines)
    if bullet:
        hang = " " * len(bullet.group(0))
        return textwrap.wrap(words, width, initial_indent="",
                             subsequent_indent=hang, break_long_words=False,
                             break_on_hyphens=False)
    return textwrap.wrap(words, width, break_long_words=False,
                         break_on_hyphens=False)


def wrap_message(message: str, width: int = WIDTH) -> str:
    """Reflow a commit message's body paragraphs to *width* columns."""
    lines = message.rstrip("\n").split("\n")
    out = [lines[0]]
    paragraph: list[str] = []

    def flush():
        if paragraph:
            out.extend(wrap_paragraph(paragraph, width))
            paragraph.clear()

    for line in lines[1:]:
        if not line.strip():
            flush()
            out.append("")
        elif _is_verbatim(line):
            flush()
            out.append(line.rstrip())
        elif BULLET.match(line):
            flush()
            paragraph.append(line)
        else:
            paragraph.append(line)
    flush()
    text = "\n".join(out)
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"
