"""What each patch of the hwpoison series does to the kernel, on the
fixture trees: the rules of the linux-mm review (../shared/KERNEL.md),
one test each, reading the code the series leaves behind."""

import re
from pathlib import Path

import pytest

from patchgen.engine.apply import apply_rule
from patchgen.infra.errors import BadRule, RuleRefused
from patchgen.engine.parse import (call_args, call_name, calls, find_function, normalized,
                            parse, statements, walk)
from patchgen.engine.rule import REWRITE
from patchgen.engine.registry import get_rule
from patchgen.engine.snippets import MUST_MATCH, expectation
from patchgen.rules import hwpoison as hwpoison_package
from patchgen.rules.hwpoison.rule import (HELPER, find_put_then_poison_sites,
                                     find_surplus_poisoning)
from patchgen.infra.runner import run
from patchgen.engine.sources import open_worktree

RULE = get_rule("hwpoison-put-last")
# The rule's must-match snippets that name their finder: the related shapes.
SNIPPETS = Path(hwpoison_package.__file__).parent / "snippets" / MUST_MATCH
SERIES_ERAS = ("e2-v4.6", "e2-v4.7", "e3-v4.14")


def git(tree, *args) -> str:
    return run(["git", "-C", tree, *args]).stdout


def at_tip(tree, path) -> str:
    return git(tree, "show", f"{RULE.default_branch}:{path}")


def messages(tree) -> dict[str, str]:
    """Subject -> whole message, with the lines of each paragraph joined."""
    out = {}
    for sha in git(tree, "rev-list", "--reverse", f"master..{RULE.default_branch}").split():
        message = git(tree, "show", "-s", "--format=%B", sha)
        subject = message.splitlines()[0]
        out[subject] = " ".join(message.split())
    return out


def edit_and_commit(tree, path: str, old: str, new: str) -> None:
    """Change one fixture file the way another tree has it, and commit."""
    file = tree / path
    text = file.read_text()
    assert old in text, path
    file.write_text(text.replace(old, new, 1))
    git(tree, "commit", "-q", "-am", f"reshape {path}")


def message_of(tree, prefix: str) -> str:
    found = [m for s, m in messages(tree).items() if s.startswith(prefix)]
    assert len(found) == 1, list(messages(tree))
    return found[0]


@pytest.fixture(params=SERIES_ERAS)
def applied(request, fixture_tree):
    tree = fixture_tree(request.param)
    apply_rule(tree, RULE.id)
    return request.param, tree


# --- scan: the related sites, in the shapes of real trees ----------------------

RELATED = sorted(p for p in SNIPPETS.glob("*.c") if "finder" in (expectation(p) or {}))


def test_the_related_shapes_have_snippets():
    assert {p.stem for p in RELATED} == {
        "hugetlb_after_out_label", "invalidate_other_shape", "invalidate_path",
        "surplus_hugepage_branch"}


@pytest.mark.parametrize("snippet", RELATED, ids=lambda p: p.stem)
def test_related_shapes_are_found(snippet):
    expected = expectation(snippet)
    parsed = parse(snippet.read_bytes(), snippet.name)
    finder = {"put-then-poison": find_put_then_poison_sites,
              "surplus": find_surplus_poisoning}[expected["finder"]]
    sites = finder(parsed)
    assert len(sites) == 1, [s.reason for s in sites]
    site = sites[0]
    assert (site.shape, site.function, site.page) == \
        (expected["shape"], expected["function"], expected["page"])
    assert site.action == expected.get("action", "report"), site.reason


def test_e3_reports_the_hugetlb_site_behind_its_label(fixture_tree):
    tree = fixture_tree("e3-v4.14")
    assert "out:\n\tif (rc != -EAGAIN)\n\t\tputback_active_hugepage(hpage);" in \
        (tree / "mm/migrate.c").read_text()
    report = RULE.scan(open_worktree(tree))
    related = [f for f in report.findings if f.kind == "related-site"]
    assert [(f.function, f.action) for f in related] == \
        [("unmap_and_move_huge_page", "report")]


