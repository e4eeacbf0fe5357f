"""Which freeing functions accept NULL, as the tree at hand shows it.

A commit that drops `if (p)` before kfree(p) must say why that is safe,
and say it of the tree it is for: this module reads each freeing
function's definition in the tree and finds the proof there -- an early
return on a NULL test, a body that does everything under a non-NULL test,
a delegation to other functions that accept NULL, a macro for one -- and
the function's kernel-doc sentence about NULL.  A function with no proof
in the tree is not trusted: its sites are reported, not rewritten.
"""

import re
from dataclasses import dataclass

from tree_sitter import Node

from patchgen.engine.parse import (ParsedFile, call_args, call_name, find_function,
                                   if_parts, normalized, parse, statements,
                                   strip_parens, unwrap_block, walk)
from patchgen.engine.sources import FileSource

# Where each freeing function of scripts/coccinelle/free/ifnullfree.cocci
# (Linux 6.1) is defined; the first file that defines it is read.
DEFINED_IN: dict[str, tuple[str, ...]] = {
    "kfree": ("mm/slab_common.c", "mm/slab.c", "mm/slub.c", "mm/slob.c"),
    "kvfree": ("mm/util.c",),
    "kfree_sensitive": ("mm/slab_common.c", "mm/util.c"),
    "kvfree_sensitive": ("mm/util.c",),
    "vfree": ("mm/vmalloc.c", "mm/nommu.c"),
    "debugfs_remove": ("fs/debugfs/inode.c",),
    "debugfs_remove_recursive": ("include/linux/debugfs.h", "fs/debugfs/inode.c"),
    "usb_free_urb": ("drivers/usb/core/urb.c",),
    "kmem_cache_destroy": ("mm/slab_common.c",),
    "mempool_destroy": ("mm/mempool.c",),
    "dma_pool_destroy": ("mm/dmapool.c",),
}
FREE_FUNCTIONS = tuple(DEFINED_IN)

DOC_SAYS = re.compile(r"no operation|does nothing|nothing (?:will be|is) done|"
                      r"may be NULL|is a no-?op", re.I)


@dataclass(frozen=True)
class Proof:
    """Why *function* accepts NULL, in this tree."""

    function: str
    path: str
    code: str | None       # e.g. "returns early on `if (unlikely(...))`"
    doc: str | None        # the kernel-doc sentence, e.g. "If @object is NULL, ..."

    def for_message(self) -> dict:
        """What a commit message says: *lead* (ending with ":" when the
        code line follows), *code* (one line of C or None), *doc*."""
        if self.code:
            lead, _, code = self.code.partition(": `")
            return {"lead": f"{self.function}() in {self.path} {lead}"
                            + (":" if code else ""),
                    "code": code.rstrip("`") or None,
                    "doc": (f'Its kernel-doc says: "{self.doc}"' if self.doc else None)}
        return {"lead": f'The kernel-doc of {self.function}() in {self.path} says: '
                        f'"{self.doc}"', "code": None, "doc": None}

    def sentence(self) -> str:
        """The same in one line (scan output, tests)."""
        told = self.for_message()
        parts = [told["lead"] + (f" `{told['code']}`" if told["code"] else "")]
        if told["doc"]:
            parts.append(told["doc"])
        return " ".join(parts)


def binary(node: Node) -> tuple[str, Node, Node] | None:
    """(operator, left, right) of a binary expression, or None."""
    if node.type != "binary_expression":
        return None
    op = node.child_by_field_name("operator")
    left, right = node.child_by_field_name("left"), node.child_by_field_name("right")
    if op is None or left is None or right is None:
        return None
    return op.type, left, right


def _null_test(node: Node, pointer: str) -> bool:
    """*node* is true when *pointer* is NULL: `!p`, `p == NULL`,
    `ZERO_OR_NULL_PTR(p)`, `IS_ERR_OR_NULL(p)`, in unlikely() or an ||."""
    node = strip_parens(node)
    parts = binary(node)
    if parts is not None:
        op, left, right = parts
        if op == "||":
            return _null_test(left, pointer) or _null_test(right, pointer)
        if op == "==":
            sides = {normalized(left), normalized(right)}
            return sides == {pointer, "NULL"}
        return False
    if node.type == "unary_expression" and normalized(node) == "!" + pointer:
        return True
    name = call_name(node)
    args = call_args(node) if name else []
    if name in ("unlikely", "likely") and len(args) == 1:
        return _null_test(args[0], pointer)
    if name in ("ZERO_OR_NULL_PTR", "IS_ERR_OR_NULL") and len(args) == 1:
        return normalized(args[0]) == pointer
    return False


def _non_null_test(node: Node, pointer: str) -> bool:
    """*node* is false when *pointer* is NULL: `p`, `p != NULL`,
    `!ZERO_OR_NULL_PTR(p)`, in likely()."""
    node = strip_parens(node)
    if normalized(node) == pointer:
        return True
    parts = binary(node)
    if parts is not None:
        op, left, right = parts
        if op == "!=":
            return {normalized(left), normalized(right)} == {pointer, "NULL"}
        if op == "&&":
            return _non_null_test(left, pointer) or _non_null_test(right, pointer)
        return False
    first = node.child(0)
    if node.type == "unary_expression" and first is not None and first.type == "!" \
            and node.named_children:
        return _null_test(node.named_children[0], pointer)
    name = call_name(node)
    args = call_args(node) if name else []
    if name in ("likely", "unlikely") and len(args) == 1:
        return _non_null_test(args[0], pointer)
    return False


