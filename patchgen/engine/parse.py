"""Parse kernel C with tree-sitter, and the node helpers rules match with.

Kernel files parse with local ERROR nodes around macros (a function
declared `static ICE_noinline int f(...)`, `list_for_each_entry(...) {`);
the statements inside such a function still parse, so helpers here work
on whatever function-shaped node the grammar recovered, and rules decide
per site whether its own statements are clean (has_error()).
"""

from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Iterator

import tree_sitter_c
from tree_sitter import Language, Node, Parser, Tree

C_LANGUAGE = Language(tree_sitter_c.language())


@lru_cache(maxsize=1)
def _parser() -> Parser:
    return Parser(C_LANGUAGE)


@dataclass(frozen=True, eq=False)
class ParsedFile:
    """One file's bytes and its syntax tree."""

    path: str
    source: bytes
    tree: Tree = field(repr=False)

    @property
    def root(self) -> Node:
        return self.tree.root_node

    def text(self, node: Node) -> str:
        return self.source[node.start_byte:node.end_byte].decode("utf-8", "replace")

    def line(self, node: Node) -> int:
        """1-based line number of *node*'s first character."""
        return node.start_point[0] + 1

    def line_start(self, offset: int) -> int:
        """Byte offset of the start of the line holding *offset*."""
        return self.source.rfind(b"\n", 0, offset) + 1

    def indent_of(self, node: Node) -> str:
        """The leading white space of *node*'s first line."""
        start = self.line_start(node.start_byte)
        line = self.source[start:node.start_byte]
        return line[:len(line) - len(line.lstrip())].decode("utf-8", "replace")

    def error_count(self) -> int:
        return count_errors(self.root)


_parsed: "OrderedDict[tuple[str, bytes], ParsedFile]" = OrderedDict()


def parse(source: bytes, path: str = "<memory>") -> ParsedFile:
    """The syntax tree of *source*.  The last few parses are kept: check
    reviews every commit of a series, and most files are the same bytes
    from one commit to the next."""
    key = (path, source)
    if key in _parsed:
        _parsed.move_to_end(key)
        return _parsed[key]
    parsed = ParsedFile(path, source, _parser().parse(source))
    _parsed[key] = parsed
    if len(_parsed) > 64:
        _parsed.popitem(last=False)
    return parsed


def node_text(node: Node) -> str:
    """A node's source text; bytes that are not UTF-8 (a Latin-1 comment in
    an old file) never stop a scan."""
    return (node.text or b"").decode("utf-8", "replace")


def child_field(node: Node, name: str) -> Node:
    """The child of *node* in the field *name*, which the grammar always
    gives a node of its type (an if its condition, a binary expression
    its operands)."""
    child = node.child_by_field_name(name)
    assert child is not None, f"a {node.type} without {name}"
    return child


def count_errors(node: Node) -> int:
    """Number of ERROR and MISSING nodes below *node*."""
    if not node.has_error:
        return 0
    count = 1 if (node.is_error or node.is_missing) else 0
    return count + sum(count_errors(child) for child in node.children)


def has_error(node: Node) -> bool:
    return node.has_error


def walk(node: Node, types: str | tuple[str, ...] | None = None) -> Iterator[Node]:
    """Pre-order walk of *node*'s subtree, optionally only nodes of *types*."""
    if isinstance(types, str):
        types = (types,)
    cursor = node.walk()
    visited_children = False
    while True:
        if not visited_children:
            current = cursor.node
            assert current is not None
            if types is None or current.type in types:
                yield current
            if cursor.goto_first_child():
                continue
        if cursor.goto_next_sibling():
            visited_children = False
        elif cursor.goto_parent():
            visited_children = True
            if cursor.node == node:
                return
        else:
            return


def ancestors(node: Node) -> Iterator[Node]:
    parent = node.parent
    while parent is not None:
        yield parent
        parent = parent.parent


# --- calls ----------------------------------------------------------------

def call_name(node: Node) -> str | None:
    """The called function's name, for a call_expression with a plain name."""
    if node.type != "call_expression":
        return None
    function = node.child_by_field_name("function")
    if function is not None and function.type == "identifier":
        return node_text(function)
    return None


def call_args(node: Node) -> list[Node]:
    args = node.child_by_field_name("arguments")
    return [] if args is None else [a for a in args.named_children if a.type != "comment"]


def calls(node: Node, names: set[str] | frozenset[str] | None = None) -> Iterator[Node]:
    """Call expressions below *node* (inclusive), optionally to *names*."""
    for call in walk(node, "call_expression"):
        name = call_name(call)
        if name is not None and (names is None or name in names):
            yield call


