"""Rule ifnullfree: no NULL test before a freeing function that accepts NULL.

`if (E) kfree(E);` -> `kfree(E);` for the freeing functions of the
kernel's scripts/coccinelle/free/ifnullfree.cocci (Linux 6.1): kfree,
kvfree, kfree_sensitive, kvfree_sensitive, vfree, debugfs_remove,
debugfs_remove_recursive, usb_free_urb, kmem_cache_destroy,
mempool_destroy, dma_pool_destroy -- each only when the tree at hand shows
that it accepts NULL (nullsafe.py), and the commit message cites where.

E is the same pure expression in the test and the call (a name, a field,
an array element, `*p`: no calls, ++/--, or assignments).  The test is
`E`, `E != NULL` or `NULL != E`.  Reported, not rewritten: an if with an
else branch or that is itself an else branch, more than the free in its
body, a comment in it or about the test above it, a test with side
effects or a branch hint (likely()/unlikely(): the author marked a fast
path), other code on its lines.

The scan's plan holds every rewrite as a byte range of the file it read;
the steps only check that the file is still those bytes and cut.  One
patch per driver (the folder of the files, named by the subject prefix
the folder's history uses, else by its path), one series per MAINTAINERS
section, at most MAX_PATCHES patches a series.
"""

import hashlib
import re
from dataclasses import dataclass
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Mapping

from tree_sitter import Node

from patchgen.engine.edits import Edit, apply_edits
from patchgen.engine.history import subject_prefix
from patchgen.engine.parse import (ParsedFile, call_args, call_name,
                                   enclosing_function, has_error, if_parts, normalized,
                                   parse, strip_parens, unwrap_block, walk)
from patchgen.engine.splice import line_end
from patchgen.engine.sources import FileSource, makefile_version, version_text
from patchgen.infra.errors import BadRule
from patchgen.engine.rule import (NO_MATCH, REWRITE, Finding, Report, Rule, SeriesPart,
                                  Step, StepResult)
from patchgen.rules.ifnullfree.maintainers import section_of
from patchgen.rules.ifnullfree.nullsafe import FREE_FUNCTIONS, Proof, binary, prove

RULE_ID = "ifnullfree"
TEMPLATE_FOLDER = str(Path(__file__).resolve().parent / "templates")
PATCH_TEMPLATE = f"{RULE_ID}/patch.msg.j2"
COVER_TEMPLATE = f"{RULE_ID}/cover.msg.j2"
MAX_PATCHES = 15
MAX_SUBJECT = 75

# A site's free call comes right after the `)` of an if's test (or its
# `{`), with at most a comment between: only files with that shape are
# parsed, and only the ifs around those calls are looked at.  (An if whose
# free comes after other statements is not found; spatch does not find it
# either, and the rule would only report it.)
_FREE_CALL = re.compile(rb"\b(" + b"|".join(n.encode() for n in FREE_FUNCTIONS)
                        + rb")\s*\(")
_SPACE = b" \t\r\n\f\v"


def _after_if_test(data: bytes, position: int) -> bytes | None:
    """The test of the if whose `)` (or `{`, or a comment after either) the
    bytes before *position* end with, or None."""
    end = len(data[:position].rstrip(_SPACE))
    if data[end - 2:end] == b"*/":
        opening = data.rfind(b"/*", 0, end - 2)
        if opening < 0:
            return None
        end = len(data[:opening].rstrip(_SPACE))
    if data[end - 1:end] == b"{":
        end = len(data[:end - 1].rstrip(_SPACE))
    if data[end - 1:end] != b")":
        return None
    depth, index, floor = 0, end - 1, max(0, end - 2000)
    while index >= floor:
        char = data[index]
        if char == 0x29:            # )
            depth += 1
        elif char == 0x28:          # (
            depth -= 1
            if depth == 0:
                break
        index -= 1
    else:
        return None
    head = data[max(0, index - 64):index].rstrip(_SPACE)
    if head.endswith(b"if") and (len(head) == 2 or not (
            chr(head[-3]).isalnum() or head[-3] == 0x5f)):
        return data[index + 1:end - 1]
    return None


_WHITE = re.compile(rb"\s+")
_HINT_OR_NULL = re.compile(rb"^(?:likely|unlikely)\((.*)\)$|^(.*)!=NULL$|^NULL!=(.*)$", re.S)


