"""Rule kzalloc-kcalloc: an array allocation through kcalloc(), not kzalloc().

`kzalloc(n * size, gfp)` multiplies without checking for overflow;
`kcalloc(n, size, gfp)` does the same allocation and returns NULL when
n * size overflows (Documentation/process/deprecated.rst, "open-coded
arithmetic in allocator arguments").  The rule rewrites a kzalloc() whose
size argument is a product with exactly one sizeof() factor: the other
factor is the count.  One patch per file.

A third-party rule: it lives in its own package, uses only the Rule API
(patchgen.engine.rule) and patchgen's parser, and is found through the
entry-point group patchgen.rules.
"""

from pathlib import Path

from patchgen.engine.edits import Edit
from patchgen.engine.parse import (call_args, call_name, enclosing_function, parse,
                                   strip_parens, walk)
from patchgen.engine.rule import (NO_MATCH, REVIEW_WARN, REWRITE, Finding, Report, Rule,
                                  Step, StepResult)
from patchgen.engine.sources import makefile_version, version_text

RULE_ID = "kzalloc-kcalloc"
TEMPLATES = f"{RULE_ID}/"
SITE_WORDS = ("kzalloc",)


def _sites(parsed):
    """(call, count, size, function) of each kzalloc(count * sizeof(..), gfp)."""
    found = []
    for call in walk(parsed.root, "call_expression"):
        if call_name(call) != "kzalloc":
            continue
        args = call_args(call)
        if len(args) != 2:
            continue
        product = strip_parens(args[0])
        if product.type != "binary_expression" or \
                product.child_by_field_name("operator").type != "*":
            continue
        left = product.child_by_field_name("left")
        right = product.child_by_field_name("right")
        sizes = [side for side in (left, right) if side.type == "sizeof_expression"]
        if len(sizes) != 1:
            continue
        size = sizes[0]
        count = right if size is left else left
        function = enclosing_function(parsed, call)
        found.append((call, count, size, function.name if function else None))
    return found


def match(source: bytes, name: str) -> list[dict]:
    parsed = parse(source, name)
    return [{"function": function, "count": parsed.text(count), "size": parsed.text(size),
             "line": parsed.line(call), "action": "rewrite"}
            for call, count, size, function in _sites(parsed)]


def _edits(path: str, source: bytes) -> list[Edit]:
    parsed = parse(source, path)
    edits = []
    for call, count, size, _ in _sites(parsed):
        gfp = call_args(call)[1]
        text = f"kcalloc({parsed.text(count)}, {parsed.text(size)}, {parsed.text(gfp)})"
        edits.append(Edit(path, call.start_byte, call.end_byte, text,
                          "kzalloc(n * size) -> kcalloc(n, size)"))
    return edits


def rewrite_snippet(source: bytes, name: str) -> bytes:
    from patchgen.engine.edits import apply_edits
    return apply_edits(source, _edits(name, source))


def _subject(path: str) -> str:
    folder = Path(path).parent.name or "kernel"
    return f"{folder}: {Path(path).stem}: use kcalloc() for an array allocation"


def scan(source) -> Report:
    findings = []
    files = []
    for path in sorted(source.files_containing(SITE_WORDS, (".c",))):
        parsed = parse(source.read(path), path)
        sites = _sites(parsed)
        for call, count, size, function in sites:
            findings.append(Finding("kzalloc-product", path, parsed.line(call), function,
                                    None, "rewrite",
                                    f"kzalloc({parsed.text(count)} * "
                                    f"{parsed.text(size)}) can overflow: kcalloc()"))
        if sites:
            files.append(path)
    version = version_text(makefile_version(source))
    if not files:
        return Report(RULE_ID, source.label, version, NO_MATCH,
                      "no kzalloc() of a count times a sizeof()", {}, tuple(findings))
    return Report(RULE_ID, source.label, version, REWRITE,
                  f"{len(findings)} kzalloc() calls in {len(files)} files become kcalloc()",
                  {}, tuple(findings), tuple(_subject(p) for p in files))


def review(source) -> list[Finding]:
    """What patchgen check reports in each commit: every kzalloc() of a
    product still there (the series resolves them)."""
    found = []
    for path in sorted(source.files_containing(SITE_WORDS, (".c",))):
        parsed = parse(source.read(path), path)
        for call, count, size, function in _sites(parsed):
            found.append(Finding("kzalloc-product", path, parsed.line(call), function,
                                 None, REVIEW_WARN,
                                 f"kzalloc({parsed.text(count)} * {parsed.text(size)}) "
                                 "is not checked for overflow"))
    return found


def _step(path: str) -> Step:
    def make(source, report) -> StepResult:
        parsed = parse(source.read(path), path)
        functions = sorted({f for _, _, _, f in _sites(parsed) if f})
        return StepResult(tuple(_edits(path, source.read(path))),
                          {"path": path, "functions": functions})
    return Step(key=path, subject=_subject(path),
                message_template=TEMPLATES + "patch.msg.j2", make=make)


def steps(report: Report) -> list[Step]:
    paths = sorted({f.path for f in report.findings if f.action == "rewrite"})
    return [_step(path) for path in paths]


RULE = Rule(
    id=RULE_ID,
    title="allocate arrays with kcalloc(n, size), not kzalloc(n * size)",
    default_branch=RULE_ID,
    scan=scan,
    steps=steps,
    templates=(TEMPLATES + "patch.msg.j2",),
    site_words=SITE_WORDS,
    template_folder=str(Path(__file__).resolve().parent / "templates"),
    review=review,
    match=match,
    rewrite_snippet=rewrite_snippet,
)