def normalized(node: Node) -> str:
    """The node's text with all white space and comments removed, so that
    `page`, `( page )` and `page /* x */` compare equal."""
    parts = []
    for leaf in walk(node):
        if leaf.type == "comment":
            continue
        if leaf.child_count == 0:
            parts.append(node_text(leaf))
    return "".join(parts)


def strip_parens(node: Node) -> Node:
    while node.type == "parenthesized_expression" and node.named_child_count == 1:
        node = node.named_children[0]
    return node


# --- statements -----------------------------------------------------------

def statements(block: Node) -> list[Node]:
    """The statements of a compound statement, without comments and braces."""
    return [c for c in block.named_children if c.type != "comment"]


def unwrap_block(statement: Node) -> list[Node]:
    """A statement as a list: a compound statement gives its statements."""
    if statement.type == "compound_statement":
        return statements(statement)
    return [statement]


def if_parts(node: Node) -> tuple[Node, Node, Node | None]:
    """(condition, consequence, alternative-statement-or-None) of an if."""
    condition = child_field(node, "condition")
    consequence = child_field(node, "consequence")
    alternative = node.child_by_field_name("alternative")
    if alternative is not None and alternative.type == "else_clause":
        inner = [c for c in alternative.named_children if c.type != "comment"]
        alternative = inner[0] if inner else None
    return condition, consequence, alternative


def conjuncts(condition: Node) -> list[Node]:
    """`a && (b && c)` as [a, b, c]; any other expression as [itself]."""
    condition = strip_parens(condition)
    if condition.type == "binary_expression":
        op = condition.child_by_field_name("operator")
        if op is not None and op.type == "&&":
            return (conjuncts(child_field(condition, "left"))
                    + conjuncts(child_field(condition, "right")))
    return [condition]


def comparison(node: Node) -> tuple[str, str, str] | None:
    """(left, operator, right) of an ==/!= comparison, normalised text."""
    node = strip_parens(node)
    if node.type != "binary_expression":
        return None
    op = node.child_by_field_name("operator")
    if op is None or op.type not in ("==", "!="):
        return None
    return (normalized(child_field(node, "left")), op.type,
            normalized(child_field(node, "right")))


def compares(node: Node, constant: str, operator: str = "==") -> bool:
    """True if *node* is `x <operator> constant` or `constant <operator> x`."""
    parts = comparison(node)
    return parts is not None and parts[1] == operator and constant in (parts[0], parts[2])


# --- functions ------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Function:
    """A function definition as far as the grammar recovered it."""

    name: str
    node: Node          # the function_definition (or the node holding the body)
    body: Node          # its compound_statement
    header_clean: bool  # False when the declaration (e.g. ICE_noinline) has errors


def _declarator_name(declarator: Node | None) -> str | None:
    while declarator is not None:
        if declarator.type == "identifier":
            return node_text(declarator)
        if declarator.type == "function_declarator":
            declarator = declarator.child_by_field_name("declarator")
        elif declarator.type in ("pointer_declarator", "parenthesized_declarator",
                                 "attributed_declarator"):
            declarator = declarator.child_by_field_name("declarator") or (
                declarator.named_children[-1] if declarator.named_children else None)
        else:
            return None
    return None


def functions(parsed: ParsedFile) -> Iterator[Function]:
    """Every function definition in the file, including those whose header
    the grammar could only read with an ERROR node."""
    for node in walk(parsed.root, "function_definition"):
        body = node.child_by_field_name("body")
        if body is None:
            continue
        name = _declarator_name(node.child_by_field_name("declarator"))
        if name is None:
            # Recovered headers keep a function_declarator somewhere.
            for declarator in node.children:
                if declarator.type == "function_declarator":
                    name = _declarator_name(declarator)
        if name is None:
            continue
        header_clean = not any(c.has_error for c in node.children if c != body)
        yield Function(name, node, body, header_clean)


def find_function(parsed: ParsedFile, name: str) -> Function | None:
    for function in functions(parsed):
        if function.name == name:
            return function
    return None


def enclosing_function(parsed: ParsedFile, node: Node) -> Function | None:
    """The function whose definition holds *node*, by byte range (the
    recovered tree of a macro-declared function need not nest it)."""
    for function in functions(parsed):
        if function.node.start_byte <= node.start_byte < function.node.end_byte:
            return function
    return None


def declares(parsed: ParsedFile, name: str) -> Node | None:
    """A prototype or definition of function *name* at file level or inside
    preprocessor conditionals (a header's `#ifdef CONFIG_X` blocks)."""
    for node in walk(parsed.root, "function_declarator"):
        if _declarator_name(node) == name:
            return node
    return None
