"""A rule's snippets: small C files it must match, must not match, or must
rewrite to a given text (patchgen rule-test RULE).

A rule package keeps them in snippets/ next to its __init__.py:

    snippets/must-match/NAME.c          first line: /* expect: k=v k=v ... */
    snippets/must-not-match/NAME.c      first line: /* expect: none (why) */
    snippets/expected-output/NAME.c     the input of the rule's rewrite
    snippets/expected-output/NAME.expected.c   what it must become

must-match: of the sites Rule.match finds in the file, exactly one has
every fact of the expect line (each k=v compares str(value) with v; a
fact the site does not give never matches; a value with spaces is
quoted, k="a b", as in a shell).  must-not-match: Rule.match
finds no site at all.  expected-output: Rule.rewrite_snippet turns
NAME.c into exactly the bytes of NAME.expected.c (a file the rule leaves
alone has an expected file equal to its input).  Every snippet is parsed
by the rule itself; patchgen reads only the expect line.
"""

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from patchgen.engine.rule import Rule
from patchgen.infra.errors import BadSnippet, PatchgenError

MUST_MATCH = "must-match"
MUST_NOT_MATCH = "must-not-match"
EXPECTED_OUTPUT = "expected-output"
KINDS = (MUST_MATCH, MUST_NOT_MATCH, EXPECTED_OUTPUT)
EXPECTED_SUFFIX = ".expected.c"

EXPECT_LINE = re.compile(r"^/\* expect: (.*?) \*/\s*$")


