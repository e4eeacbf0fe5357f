"""make's extra variables for old trees (patchgen/kernel/toolchain.py),
against this machine's real gcc and a real pre-4.9-shaped Makefile."""

from patchgen.infra.runner import run
from patchgen.kernel.toolchain import _compiler_defaults_to_pie, make_variables, why


def _gcc_pie() -> bool:
    # Independent of the module: ask gcc how it was configured.
    out = run(["gcc", "-v"], check=False)
    return "--enable-default-pie" in out.stderr


def test_the_compiler_probe_agrees_with_gcc_configuration():
    assert _compiler_defaults_to_pie("gcc") == _gcc_pie()
    assert not _compiler_defaults_to_pie("no-such-compiler-patchgen")


def test_an_old_makefile_gets_no_pie_and_a_new_one_nothing(tmp_path):
    old, new = tmp_path / "old", tmp_path / "new"
    old.mkdir()
    new.mkdir()
    (old / "Makefile").write_text("KBUILD_CFLAGS := -Wall -O2\n")
    (new / "Makefile").write_text(
        "KBUILD_CFLAGS := -Wall -O2\n"
        "KBUILD_CFLAGS += $(call cc-option,-fno-PIE)\n")
    assert make_variables(new, {}) == []
    if _gcc_pie():
        assert make_variables(old, {}) == ["KCFLAGS=-fno-pie"]
        # The user's own KCFLAGS stay, in front.
        assert make_variables(old, {"KCFLAGS": "-g"}) == ["KCFLAGS=-g -fno-pie"]
        assert "v4.9" in why(make_variables(old, {}))
    else:
        assert make_variables(old, {}) == []
    assert why([]) == ""


def test_the_6_1_tree_needs_nothing(linux61):
    # The real Debian tree passes -fno-PIE itself (arch/x86/Makefile or
    # the top Makefile): nothing is added.
    assert make_variables(linux61, {}) == []
