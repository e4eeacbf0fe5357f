"""Property tests of the rewriter (hypothesis): whatever the spelling of
the site, the rule finds it, rewrites it once and for all, adds no parse
errors; no match leaves every byte alone; mangled input never raises
anything but a PatchgenError."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from patchgen.infra.errors import PatchgenError
from patchgen.engine.fixtures import materialize
from patchgen.engine.parse import parse
from patchgen.engine.rewrite import MessageFacts, build_patches
from patchgen.engine.rule import REWRITE
from patchgen.engine.registry import get_rule
from patchgen.rules.hwpoison.rule import (HELPER, STEP_CALL_SITE, find_helper_calls,
                                     find_put_then_poison_sites, gather)
from patchgen.engine.sources import Overlay, WorkTree

RULE = get_rule("hwpoison-put-last")
MIGRATE = "mm/migrate.c"
SITE_START = "\tif (rc == MIGRATEPAGE_SUCCESS) {\n\t\tput_page(page);\n"
SITE_END = "\t} else {\n\t\tif (rc != -EAGAIN) {"
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    root = materialize("e3-v4.14", tmp_path_factory.mktemp("prop") / "tree", git=False)
    source = WorkTree(root)
    text = source.read(MIGRATE).decode()
    start = text.index(SITE_START)
    end = text.index(SITE_END, start)
    return source, text[:start], text[end:]


space = st.sampled_from([" ", "", "  ", "\n\t\t", "\t"])
gap = st.sampled_from([" ", "  ", "\n\t", "\n\n\t", " /* x */ ", "\n\t/* a comment */\n\t"])
names = st.sampled_from(["page", "hpage", "src", "p", "old_page"])
poisoners = st.sampled_from(["test_set_page_hwpoison", "TestSetPageHWPoison"])


@st.composite
def sites(draw):
    """An E2- or E3-shaped put-then-poison site, spelled in many ways."""
    page = draw(names)
    poison = draw(poisoners)
    s, g = draw(space), draw(gap)
    rc = draw(st.sampled_from(["rc == MIGRATEPAGE_SUCCESS", "MIGRATEPAGE_SUCCESS == rc",
                               "(rc == MIGRATEPAGE_SUCCESS)"]))
    reason = draw(st.sampled_from(["reason == MR_MEMORY_FAILURE",
                                   "MR_MEMORY_FAILURE == reason"]))
    poisoning = f"if{s}(!{poison}({s}{page}{s})){g}num_poisoned_pages_inc();"
    if draw(st.booleans()):
        poisoning = f"if (!{poison}({page})) {{{g}num_poisoned_pages_inc();{g}}}"
    put = f"put_page({s}{page}{s});"
    if draw(st.booleans()):  # E3
        inner = poisoning if draw(st.booleans()) else f"{{{g}{poisoning}{g}}}"
        body = f"{put}{g}if ({reason}){g}{inner}"
        return page, "E3", f"\tif ({rc}) {{{g}{body}\n"
    body = f"{put}{g}{poisoning}"
    if draw(st.booleans()):
        body = f"{{{g}{body}{g}}}"
    return page, "E2", f"\tif ({reason} && {rc}) {{{g}{body}{g}}}\n\tif (rc) {{\n"


def overlay(base, text):
    source, _, _ = base
    return Overlay(source, {MIGRATE: text.encode()})


@SETTINGS
@given(site=sites())
def test_any_spelling_is_found_and_rewritten_once(base, site):
    page, era, text = site
    _, head, tail = base
    migrate = head + text + tail
    source = overlay(base, migrate)
    facts = gather(source)
    found = [s for s in facts.sites if s.path == MIGRATE and s.shape == "put-then-poison"]
    assert [(s.page, s.era, s.action) for s in found] == [(page, era, "rewrite")]

    result = STEP_CALL_SITE.make(source, None)
    assert len(result.edits) == 1
    from patchgen.engine.edits import checked_result
    rewritten = checked_result(MIGRATE, migrate.encode(), list(result.edits))
    assert parse(rewritten).error_count() <= parse(migrate.encode()).error_count()
    parsed = parse(rewritten, MIGRATE)
    assert find_put_then_poison_sites(parsed) == [] or all(
        s.shape == "related" for s in find_put_then_poison_sites(parsed))
    assert [c.page for c in find_helper_calls(parsed)] == [page]
    changed = rewritten.decode().split("\n")
    assert not any(line != line.rstrip() for line in changed
                   if line not in migrate.split("\n")), "no trailing white space"
    # Idempotent: the rewritten tree has nothing left to rewrite.
    again = Overlay(base[0], {MIGRATE: rewritten})
    assert STEP_CALL_SITE.make(again, None).edits == ()


statement_pool = st.sampled_from([
    "put_page(a);", "foo(a);", "if (x)\n\t\tput_page(a);",
    "if (!test_set_page_hwpoison(b))\n\t\tnum_poisoned_pages_inc();",
    "if (reason == MR_MEMORY_FAILURE) {\n\t\tSetPageHWPoison(b);\n\t}",
    "/* put_page(b); test_set_page_hwpoison(b); */", "return 0;", "bar(b);",
    "if (rc == MIGRATEPAGE_SUCCESS)\n\t\tTestSetPageHWPoison(b);",
])


@SETTINGS
@given(body=st.lists(statement_pool, max_size=8))
def test_no_match_means_byte_identical_output(base, body):
    source, _, _ = base
    function = ("int churn(struct page *a, struct page *b, int x, int rc, int reason)\n{\n\t"
                + "\n\t".join(body) + "\n\treturn x;\n}\n")
    parsed = parse(function.encode(), "churn.c")
    assert find_put_then_poison_sites(parsed) == []
    text = source.read(MIGRATE).decode()
    start = text.index(SITE_START)
    end = text.index(SITE_END, start)
    # The fixture without its site, plus the churn: nothing to rewrite.
    migrate = text[:start] + "\tif (rc == MIGRATEPAGE_SUCCESS) {\n\t\tput_page(page);\n" \
        + text[end:] + "\n" + function
    tree = overlay(base, migrate)
    assert STEP_CALL_SITE.make(tree, None).edits == ()
    report = RULE.scan(tree)
    assert report.verdict != REWRITE
    facts = MessageFacts("A <a@b.c>", lambda subject: None)
    assert build_patches(RULE, report, tree, facts) == [] or report.verdict != REWRITE


@SETTINGS
@given(data=st.data())
def test_mangled_input_never_raises_anything_but_patchgen_errors(base, data):
    source, head, tail = base
    text = source.read(MIGRATE)
    start = data.draw(st.integers(0, len(text)))
    length = data.draw(st.integers(0, 400))
    junk = data.draw(st.binary(max_size=40))
    mangled = text[:start] + junk + text[start + length:]
    tree = Overlay(source, {MIGRATE: mangled})
    try:
        report = RULE.scan(tree)
        if report.verdict == REWRITE:
            facts = MessageFacts("A <a@b.c>", lambda subject: None)
            patches = build_patches(RULE, report, tree, facts)
            for patch in patches:
                for path, content in patch.changes.items():
                    before = parse(tree.read(path)).error_count()
                    assert parse(content).error_count() <= before
    except PatchgenError:
        pass