@dataclass(frozen=True)
class SnippetResult:
    kind: str        # one of KINDS
    name: str        # e.g. "must-match/e3_plain.c"
    ok: bool
    detail: str      # what was found, one line

    def line(self) -> str:
        return f"{'pass' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def expectation(path: Path) -> dict[str, str] | None:
    """The facts *path*'s expect line asks for; None for `expect: none`."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    match = EXPECT_LINE.match(lines[0]) if lines else None
    if match is None:
        raise BadSnippet(f"snippet {path} does not start with its expect line "
                         "(/* expect: k=v ... */ or /* expect: none (why) */)")
    text = match.group(1).strip()
    if text == "none" or text.startswith("none "):
        return None
    try:
        items = shlex.split(text)
    except ValueError as exc:
        raise BadSnippet(f"snippet {path}: its expect line cannot be read ({exc})") from None
    facts = {}
    for item in items:
        name, equals, value = item.partition("=")
        if not equals or not name:
            raise BadSnippet(f"snippet {path}: {item!r} in its expect line is "
                             "not name=value")
        facts[name] = value
    return facts


def _describe(site) -> str:
    return " ".join(f"{k}={v}" for k, v in site.items())


def _check_match(rule: Rule, path: Path, name: str) -> SnippetResult:
    expected = expectation(path)
    if expected is None:
        raise BadSnippet(f"snippet {path} is in {MUST_MATCH}/ but expects none: "
                         f"move it to {MUST_NOT_MATCH}/")
    assert rule.match is not None       # run_snippets checks it first
    sites = rule.match(path.read_bytes(), path.name)
    fits = [s for s in sites
            if all(k in s and str(s[k]) == v for k, v in expected.items())]
    want = _describe(expected)
    if len(fits) == 1:
        return SnippetResult(MUST_MATCH, name, True, f"one site with {want}")
    found = "; ".join(_describe(s) for s in sites) or "no site"
    return SnippetResult(MUST_MATCH, name, False,
                         f"expected one site with {want}, {len(fits)} have it "
                         f"(found: {found})")


def _check_no_match(rule: Rule, path: Path, name: str) -> SnippetResult:
    if expectation(path) is not None:
        raise BadSnippet(f"snippet {path} is in {MUST_NOT_MATCH}/ but its expect "
                         "line asks for a site: write /* expect: none (why) */")
    assert rule.match is not None
    sites = rule.match(path.read_bytes(), path.name)
    if not sites:
        return SnippetResult(MUST_NOT_MATCH, name, True, "no site")
    return SnippetResult(MUST_NOT_MATCH, name, False,
                         f"expected no site, found {len(sites)}: "
                         + "; ".join(_describe(s) for s in sites))


def _check_output(rule: Rule, path: Path, name: str) -> SnippetResult:
    expected_path = path.with_name(path.name[:-len(".c")] + EXPECTED_SUFFIX)
    if not expected_path.is_file():
        raise BadSnippet(f"snippet {path} has no {expected_path.name} next to "
                         "it: write what the rule must make of it")
    assert rule.rewrite_snippet is not None
    got = rule.rewrite_snippet(path.read_bytes(), path.name)
    want = expected_path.read_bytes()
    if got == want:
        return SnippetResult(EXPECTED_OUTPUT, name, True,
                             "unchanged, as expected" if got == path.read_bytes()
                             else f"rewritten to {expected_path.name}")
    got_lines = got.decode("utf-8", "replace").splitlines()
    want_lines = want.decode("utf-8", "replace").splitlines()
    for number, (a, b) in enumerate(zip(got_lines, want_lines), 1):
        if a != b:
            return SnippetResult(EXPECTED_OUTPUT, name, False,
                                 f"line {number} is {a!r}, {expected_path.name} "
                                 f"has {b!r}")
    return SnippetResult(EXPECTED_OUTPUT, name, False,
                         f"{len(got_lines)} lines, {expected_path.name} has "
                         f"{len(want_lines)}")


def snippet_files(folder: Path) -> list[tuple[str, Path]]:
    """(kind, path) of every snippet under *folder*, in a stable order."""
    found = []
    for kind in KINDS:
        sub = folder / kind
        if not sub.is_dir():
            continue
        for path in sorted(sub.glob("*.c")):
            if kind == EXPECTED_OUTPUT and path.name.endswith(EXPECTED_SUFFIX):
                base = path.with_name(path.name[:-len(EXPECTED_SUFFIX)] + ".c")
                if not base.is_file():
                    raise BadSnippet(f"{path} has no input {base.name} next to it")
                continue
            found.append((kind, path))
    return found


def run_snippets(rule: Rule, folder: Path | None) -> list[SnippetResult]:
    """Check each snippet of *rule* in *folder* (its package's snippets/)."""
    if folder is None or not folder.is_dir():
        raise BadSnippet(f"rule {rule.id} has no snippets folder"
                         + (f" ({folder})" if folder else "")
                         + ": add must-match/, must-not-match/ or "
                         "expected-output/ snippets to its package")
    files = snippet_files(folder)
    if not files:
        raise BadSnippet(f"rule {rule.id}'s snippets folder {folder} holds no "
                         f"snippet (.c files under {', '.join(KINDS)})")
    kinds = {kind for kind, _ in files}
    if kinds & {MUST_MATCH, MUST_NOT_MATCH} and rule.match is None:
        raise BadSnippet(f"rule {rule.id} has match snippets but no match "
                         "function (Rule.match)")
    if EXPECTED_OUTPUT in kinds and rule.rewrite_snippet is None:
        raise BadSnippet(f"rule {rule.id} has expected-output snippets but no "
                         "rewrite function (Rule.rewrite_snippet)")
    check = {MUST_MATCH: _check_match, MUST_NOT_MATCH: _check_no_match,
             EXPECTED_OUTPUT: _check_output}
    results = []
    for kind, path in files:
        name = f"{kind}/{path.name}"
        try:
            results.append(check[kind](rule, path, name))
        except BadSnippet:
            raise
        except PatchgenError as exc:
            results.append(SnippetResult(kind, name, False, f"the rule failed: {exc}"))
        except Exception as exc:  # a bug in the rule's own code: its snippet fails
            results.append(SnippetResult(kind, name, False, "the rule raised "
                                         f"{type(exc).__name__}: {exc}"))
    return results