def _first_parameter(parsed: ParsedFile, function) -> str | None:
    declarator = function.node.child_by_field_name("declarator")
    for node in walk(declarator, "parameter_list"):
        for parameter in node.named_children:
            if parameter.type != "parameter_declaration":
                continue
            names = [n for n in walk(parameter, "identifier")]
            declarator = parameter.child_by_field_name("declarator")
            if declarator is not None:
                names = [n for n in walk(declarator, "identifier")]
            return parsed.text(names[-1]) if names else None
        return None
    return None


def _condition_text(parsed: ParsedFile, statement: Node) -> str:
    condition, _, _ = if_parts(statement)
    return "if " + " ".join(parsed.text(condition).split())


def _code_proof(parsed: ParsedFile, function, proofs: dict, source: FileSource,
                depth: int) -> str | None:
    pointer = _first_parameter(parsed, function)
    if pointer is None:
        return None
    body = [s for s in statements(function.body) if s.type != "declaration"]
    for statement in body:
        if statement.type == "if_statement":
            condition, consequence, alternative = if_parts(statement)
            inner = unwrap_block(consequence)
            if alternative is None and len(inner) == 1 and \
                    inner[0].type == "return_statement" and \
                    _null_test(condition, pointer):
                return (f"returns early when {pointer} is NULL: "
                        f"`{_condition_text(parsed, statement)}`")
        # The pointer used before any test: not this shape.
        if re.search(rf"\b{re.escape(pointer)}\s*->|\*\s*{re.escape(pointer)}\b",
                     parsed.text(statement)):
            break
    if len(body) == 1 and body[0].type == "if_statement":
        condition, consequence, alternative = if_parts(body[0])
        if alternative is None and _non_null_test(condition, pointer):
            return (f"does all its work under "
                    f"`{_condition_text(parsed, body[0])}`")
        if alternative is not None:
            branches = [unwrap_block(consequence), unwrap_block(alternative)]
            names = []
            for branch in branches:
                if len(branch) != 1 or branch[0].type != "expression_statement":
                    return None
                call = branch[0].named_children[0] if branch[0].named_children else None
                name = call_name(call) if call is not None else None
                args = call_args(call) if call is not None and name else []
                if name is None or not args or normalized(args[0]) != pointer or \
                        prove(source, name, proofs, depth + 1) is None:
                    return None
                names.append(f"{name}()")
            return f"hands {pointer} to {' or '.join(names)}, which accept NULL"
    return None


def _kernel_doc(parsed: ParsedFile, function) -> str | None:
    previous = function.node.prev_sibling
    if previous is None or previous.type != "comment" or \
            not parsed.text(previous).startswith("/**"):
        return None
    lines = [line.strip().lstrip("*").strip()
             for line in parsed.text(previous).strip("/*").splitlines()]
    # "@p: the object, may be NULL" is one unit; the rest is paragraphs
    # of sentences (the name line "kfree - ..." is a paragraph of its own).
    units: list[str] = []
    paragraph: list[str] = []
    for line in lines + [""]:
        if line.startswith("@") or not line or re.match(r"\w+ - ", line):
            units += re.split(r"(?<=\.)\s+", " ".join(paragraph))
            paragraph = []
            if line.startswith("@"):
                units.append(line)
                continue
        if line:
            paragraph.append(line)
    for unit in units:
        if "NULL" in unit and DOC_SAYS.search(unit) and not re.match(r"\w+ - ", unit):
            return " ".join(unit.split())
    return None


def prove(source: FileSource, name: str, proofs: dict | None = None,
          depth: int = 0) -> Proof | None:
    """Why *name* accepts NULL in *source*, or None if the tree does not
    show it.  *proofs* caches answers (and None) by name."""
    proofs = {} if proofs is None else proofs
    if name in proofs:
        return proofs[name]
    proofs[name] = None            # no cycles
    if depth > 3 or name not in DEFINED_IN:
        return None
    for path in DEFINED_IN[name]:
        if not source.exists(path):
            continue
        data = source.read(path)
        macro = re.search(rb"^#define\s+" + re.escape(name.encode()) +
                          rb"\s+(\w+)\s*$", data, re.M)
        if macro:
            target = macro.group(1).decode()
            inner = prove(source, target, proofs, depth + 1)
            if inner is not None:
                proofs[name] = Proof(name, path,
                                     f"is a macro for {target}(), which "
                                     + (inner.code or "accepts NULL")
                                     + f" ({inner.path})", inner.doc)
                return proofs[name]
            continue
        if f"{name}(".encode() not in data:
            continue
        parsed = parse(data, path)
        function = find_function(parsed, name)
        if function is None:
            continue
        code = _code_proof(parsed, function, proofs, source, depth)
        doc = _kernel_doc(parsed, function)
        if code is None and doc is None:
            continue
        proofs[name] = Proof(name, path, code, doc)
        return proofs[name]
    return None