def test_v46_reports_the_surplus_hugepage_branch(fixture_tree):
    report = RULE.scan(open_worktree(fixture_tree("e2-v4.6")))
    related = [f for f in report.findings if f.kind == "related-site"]
    assert {(f.function, f.action) for f in related} == \
        {("soft_offline_huge_page", "report")}
    assert any("surplus hugepage" in f.message for f in related)


# --- patch 1: the mutex --------------------------------------------------------

def _unlock_before_every_return(source: bytes, name: str) -> None:
    parsed = parse(source)
    function = find_function(parsed, name)
    body = statements(function.body)
    locks = [s for s in body if normalized(s) == "mutex_lock(&mf_mutex);"]
    assert len(locks) == 1, name
    lock = locks[0]
    before = body[:body.index(lock)]
    assert all(s.type == "declaration" or "pfn_valid" in parsed.text(s) for s in before)
    for ret in walk(function.body, "return_statement"):
        if ret.start_byte < lock.start_byte:
            continue
        previous = ret.prev_named_sibling
        assert previous is not None and normalized(previous) == "mutex_unlock(&mf_mutex);", \
            f"{name}: line {parsed.line(ret)}"
    unlocks = list(calls(function.body, {"mutex_unlock"}))
    returns = [r for r in walk(function.body, "return_statement")
               if r.start_byte > lock.start_byte]
    assert len(unlocks) == len(returns)


def test_soft_offline_and_unpoison_hold_the_mutex_throughout(applied):
    name, tree = applied
    source = at_tip(tree, "mm/memory-failure.c").encode()
    assert source.count(b"static DEFINE_MUTEX(mf_mutex);") == 1
    for function in ("soft_offline_page", "unpoison_memory"):
        _unlock_before_every_return(source, function)
    memory_failure = find_function(parse(source), "memory_failure")
    assert not list(calls(memory_failure.body, {"mutex_lock"}))
    # It comes first: before anything releases a poisoned page.
    first = git(tree, "rev-list", "--reverse", f"master..{RULE.default_branch}").split()[0]
    assert "mutex" in git(tree, "show", "-s", "--format=%s", first)


def test_mutex_message_says_why_memory_failure_is_left_out(applied):
    name, tree = applied
    text = message_of(tree, "mm: hwpoison: serialise")
    # The fixtures clear the flag on hwpoison_filter(), as 4.x does.
    assert "memory_failure() is not taken under the mutex here" in text
    assert "whose flag it set itself earlier in the same call" in text
    assert 'v5.14 ("mm/memory-failure: use a mutex to avoid memory_failure() races")' in text
    assert 'v5.17 ("mm/hwpoison: mf_mutex for soft offline and unpoison")' in text


def test_mutex_message_when_memory_failure_never_clears_the_flag(fixture_tree):
    tree = fixture_tree("e3-v4.14")
    edit_and_commit(tree, "mm/memory-failure.c",
                    "\t\tif (TestClearPageHWPoison(p))\n\t\t\tnum_poisoned_pages_dec();\n", "")
    apply_rule(tree, RULE.id)
    assert "it never clears PG_hwpoison" in message_of(tree, "mm: hwpoison: serialise")


def test_a_return_outside_braces_refuses_the_mutex(fixture_tree):
    tree = fixture_tree("e3-v4.14")
    edit_and_commit(tree, "mm/memory-failure.c",
                    "\tif (page_count(page) > 1) {\n"
                    "\t\tpr_info(\"Unpoison: %#lx is in use by someone else\\n\", pfn);\n"
                    "\t\treturn 0;\n\t}\n",
                    "\tif (page_count(page) > 1)\n\t\treturn 0;\n")
    with pytest.raises(RuleRefused, match="not inside braces"):
        apply_rule(tree, RULE.id)


# --- patch 2: memory hot-remove -------------------------------------------------