def _same_text(test: bytes, data: bytes, call_end: int) -> bool:
    """A cheap first look: the test, without spaces, `!= NULL` or a branch
    hint, is the text the call's first argument starts with."""
    test = _WHITE.sub(b"", test)
    while test.startswith(b"(") and test.endswith(b")"):
        test = test[1:-1]
    match = _HINT_OR_NULL.match(test)
    if match:
        test = next(g for g in match.groups() if g is not None)
    argument = _WHITE.sub(b"", data[call_end:call_end + len(test) * 2 + 64])
    return bool(test) and argument.startswith(test) and \
        argument[len(test):len(test) + 1] in (b")", b",")


def free_calls_after_tests(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of each freeing function's name right after an if
    test that is (textually) the call's first argument."""
    found = []
    for match in _FREE_CALL.finditer(data):
        test = _after_if_test(data, match.start())
        if test is not None and _same_text(test, data, match.end()):
            found.append((match.start(1), match.end(1)))
    return found
# Node types an expression may be built of and still be pure.
_PURE = {"identifier", "field_expression", "subscript_expression",
         "pointer_expression", "parenthesized_expression", "number_literal",
         "field_identifier", "char_literal", "sizeof_expression"}
_EFFECTS = {"call_expression", "update_expression", "assignment_expression",
            "comma_expression"}
# A comment above the test that talks about it (or about NULL).
_ABOUT_TEST = re.compile(r"\b(null|check|test|only|if|whether|exist|alloc|set)\b", re.I)


# --- sites ---------------------------------------------------------------------

@dataclass(frozen=True)
class Site:
    """One `if (E) free(E, ...);` and what the rule does about it."""

    path: str
    line: int              # of the if
    call_line: int         # of the free call (what spatch reports)
    function: str | None
    free: str              # the freeing function
    expression: str        # E, as written
    action: str            # "rewrite" or "report"
    reason: str
    start: int = 0         # the byte range the rewrite replaces ...
    end: int = 0
    text: str = ""         # ... and by what


def _tested(condition: Node) -> tuple[Node | None, str | None]:
    """(E, hint) for a test `E`, `E != NULL`, `NULL != E`, likely(E)..."""
    node = strip_parens(condition)
    hint = None
    name = call_name(node)
    if name in ("likely", "unlikely") and len(call_args(node)) == 1:
        hint, node = name, strip_parens(call_args(node)[0])
    parts = binary(node)
    if parts is not None and parts[0] == "!=":
        _, left, right = parts
        if normalized(right) == "NULL":
            return strip_parens(left), hint
        if normalized(left) == "NULL":
            return strip_parens(right), hint
        return None, hint
    if node.type in ("unary_expression", "binary_expression"):
        return None, hint           # !E, E == x, a && b: not a NULL test of E
    return node, hint


def _free_call(statement: Node, expression: str) -> Node | None:
    if statement.type != "expression_statement" or not statement.named_children:
        return None
    call = statement.named_children[0]
    name = call_name(call)
    args = call_args(call) if name in FREE_FUNCTIONS else []
    if not args or normalized(args[0]) != expression:
        return None
    if (name == "kvfree_sensitive") != (len(args) == 2) or len(args) > 2:
        return None
    return call


def _impure(node: Node) -> str | None:
    """Why *node* is not a pure expression, or None."""
    for inner in walk(node):
        if inner.type in _EFFECTS:
            return "has side effects (a call, ++/--, an assignment)"
    for inner in walk(node):
        if inner.is_named and inner.type not in _PURE and inner.type != "comment":
            return f"is not a plain expression ({inner.type})"
    return None


def _comment_above(parsed: ParsedFile, node: Node) -> str | None:
    previous = node.prev_sibling
    if previous is not None and previous.type == "comment" and \
            previous.end_point[0] + 1 == node.start_point[0]:
        text = parsed.text(previous)
        if _ABOUT_TEST.search(text):
            return text
    return None


def _classify(parsed: ParsedFile, statement: Node) -> Site | None:
    condition, consequence, alternative = if_parts(statement)
    if condition is None or consequence is None:
        return None
    tested, hint = _tested(condition)
    if tested is None:
        return None
    expression = normalized(tested)
    body = unwrap_block(consequence)
    calls = [c for c in (_free_call(s, expression) for s in body) if c is not None]
    if not calls:
        return None
    call = calls[0]
    free = call_name(call) or ""
    function = enclosing_function(parsed, statement)

    def site(action: str, reason: str, **cut) -> Site:
        return Site(parsed.path, parsed.line(statement), parsed.line(call),
                    function.name if function else None, free,
                    " ".join(parsed.text(tested).split()), action, reason, **cut)

    if alternative is not None:
        return site("report", "the if has an else branch")
    if statement.parent is not None and statement.parent.type == "else_clause":
        return site("report", "the if is the else branch of another if: "
                    "dropping the test would change the shape of the if-else chain")
    if len(body) > 1:
        return site("report", f"the if does more than {free}() under the test")
    impure = _impure(tested) or next(
        (why for why in map(_impure, call_args(call)[1:]) if why), None)
    if impure:
        return site("report", f"the tested expression {impure}")
    if hint:
        return site("report", f"the test has a branch hint ({hint}()): the author "
                    "marked a fast path")
    if any(True for _ in walk(statement, "comment")):
        return site("report", "a comment inside the if")
    if _comment_above(parsed, statement):
        return site("report", "the comment above may be about the test")
    if has_error(statement) or any(n.type.startswith("preproc")
                                   for n in walk(statement)):
        return site("report", "the if does not parse cleanly (a macro or #if in it)")
    start = parsed.line_start(statement.start_byte)
    end = line_end(parsed, statement.end_byte)
    before = parsed.source[start:statement.start_byte]
    after = parsed.source[statement.end_byte:end]
    if before.strip(b" \t") or after.strip():
        return site("report", "other code shares the lines of the if")
    call_text = parsed.text(call)
    if "\n" in call_text:
        return site("report", f"the {free}() call spans lines")
    text = parsed.indent_of(statement) + call_text + ";\n"
    return site("rewrite", f"{free}() accepts NULL: the test is not needed",
                start=start, end=end, text=text)


def _if_around(root: Node, start: int, end: int) -> Node | None:
    """The if statement whose body starts with the free call at
    *start*..*end* (the bytes of its name)."""
    node = root.descendant_for_byte_range(start, end)
    while node is not None and node.type != "call_expression":
        node = node.parent
    if node is None or node.parent is None or node.parent.type != "expression_statement":
        return None
    statement = node.parent
    parent = statement.parent
    if parent is not None and parent.type == "compound_statement":
        parent = parent.parent
    return parent if parent is not None and parent.type == "if_statement" else None


def find_sites(parsed: ParsedFile) -> list[Site]:
    """Every NULL test before a freeing function of the same expression."""
    found, seen = [], set()
    for start, end in free_calls_after_tests(parsed.source):
        statement = _if_around(parsed.root, start, end)
        if statement is None or statement.start_byte in seen:
            continue
        seen.add(statement.start_byte)
        site = _classify(parsed, statement)
        if site is not None:
            found.append(site)
    return found


# --- the plan ------------------------------------------------------------------

@dataclass(frozen=True)
class FilePlan:
    path: str
    digest: str                 # sha1 of the bytes the sites were found in
    sites: tuple[Site, ...]


@dataclass(frozen=True)
class PatchPlan:
    """One patch: the files of one driver (folder)."""

    folder: str
    prefix: str                 # "drm/amdgpu"
    subject: str
    files: tuple[FilePlan, ...]
    frees: tuple[str, ...]      # the freeing functions it touches
    section: str                # the MAINTAINERS section, or the folder


@dataclass(frozen=True)
class Plan:
    """What scan found, in the shape the steps use (Report.plan)."""

    patches: tuple[PatchPlan, ...]
    proofs: dict                 # freeing function -> Proof
    sites: tuple[Site, ...] = ()  # every site found, rewritten or reported


def plan_of(report: Report) -> Plan:
    """The plan this rule's scan put in *report*."""
    if not isinstance(report.plan, Plan):
        raise BadRule(f"the report of {report.rule} carries no ifnullfree plan: "
                      "steps need the Report that ifnullfree's scan made")
    return report.plan


def _digest(data: bytes) -> str:
    return hashlib.sha1(data).hexdigest()


def path_prefix(folder: str) -> str:
    """A subject prefix from a path: drivers/net/ethernet/intel/e1000 ->
    "net: e1000", drivers/gpu/drm/tiny -> "drm/tiny", fs/ext4 -> "ext4"."""
    parts = [p for p in PurePosixPath(folder).parts if p != "drivers"]
    if not parts:
        return "treewide"
    if parts[:2] == ["gpu", "drm"] and len(parts) > 2:
        return "/".join(parts[1:])           # drm/amd/display, drm/tegra
    if parts[0] in ("fs", "kernel", "lib") and len(parts) > 1:
        return parts[-1] if parts[0] == "fs" else "/".join(parts)
    if len(parts) == 1:
        return parts[0]
    return f"{parts[0]}: {parts[-1]}"


def driver_of(maintainers: str | None, path: str) -> tuple[str, str]:
    """(driver folder, MAINTAINERS section) of *path*: the folder of its
    section when that section is one driver's (a folder four levels deep
    or more, drivers/gpu/drm/tegra/), else the file's own folder."""
    folder = str(PurePosixPath(path).parent)
    found = section_of(maintainers, path) if maintainers else None
    if found is None:
        return folder, folder
    title, pattern = found
    if pattern.endswith("/") and not any(c in pattern for c in "*?") and \
            pattern.count("/") >= 4 and path.startswith(pattern):
        return pattern.rstrip("/"), title
    return folder, title


def _names(frees: tuple[str, ...]) -> str:
    named = [f"{f}()" for f in frees]
    if len(named) == 1:
        return named[0]
    return ", ".join(named[:-1]) + " and " + named[-1]


def _subject(prefix: str, frees: tuple[str, ...], count: int) -> str:
    checks = "check" if count == 1 else "checks"
    for ending in (_names(frees), "freeing functions"):
        subject = f"{prefix}: remove unneeded NULL {checks} before {ending}"
        if len(subject) <= MAX_SUBJECT:
            return subject
    return f"{prefix}: remove unneeded NULL {checks} before free"


def _plan(source: FileSource, sites: list[Site], data: dict[str, bytes],
          proofs: dict) -> Plan:
    maintainers = source.read("MAINTAINERS").decode("utf-8", "replace") \
        if source.exists("MAINTAINERS") else None
    by_folder: dict[str, list[Site]] = {}
    sections: dict[str, str] = {}
    for site in sites:
        if site.action == "rewrite":
            folder, section = driver_of(maintainers, site.path)
            by_folder.setdefault(folder, []).append(site)
            sections[folder] = section
    # One patch per driver: folders whose history names them the same
    # ("drm/amd/display" for dc/ and its subfolders) are one patch.
    by_prefix: dict[str, list[str]] = {}
    for folder in sorted(by_folder):
        prefix = subject_prefix(source, folder) or path_prefix(folder)
        by_prefix.setdefault(prefix, []).append(folder)
    patches = []
    for prefix, folders in sorted(by_prefix.items(), key=lambda i: i[1][0]):
        folder_sites = [s for f in folders for s in by_folder[f]]
        files = []
        for path in sorted({s.path for s in folder_sites}):
            file_sites = tuple(s for s in folder_sites if s.path == path)
            files.append(FilePlan(path, _digest(data[path]), file_sites))
        frees = tuple(sorted({s.free for s in folder_sites}))
        patches.append(PatchPlan(folders[0], prefix,
                                 _subject(prefix, frees, len(folder_sites)),
                                 tuple(files), frees, sections[folders[0]]))
    return Plan(tuple(patches), proofs, tuple(sites))


# --- scan ----------------------------------------------------------------------

def scan(source: FileSource) -> Report:
    proofs: dict[str, Proof | None] = {}
    sites: list[Site] = []
    data: dict[str, bytes] = {}
    for path in source.files_containing(FREE_FUNCTIONS, (".c", ".h")):
        content = source.read(path)
        if not free_calls_after_tests(content):
            continue
        found = find_sites(parse(content, path))
        if found:
            data[path] = content
            sites += found
    checked = []
    for site in sites:
        if site.action == "rewrite" and prove(source, site.free, proofs) is None:
            site = Site(site.path, site.line, site.call_line, site.function,
                        site.free, site.expression, "report",
                        f"this tree does not show that {site.free}() accepts NULL "
                        "(its definition was not found in the expected shape)")
        checked.append(site)
    plan = _plan(source, checked, data, proofs)
    findings = tuple(
        Finding("if-null-free" if s.action == "rewrite" else "related-site",
                s.path, s.line, s.function, None, s.action,
                f"if ({s.expression}) {s.free}(): {s.reason}") for s in checked)
    rewrites = sum(1 for s in checked if s.action == "rewrite")
    reported = len(checked) - rewrites
    steps = tuple(p.subject for p in plan.patches)
    if rewrites:
        series = len({p.section for p in plan.patches})
        summary = (f"{rewrites} NULL tests before freeing functions can go, in "
                   f"{len(plan.patches)} patches for {series} maintainer "
                   f"sections; {reported} more sites are reported only.")
        verdict = REWRITE
    else:
        summary = (f"no NULL test before a freeing function to remove"
                   + (f"; {reported} sites are reported only." if reported else "."))
        verdict = NO_MATCH
    return Report(RULE_ID, source.label, version_text(makefile_version(source)),
                  verdict, summary, {}, findings, steps, plan=plan)


# --- steps ---------------------------------------------------------------------

def make_patch(patch: PatchPlan, source: FileSource, report: Report) -> StepResult:
    """Cut the plan's byte ranges; the files must be the bytes scan read."""
    edits = []
    for file in patch.files:
        data = source.read(file.path)
        if _digest(data) != file.digest:
            raise BadRule(f"{file.path} changed between the scan and this step: "
                          "the plan's byte ranges no longer hold")
        for site in file.sites:
            edits.append(Edit(file.path, site.start, site.end, site.text,
                              f"{site.free}() after a NULL test, line {site.line}"))
    plan = plan_of(report)
    proofs = [plan.proofs[f] for f in patch.frees]
    sites = [s for f in patch.files for s in f.sites]
    return StepResult(tuple(edits), {
        "proofs": [p.for_message() for p in proofs],
        "frees": _names(patch.frees),
        "count": len(sites),
        "sites": [_site_line(patch.folder, s) for s in sites],
        "folder": patch.folder,
    })


def _site_line(folder: str, site: Site) -> str:
    path = site.path[len(folder) + 1:] if site.path.startswith(folder + "/") else site.path
    where = f"{path}: {site.function}()" if site.function else path
    return f"{where}: {site.expression}" if len(where) + len(site.expression) < 68 \
        else where


def _step(patch: PatchPlan) -> Step:
    return Step(f"ifnullfree-{patch.folder}", patch.subject, PATCH_TEMPLATE,
                partial(make_patch, patch))


def steps_for(report: Report) -> list[Step]:
    return [_step(p) for p in plan_of(report).patches]


def slug(text: str) -> str:
    words = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return words[:48].rstrip("-") or "misc"


def split(report: Report) -> list[SeriesPart]:
    """One series per MAINTAINERS section, at most MAX_PATCHES patches."""
    plan = plan_of(report)
    by_section: dict[str, list[PatchPlan]] = {}
    for patch in plan.patches:
        by_section.setdefault(patch.section, []).append(patch)
    parts = []
    for section in sorted(by_section):
        patches = by_section[section]
        chunks = [patches[i:i + MAX_PATCHES] for i in range(0, len(patches), MAX_PATCHES)]
        for number, chunk in enumerate(chunks, 1):
            key = slug(section) + (f"-{number}" if len(chunks) > 1 else "")
            parts.append(SeriesPart(key, section, tuple(_step(p) for p in chunk)))
    return parts


def match_snippet(source: bytes, name: str) -> list[Mapping[str, object]]:
    """The sites of one C file as their facts, for patchgen rule-test."""
    return [{"action": site.action, "free": site.free, "expr": site.expression,
             "function": site.function, "line": site.line}
            for site in find_sites(parse(source, name))]


def rewrite_snippet(source: bytes, name: str) -> bytes:
    """One C file after the rule's rewrites, for patchgen rule-test."""
    return apply_edits(source, [Edit(name, site.start, site.end, site.text)
                                for site in find_sites(parse(source, name))
                                if site.action == "rewrite"])


RULE = Rule(
    id=RULE_ID,
    title="remove NULL tests before freeing functions that accept NULL",
    default_branch=RULE_ID,
    scan=scan,
    steps=steps_for,
    templates=(PATCH_TEMPLATE, COVER_TEMPLATE),
    site_words=FREE_FUNCTIONS,
    cover_template=COVER_TEMPLATE,
    split=split,
    template_folder=TEMPLATE_FOLDER,
    match=match_snippet,
    rewrite_snippet=rewrite_snippet,
)
