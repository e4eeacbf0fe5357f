"""Splicing C into a parsed file: Edits that keep the kernel's layout.

Rules say what to put where in terms of syntax nodes (replace these
statements, insert after that one, before this function); these helpers
turn that into byte-range Edits with the right indentation, whether the
code around is laid out one statement per line or crammed on one line.
"""

from tree_sitter import Node

from patchgen.engine.edits import Edit, format_c
from patchgen.engine.parse import ParsedFile


def _only_space(data: bytes) -> bool:
    return not data.strip(b" \t")


def line_end(parsed: ParsedFile, offset: int) -> int:
    """Offset just past the newline ending the line that holds *offset*."""
    end = parsed.source.find(b"\n", offset)
    return len(parsed.source) if end < 0 else end + 1


def leading_comments_start(parsed: ParsedFile, node: Node) -> Node:
    """The first of the comments directly above *node* (no blank line
    between), or *node* itself."""
    start = node
    previous = node.prev_sibling
    while previous is not None and previous.type == "comment" and \
            previous.end_point[0] + 1 >= start.start_point[0] and \
            previous.end_point[0] < start.start_point[0]:
        start = previous
        previous = previous.prev_sibling
    return start


def trailing_comments_end(node: Node) -> Node:
    """The last comment on the same line right after *node*, or *node*."""
    end = node
    following = node.next_sibling
    while following is not None and following.type == "comment" and \
            following.start_point[0] == end.end_point[0]:
        end = following
        following = following.next_sibling
    return end


def block_indent(parsed: ParsedFile, node: Node) -> str:
    """The indentation statements of *node*'s block have (or should have)."""
    line_start = parsed.line_start(node.start_byte)
    if _only_space(parsed.source[line_start:node.start_byte]):
        return parsed.indent_of(node)
    return parsed.indent_of(node) + "\t"


def replace_statements(parsed: ParsedFile, first: Node, last: Node, code: str,
                       why: str = "") -> Edit:
    """Replace the statements *first*..*last* (with the comments directly
    above the first and after the last on its line) by *code*, written at
    indentation 0, placed at the statements' own indentation."""
    start_node = leading_comments_start(parsed, first)
    end_node = trailing_comments_end(last)
    indent = block_indent(parsed, first)
    text = format_c(code.rstrip("\n"), indent)
    line_start = parsed.line_start(start_node.start_byte)
    if _only_space(parsed.source[line_start:start_node.start_byte]):
        start = line_start
    else:
        start = start_node.start_byte
        while start > line_start and parsed.source[start - 1:start] in (b" ", b"\t"):
            start -= 1  # no trailing white space left on the line before
        text = "\n" + text
    end_of_line = line_end(parsed, end_node.end_byte)
    rest = parsed.source[end_node.end_byte:end_of_line]
    if _only_space(rest.rstrip(b"\n")):
        end = end_of_line
        text += "\n" if rest.endswith(b"\n") else ""
    else:
        end = end_node.end_byte
        text += "\n" + parsed.indent_of(first)
        # what followed on the line now starts its own line
        while end < len(parsed.source) and parsed.source[end:end + 1] in b" \t":
            end += 1
    return Edit(parsed.path, start, end, text, why)


def insert_after(parsed: ParsedFile, node: Node, code: str, why: str = "") -> Edit:
    """Insert *code* as a paragraph of its own after *node*'s line."""
    position = line_end(parsed, node.end_byte)
    text = "\n" + format_c(code.rstrip("\n"), block_indent(parsed, node)) + "\n"
    if not parsed.source[position:].startswith(b"\n"):
        text += "\n"
    return Edit(parsed.path, position, position, text, why)


def insert_before(parsed: ParsedFile, node: Node, code: str, why: str = "") -> Edit:
    """Insert *code*, then a blank line, above *node* and its comments."""
    start = leading_comments_start(parsed, node)
    position = parsed.line_start(start.start_byte)
    text = format_c(code.rstrip("\n"), parsed.indent_of(start)) + "\n\n"
    return Edit(parsed.path, position, position, text, why)


def append_to_file(parsed: ParsedFile, code: str, why: str = "") -> Edit:
    end = len(parsed.source)
    separator = "\n" if parsed.source.endswith(b"\n") else "\n\n"
    return Edit(parsed.path, end, end, separator + code.rstrip("\n") + "\n", why)


def continue_after(parsed: ParsedFile, node: Node, code: str, why: str = "") -> Edit:
    """Continue *node*'s last line with *code* (`} else if (...) {`): the
    first line follows on the same line, the others at *node*'s line's
    indentation."""
    indent = parsed.indent_of(node)
    lines = code.rstrip("\n").split("\n")
    text = " " + lines[0] + "".join(
        "\n" + (indent + line if line.strip() else line) for line in lines[1:])
    return Edit(parsed.path, node.end_byte, node.end_byte, format_c(text, ""), why)


def insert_line_before(parsed: ParsedFile, node: Node, code: str, blank: bool = False,
                       why: str = "") -> Edit:
    """Insert *code* (one statement) on its own line above *node*, at its
    indentation; *blank* leaves an empty line between the two."""
    position = parsed.line_start(node.start_byte)
    text = format_c(code.rstrip("\n"), block_indent(parsed, node)) + "\n"
    if blank:
        text += "\n"
    return Edit(parsed.path, position, position, text, why)


def insert_before_statement(parsed: ParsedFile, node: Node, code: str,
                            why: str = "") -> Edit:
    """Insert *code*, then a blank line, above the statement *node* and the
    comments directly above it, at the statement's indentation."""
    start = leading_comments_start(parsed, node)
    position = parsed.line_start(start.start_byte)
    text = format_c(code.rstrip("\n"), block_indent(parsed, node)) + "\n\n"
    return Edit(parsed.path, position, position, text, why)


def insert_before_last_endif(parsed: ParsedFile, code: str, why: str = "") -> Edit:
    """Insert *code*, then a blank line, above a header's closing `#endif`
    (its include guard)."""
    position = parsed.source.rfind(b"\n#endif")
    if position < 0:
        from patchgen.infra.errors import BadRule
        raise BadRule(f"{parsed.path} has no closing #endif to insert before")
    position += 1
    text = format_c(code.rstrip("\n"), "") + "\n\n"
    return Edit(parsed.path, position, position, text, why)