def test_hot_remove_skips_held_poisoned_pages_before_pinning(applied):
    name, tree = applied
    source = at_tip(tree, "mm/memory_hotplug.c")
    skip = source.index("if (PageHWPoison(page) && !PageLRU(page)")
    assert skip < source.index("if (!get_page_unless_zero(page))")
    condition = source[skip:source.index("continue;", skip)]
    assert "!page_mapped(page)" in condition
    # Only where the loop also isolates non-LRU movable pages (v4.8+).
    assert ("!__PageMovable(page)" in condition) == (name == "e3-v4.14")
    text = message_of(tree, "mm/memory_hotplug:")
    assert '"hwpoison, memory_hotplug: allow hwpoisoned pages to be offlined"' in \
        text.replace("( ", "(")
    assert "memory_failure() keeps a reference to the in-use pages it handles" in text


def test_a_tree_that_already_skips_poisoned_pages_gets_no_hotplug_patch(fixture_tree):
    tree = fixture_tree("e3-v4.14")
    # The shape of a stable tree that took mainline's change (4.9.154).
    edit_and_commit(tree, "mm/memory_hotplug.c",
                    "\t\tif (!get_page_unless_zero(page))\n",
                    "\t\tif (PageHWPoison(page))\n\t\t\tcontinue;\n\n"
                    "\t\tif (!get_page_unless_zero(page))\n")
    report = RULE.scan(open_worktree(tree))
    assert report.verdict == REWRITE
    assert not any(s.startswith("mm/memory_hotplug:") for s in report.steps)
    hotplug = next(f for f in report.findings if f.kind == "hotplug")
    assert hotplug.action == "done"


# --- patch 3: the free path -------------------------------------------------------

MAPPING_RESET = {"e2-v4.6": "if (PageAnon(page))\n\t\t\tpage->mapping = NULL;",
                 "e2-v4.7": "if (PageMappingFlags(page))\n\t\t\tpage->mapping = NULL;",
                 "e3-v4.14": "if (PageMappingFlags(page))\n\t\t\tpage->mapping = NULL;"}


def _hook(source: str) -> str:
    start = source.index("if (unlikely(PageHWPoison(page)) && !order) {")
    return source[start:source.index("\n\t}\n", start)]


def test_hook_clears_the_mapping_and_holds_the_page(applied):
    name, tree = applied
    hook = _hook(at_tip(tree, "mm/page_alloc.c"))
    assert MAPPING_RESET[name] in hook, "the era's own statement, copied"
    assert "reset_page_owner(page, order);" in hook
    assert hook.rstrip().endswith("set_page_refcounted(page);\n\t\treturn false;") or \
        "set_page_refcounted(page);\n\t\treturn false;" in hook
    # The other flags stay, as in 6.1's early return.
    assert "PAGE_FLAGS_CHECK_AT_PREP" not in hook


def test_hook_message_says_what_is_cleared_and_left(applied):
    name, tree = applied
    text = message_of(tree, "mm/page_alloc:")
    assert "page->mapping is cleared when" in text
    assert "The other page flags are left as they are" in text
    assert "set_page_refcounted() gives it one reference" in text
    for false in ("caught only when it is allocated again, by check_new_page()",
                  "poisoned on purpose", "PAGE_FLAGS_CHECK_AT_FREE"):
        assert false not in text
    assert ("check_new_pcp() does not check" in text) == (name != "e2-v4.6")
    assert "poisoned on purpose" not in _hook(at_tip(tree, "mm/page_alloc.c"))


# --- patch 4: the helper ------------------------------------------------------------

def test_helper_takes_no_reference_and_is_declared_in_mm_internal_h(applied):
    name, tree = applied
    source = at_tip(tree, "mm/memory-failure.c")
    helper = find_function(parse(source.encode()), HELPER)
    body = parse(source.encode()).text(helper.body)
    assert "set_page_refcounted" not in body and "page_ref_inc" not in body
    order = [call_name(c) for c in calls(helper.body)
             if call_name(c) in ("put_page_testzero", "TestSetPageHWPoison", "__put_page")]
    assert order == ["put_page_testzero", "TestSetPageHWPoison", "__put_page"]
    internal = at_tip(tree, "mm/internal.h")
    assert f"#ifdef CONFIG_MEMORY_FAILURE\nbool {HELPER}(struct page *page);\n#else" in internal
    assert HELPER not in at_tip(tree, "include/linux/mm.h")


