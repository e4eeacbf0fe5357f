"""patchgen check --build: bisectability and new warnings by identity.

Warnings are compared as file:line: message after carrying the known ones
through each patch's diff, so a warning that only moved is not new and a
warning that replaces another is (a count would miss it).  The real-tree
tests build the Debian 6.1 tree with make in an O= folder of the cache.
"""

import time
from pathlib import Path

import pytest
import unidiff

from checkhelp import check_json, git, line_of, result_for, tree_state
from conftest import need_tool
from patchgen.review.build import (Bisector, Diagnostic, KbuildBuilder, LineMap,
                                  RawBuild, check_build_for, folders_of,
                                  generic_fragment, kbuild_builder,
                                  makefile_symbols, parse_diagnostics, symbol_off)
from patchgen.rules.hwpoison.recipe import CHECK_BUILD

FRAGMENT = CHECK_BUILD.fragment
from patchgen.kernel.kconfig import build_dir_for, missing_symbols, read_fragment
from patchgen.infra.runner import describe, run


def diff_of(tmp_path: Path, old: str, new: str, name: str = "mm/x.c") -> unidiff.PatchSet:
    """A real diff of two versions of *name*, made by git diff."""
    a, b = tmp_path / "a" / name, tmp_path / "b" / name
    for path, text in ((a, old), (b, new)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    result = run(["git", "diff", "--no-index", "--no-prefix", "a/" + name, "b/" + name],
                 cwd=tmp_path, check=False)
    # --no-prefix: the paths as given, a/mm/x.c and b/mm/x.c, as git shows them.
    return unidiff.PatchSet(result.stdout)


def numbered(count: int) -> list[str]:
    return [f"line {n}" for n in range(1, count + 1)]


def test_line_map_follows_insertions_and_removals(tmp_path):
    old = numbered(20)
    new = old[:2] + ["new a", "new b", "new c"] + old[2:9] + old[10:]   # -line 10
    patch = diff_of(tmp_path, "\n".join(old) + "\n", "\n".join(new) + "\n")
    line_map = LineMap(patch)
    for before in (1, 2, 3, 9, 11, 20):
        after = line_map.map("mm/x.c", before)
        assert after is not None and new[after[1] - 1] == f"line {before}"
    assert line_map.map("mm/x.c", 10) is None          # removed
    assert line_map.map("mm/other.c", 7) == ("mm/other.c", 7)
    assert line_map.touched() == {"mm/x.c"}


class GccWarnings:
    """A real builder for the test: gcc -fsyntax-only -Wall, no -Werror,
    so that warnings stay warnings."""

    name = "gcc -Wall"
    folders = ["mm"]

    def __init__(self, root: Path):
        self.root = root

    def build(self, changed):
        start = time.monotonic()
        sources = sorted(str(p.relative_to(self.root)) for p in self.root.glob("mm/*.c"))
        output = ""
        for source in sources:
            argv = ["gcc", "-fsyntax-only", "-Wall", source]
            result = run(argv, cwd=self.root, env={"LC_ALL": "C"}, check=False)
            output += result.stdout + result.stderr
        return RawBuild(True, output, frozenset(sources),
                        tuple(parse_diagnostics(output, [self.root])),
                        describe(argv, self.root), time.monotonic() - start)


def test_a_warning_that_replaces_another_is_new_and_a_moved_one_is_not(tmp_path):
    need_tool("gcc")
    root = tmp_path / "tree"
    (root / "mm").mkdir(parents=True)
    source = root / "mm" / "x.c"
    base = "int f(void)\n{\n\tint unused_a;\n\treturn 0;\n}\n"
    source.write_text(base)
    bisector = Bisector(GccWarnings(root))
    base_step = bisector.base()
    assert base_step.ok and base_step.new == ()
    # Patch 1: one warning goes, another comes: the count stays 1.
    first = "int f(void)\n{\n\treturn 0;\n}\n\nint g(void)\n{\n\tint unused_b;\n\treturn 1;\n}\n"
    patch = diff_of(tmp_path / "p1", base, first)
    source.write_text(first)
    step = bisector.after(patch)
    assert [d.identity() for d in step.new] == [
        f"mm/x.c:{line_of(first, 'unused_b')}: warning: unused variable 'unused_b' "
        "[-Wunused-variable]"]
    assert [d.text for d in step.gone] == ["unused variable 'unused_a' [-Wunused-variable]"]
    # Patch 2: lines above the warning move it; it is the same warning.
    second = "/* one */\n/* two */\n/* three */\n" + first
    patch = diff_of(tmp_path / "p2", first, second)
    source.write_text(second)
    step = bisector.after(patch)
    assert step.ok and step.new == () and step.gone == ()
    # Patch 3 rewrites the line that warns: the file still has the warning.
    third = second.replace("\tint unused_b;\n", "\tint unused_b; /* kept */\n")
    patch = diff_of(tmp_path / "p3", second, third)
    source.write_text(third)
    step = bisector.after(patch)
    assert step.ok and step.new == () and step.gone == ()
    # Patch 4 removes it: gone, and nothing new.
    fourth = third.replace("\tint unused_b; /* kept */\n", "")
    patch = diff_of(tmp_path / "p4", third, fourth)
    source.write_text(fourth)
    step = bisector.after(patch)
    assert step.new == () and [d.line for d in step.gone] == [line_of(third, "unused_b")]


def test_diagnostics_are_read_relative_to_the_tree(tmp_path):
    output = (f"{tmp_path}/src/mm/a.c:12:5: warning: unused variable \u2018x\u2019 "
              "[-Wunused-variable]\n"
              "In file included from mm/b.c:3:\n"
              "./include/linux/mm.h:40:1: error: expected ';' before '}' token\n")
    assert parse_diagnostics(output, [tmp_path / "src"]) == [
        Diagnostic("mm/a.c", 12, "warning", "unused variable 'x' [-Wunused-variable]"),
        Diagnostic("include/linux/mm.h", 40, "error", "expected ';' before '}' token")]


# --- the real 6.1 tree ---------------------------------------------------------------

def series_on_linux61(linux61: Path, tmp_path: Path, edits) -> Path:
    """Commits made in a sparse clone of the 6.1 tree, mailed as a series
    based on its HEAD.  *edits*: (path, old, new, subject) per patch."""
    clone = tmp_path / "author"
    run(["git", "clone", "-q", "--shared", "--no-checkout", str(linux61), str(clone)],
        timeout=300)
    paths = sorted({"/" + path for path, _, _, _ in edits})
    git(clone, "sparse-checkout", "set", "--no-cone", *paths)
    git(clone, "checkout", "-q", "--detach", "HEAD")
    git(clone, "config", "user.name", "Test Author")
    git(clone, "config", "user.email", "test@example.org")
    base = git(clone, "rev-parse", "HEAD").strip()
    for path, old, new, subject in edits:
        target = clone / path
        text = target.read_text()
        assert text.count(old) == 1, f"{old!r} is not unique in {path}"
        target.write_text(text.replace(old, new, 1))
        git(clone, "commit", "-qa", "-m", f"{subject}\n\nChange it for a test of "
            "patchgen check.\n\nSigned-off-by: Test Author <test@example.org>")
    out = tmp_path / "series"
    git(clone, "format-patch", "-q", "--cover-letter", "--thread=shallow",
        f"--base={base}", "-o", str(out), f"{base}..HEAD")
    cover = next(out.glob("0000-*"))
    cover.write_text(cover.read_text()
                     .replace("*** SUBJECT HERE ***", "mm/memory-failure: two changes")
                     .replace("*** BLURB HERE ***", "Two changes for a test."))
    return out, clone


MEMORY_FAILURE = "mm/memory-failure.c"
UNPOISON = "int unpoison_memory(unsigned long pfn)\n{\n"


@pytest.mark.realtree
@pytest.mark.slow
def test_build_reports_a_new_warning_against_its_patch_only(linux61, tmp_path, capsys):
    for tool in ("gcc", "make", "flex", "bison", "bc", "perl"):
        need_tool(tool)
    series, clone = series_on_linux61(linux61, tmp_path, [
        (MEMORY_FAILURE, UNPOISON, UNPOISON + "\tint patchgen_unused;\n",
         "mm/memory-failure: add a variable to unpoison_memory()"),
        (MEMORY_FAILURE, '#include "ras/ras_event.h"\n',
         '#include "ras/ras_event.h"\n\n/*\n * A comment that moves the code below it.\n */\n',
         "mm/memory-failure: add a comment after the includes"),
    ])
    before = tree_state(linux61, shared=True)
    code, document, err = check_json(capsys, series, linux61, "--build")
    assert code == 1 and "Traceback" not in err
    # Minutes of make are not silent: the base, then each patch.
    assert "building the base (make: mm/)" in err
    assert err.index("building after 1/2 (1 of 2 patches)") < \
        err.index("building after 2/2 (2 of 2 patches)")
    first_text = git(clone, "show", f"HEAD~1:{MEMORY_FAILURE}")
    line = line_of(first_text, "int patchgen_unused;")
    first = result_for(document, "1/2", "build")
    assert first["state"] == "fail"
    assert first["description"] == (f"new warning: {MEMORY_FAILURE}:{line}: warning: "
                                     "unused variable 'patchgen_unused' [-Wunused-variable]")
    # Patch 2 moves the warning down by four lines: the same warning, not new.
    assert line_of(git(clone, "show", f"HEAD:{MEMORY_FAILURE}"),
                   "int patchgen_unused;") == line + 4
    assert result_for(document, "2/2", "build")["state"] == "success"
    assert [(f["label"], f["check"]) for f in document["results"]
            if f["state"] != "success"] == [("1/2", "build")]
    base_build = result_for(document, "series", "build")
    assert "builds with make (mm/" in base_build["description"]
    assert tree_state(linux61, shared=True) == before


@pytest.mark.realtree
@pytest.mark.slow
def test_build_finds_a_reordered_series_that_does_not_compile(linux61, tmp_path, capsys):
    """Patch 1 calls a function that only patch 2 adds."""
    for tool in ("gcc", "make", "flex", "bison", "bc", "perl"):
        need_tool(tool)
    helper = ("static void patchgen_note(unsigned long pfn)\n{\n"
              "\tpr_info(\"Unpoison: %#lx\\n\", pfn);\n}\n\n")
    series, clone = series_on_linux61(linux61, tmp_path, [
        (MEMORY_FAILURE, "DEFAULT_RATELIMIT_BURST);\n\n\tp = pfn_to_online_page(pfn);\n",
         "DEFAULT_RATELIMIT_BURST);\n\n\tpatchgen_note(pfn);\n"
         "\tp = pfn_to_online_page(pfn);\n",
         "mm/memory-failure: note each unpoison"),
        (MEMORY_FAILURE, UNPOISON, helper + UNPOISON,
         "mm/memory-failure: add patchgen_note()"),
    ])
    code, document, err = check_json(capsys, series, linux61, "--build")
    assert code == 1 and "Traceback" not in err
    call_line = line_of(git(clone, "show", f"HEAD~1:{MEMORY_FAILURE}"), "\tpatchgen_note(pfn);")
    first = result_for(document, "1/2", "build")
    assert first["state"] == "fail"
    assert first["description"].startswith(
        f"does not build: {MEMORY_FAILURE}:{call_line}: error: implicit declaration "
        "of function 'patchgen_note'")
    assert result_for(document, "2/2", "build")["state"] == "success"
    assert [(f["label"], f["check"]) for f in document["results"]
            if f["state"] == "fail"] == [("1/2", "build")]


@pytest.mark.realtree
@pytest.mark.slow
def test_check_notes_what_kconfig_drops_where_verify_stops(linux61, tmp_path):
    """One configure (kconfig.py) for both commands: real tinyconfig and
    olddefconfig on the 6.1 tree, with a fragment whose MEMORY_FAILURE has
    lost its dependency (X86_MCE) and a symbol that does not exist."""
    for tool in ("gcc", "make", "flex", "bison"):
        need_tool(tool)
    fragment = (read_fragment(FRAGMENT).replace("CONFIG_X86_MCE=y\n", "")
                + "CONFIG_PATCHGEN_NO_SUCH_SYMBOL=y\n")
    build_dir = build_dir_for(tmp_path, linux61, fragment)
    builder = KbuildBuilder(linux61, build_dir, ["mm"], fragment)
    builder.configure()
    assert builder.notes == ["not set after olddefconfig (missing dependencies?): "
                             "CONFIG_MEMORY_FAILURE, CONFIG_PATCHGEN_NO_SUCH_SYMBOL"]
    assert "CONFIG_COMPACTION=y" in (build_dir / ".config").read_text()
    # The same fragment again: the folder is configured already.
    again = KbuildBuilder(linux61, build_dir, ["mm"], fragment)
    before = (build_dir / ".config").stat().st_mtime_ns
    again.configure()
    assert (build_dir / ".config").stat().st_mtime_ns == before
    assert again.notes == builder.notes, "a reused folder still says what was dropped"
    # What verify's build makes of the same .config: an error naming both.
    assert missing_symbols((build_dir / ".config").read_text(), fragment) == [
        "CONFIG_MEMORY_FAILURE", "CONFIG_PATCHGEN_NO_SUCH_SYMBOL"]


def test_check_build_also_builds_with_memory_failure_off():
    """A series that adds a !CONFIG_MEMORY_FAILURE stub must compile that
    way too: the second setting of a real tree's build, from the rule's
    CheckBuild (its toggle and what needs it)."""
    fragment = read_fragment(FRAGMENT) + "CONFIG_HWPOISON_INJECT=y\n"
    off = symbol_off(fragment, CHECK_BUILD.toggle, CHECK_BUILD.toggle_dependents)
    assert "# CONFIG_MEMORY_FAILURE is not set" in off
    assert "CONFIG_MEMORY_FAILURE=y" not in off
    assert "HWPOISON_INJECT" not in off
    assert "CONFIG_COMPACTION=y" in off
    assert symbol_off("CONFIG_64BIT=y\n", CHECK_BUILD.toggle) is None


def provenance(rule: str) -> str:
    return f"mm: a change\n\nWhy.\n\nGenerated by: patchgen 0.1.0, rule {rule}\n"


def test_check_build_takes_the_settings_of_the_rule_that_made_the_series():
    assert check_build_for([provenance("hwpoison-put-last")] * 2) == (CHECK_BUILD, None)
    # A hand-made series, or one of a rule not installed here: the generic build.
    assert check_build_for(["mm: a change\n\nWhy.\n"]) == (None, None)
    settings, note = check_build_for([provenance("patchgen-no-such-rule")])
    assert settings is None
    assert note == ("the series names rule patchgen-no-such-rule, not installed "
                    "here: the generic build (defconfig)")


def test_the_generic_build_turns_on_what_the_makefiles_name(tmp_path):
    """A tree in the kernel's shape: a file of a composite object in a
    folder that its parent builds under a symbol of its own."""
    files = {
        "Makefile": "obj-y += drivers/\n",
        "drivers/Makefile": "obj-y\t\t+= base/\nobj-$(CONFIG_WIDGET) += widget/\n",
        "drivers/widget/Makefile": ("obj-$(CONFIG_WIDGET_CORE) += widget.o\n"
                                    "widget-y := core.o \\\n\tbus.o\n"
                                    "widget-$(CONFIG_WIDGET_DEBUG) += debug.o\n"
                                    "obj-m += other.o\n"),
        "drivers/base/Makefile": "obj-y += bus.o\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert makefile_symbols(tmp_path, ["drivers/widget/bus.c"]) == [
        "CONFIG_WIDGET_CORE", "CONFIG_WIDGET"]
    assert makefile_symbols(tmp_path, ["drivers/widget/debug.c", "README"]) == [
        "CONFIG_WIDGET_DEBUG", "CONFIG_WIDGET_CORE", "CONFIG_WIDGET"]
    assert makefile_symbols(tmp_path, ["drivers/base/bus.c",
                                       "drivers/widget/other.c"]) == ["CONFIG_WIDGET"]
    fragment = generic_fragment(tmp_path, ["drivers/widget/bus.c"])
    assert fragment.splitlines()[-2:] == ["CONFIG_WIDGET_CORE=y", "CONFIG_WIDGET=y"]


@pytest.mark.realtree
@pytest.mark.slow
def test_the_generic_build_compiles_the_touched_files_of_the_61_tree(linux61, tmp_path):
    """A series of no rule with build settings: defconfig plus what the
    Makefiles name keeps each touched file's symbol after olddefconfig
    (real make defconfig and olddefconfig; nothing compiled here)."""
    for tool in ("gcc", "make", "flex", "bison"):
        need_tool(tool)
    paths = ["mm/memory-failure.c", "drivers/gpu/drm/i915/gem/i915_gem_object.c",
             "drivers/net/wireless/ath/ath9k/main.c", "fs/ext4/super.c"]
    builder = kbuild_builder(linux61, tmp_path, folders_of(paths), paths, None)
    assert builder.base == "defconfig"
    builder.configure()
    assert builder.notes == []
    config = (builder.build_dir / ".config").read_text()
    for symbol in ("CONFIG_MEMORY_FAILURE", "CONFIG_DRM_I915", "CONFIG_ATH9K",
                   "CONFIG_EXT4_FS"):
        assert f"\n{symbol}=y\n" in config, symbol
    # Another base is another folder: tinyconfig's folders keep their keys.
    assert build_dir_for(tmp_path, linux61, builder.fragment) != builder.build_dir