ZONE_DEVICE = {"e2-v4.6": "put_zone_device_page()", "e2-v4.7": "put_zone_device_page()",
               "e3-v4.14": "put_zone_device_private_or_public_page()"}


def test_helper_says_why_zone_device_handling_does_not_apply(applied):
    name, tree = applied
    text = message_of(tree, f"mm: hwpoison: add {HELPER}()")
    assert f"pages in this tree ({ZONE_DEVICE[name]})" in text
    assert "ZONE_DEVICE pages are never on an LRU" in text
    assert "declared in mm/internal.h" in text
    assert "keeps unpoison_memory() out of that window" in text


def test_helper_return_value_is_used(applied):
    name, tree = applied
    source = at_tip(tree, "mm/memory-failure.c")
    assert f"if (!{HELPER}(page))" in source


# --- patch 6: the invalidate path ----------------------------------------------------

def test_invalidate_path_uses_the_helper_and_returns_ebusy(applied):
    name, tree = applied
    parsed = parse(at_tip(tree, "mm/memory-failure.c").encode())
    function = find_function(parsed, "__soft_offline_page")
    text = parsed.text(function.body)
    assert "SetPageHWPoison" not in text
    at = text.index(f"if (!{HELPER}(page)) {{")
    assert text.index("return -EBUSY;", at) < text.index("return 0;", at)
    assert "invalidated" in text[at:text.index("return 0;", at)]


# --- patch 7 and all messages: facts -----------------------------------------------

def test_no_false_sentences_anywhere(applied):
    name, tree = applied
    everything = " ".join(messages(tree).values()) + \
        git(tree, "diff", "master", RULE.default_branch)
    for false in ("so that user space retries", "user space can retry",
                  "only ever set at the last put", "poisoned on purpose",
                  "v4.18 (\"mm: soft-offline", "in v4.18", "rework this tree lacks",
                  "This patch was generated"):
        assert false not in everything, false
    ebusy = message_of(tree, "mm: hwpoison: return -EBUSY")
    assert "soft_offline_in_use_page() does so when page_handle_poison() fails" in ebusy
    for user in ("mcelog", "rasdaemon", "madvise(MADV_SOFT_OFFLINE)", "madvise11"):
        assert user in ebusy


def test_cover_letter_answers_why_not_backport_for_the_tree(fixture_tree, tmp_path):
    from checkhelp import generated_series
    for name, e3 in (("e3-v4.14", True), ("e2-v4.6", False)):
        tree, folder = generated_series(fixture_tree, name, tmp_path / name)
        cover = " ".join(sorted(folder.glob("0000-*.patch"))[0].read_text().split())
        assert "d4ae9916ea29" in cover and "v4.19" in cover
        assert ("that commit can be backported" in cover) == e3
        assert "rework this tree lacks" not in cover


# --- provenance ------------------------------------------------------------------------

def test_a_message_template_without_the_provenance_line_is_refused(fixture_tree, monkeypatch):
    from patchgen.engine import rewrite
    real = rewrite.render

    def without(name, **values):
        text = real(name, **values)
        return "\n".join(l for l in text.split("\n") if not l.startswith("Generated by:"))

    monkeypatch.setattr(rewrite, "render", without)
    with pytest.raises(BadRule, match="generated_by"):
        apply_rule(fixture_tree("e3-v4.14"), RULE.id)


def test_format_recognises_the_series_by_its_provenance_line(applied):
    from patchgen.series.select import read_commits
    from patchgen.engine.sources import open_git_tree
    name, tree = applied
    base = git(tree, "rev-parse", "master").strip()
    tip = git(tree, "rev-parse", RULE.default_branch).strip()
    commits = read_commits(open_git_tree(tree), base, tip)
    assert {c.rule for c in commits} == {RULE.id}
