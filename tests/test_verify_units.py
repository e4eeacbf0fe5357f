"""verify's parts, each on its own: the serial-log parser (on real logs
recorded here), the cpio writer (checked by the real cpio tool), the config
check, the qemu command line, and bad input through the real CLI.  None of
these builds or boots a kernel; test_verify_real.py does.
"""

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, need_tool
from patchgen.vm import boot as bootmod
from patchgen.vm.kbuild import (check_kernel_tree, configured_in_place,
                            first_errors, load_config as load_rule_config,
                            refuse_in_place)
from patchgen.infra.errors import (EXIT_GUEST_PANIC, EXIT_GUEST_TIMEOUT,
                             BadBuildConfig, BootFailed,
                             CacheFull,
                             KvmUnavailable, NotAKernelTree)
from patchgen.vm.initramfs import (CpioWriter, compile_test_program,
                                find_busybox, init_script, is_static_elf,
                                read_cpio, write_all, write_initramfs)
from patchgen.kernel.kconfig import missing_symbols, read_fragment, required_symbols
from patchgen.infra.runner import stream
from patchgen.vm.verdict import parse_serial_log as parse_with, strip_timestamp, count_lines
from patchgen.engine.rule import LogCount, VerifyConfig, VerifyRecipe
from patchgen.rules.hwpoison.recipe import VERIFY as RECIPE, VERIFY_FRAGMENT as FRAGMENT

TEST_SOURCE = RECIPE.program
SOFT_OFFLINES = RECIPE.counts[0].patterns


def parse_serial_log(text, **kwargs):
    """The verdict as verify gives it for the hwpoison rule's recipe."""
    return parse_with(text, recipe=RECIPE, **kwargs)


def load_config(spec=None):
    return load_rule_config(RECIPE, spec)


def soft_offlines(verdict) -> int:
    return dict((key, n) for key, _, n in verdict.counts)["soft_offlined_pages"]

DATA = Path(__file__).resolve().parent / "data" / "verify"


def log(name: str) -> str:
    return (DATA / name).read_text()


# --- the serial-log parser, on logs recorded from real boots here --------

def test_unmodified_61_log_passes():
    verdict = parse_serial_log(log("pass-6.1.log"))
    assert verdict.passed and verdict.kind == "pass"
    assert verdict.exit_code == 0
    assert verdict.reasons == ()
    names = {c.name for c in verdict.checks}
    assert {"single", "fresh-single", "stress", "fresh-stress",
            "audit-own-single", "audit-own-stress", "audit-offlined-stress",
            "unpoison", "unpoison-leak"} <= names
    assert all(c.passed for c in verdict.checks)
    assert soft_offlines(verdict) == 65
    assert verdict.kernel_version.startswith("6.1.")


def test_broken_free_path_log_fails_with_the_fresh_page_and_the_audit():
    verdict = parse_serial_log(log("broken-free-path-6.1.log"))
    assert not verdict.passed and verdict.kind == "fail"
    assert verdict.exit_code == 1
    failed = [c.name for c in verdict.checks if not c.passed]
    assert failed[:2] == ["fresh-single", "audit-own-single"]
    assert "memory-failure kill" in {p.kind for p in verdict.problems}
    text = "\n".join(verdict.reasons)
    assert "which carries KPF_HWPOISON (the pfn just offlined)" in text
    assert "killed by SIGBUS" in text


def test_bad_page_state_log_fails_with_the_splat():
    verdict = parse_serial_log(log("bad-page-state-6.1.log"))
    assert not verdict.passed and verdict.kind == "fail"
    kinds = {p.kind: p.count for p in verdict.problems}
    assert kinds["bad page state"] >= 1
    # The call trace belongs to the splat: counted, not a reason of its own.
    assert "call trace" in kinds
    assert not any("call trace" in r for r in verdict.reasons)
    assert any("Bad page state" in line for line in verdict.offending)
    assert "page dumped because: nonzero _refcount" in verdict.offending


def test_leak_log_fails_on_the_free_page_count_alone():
    verdict = parse_serial_log(log("leak-no-reference-6.1.log"))
    assert not verdict.passed
    failed = [c.name for c in verdict.checks if not c.passed]
    # The counter comes back, so only the free-page comparison sees it.
    assert failed == ["unpoison-leak"]
    assert verdict.problems == ()


def test_panic_log_fails_as_panic_with_the_panic_line():
    verdict = parse_serial_log(log("panic-at-boot-6.1.log"))
    assert not verdict.passed and verdict.kind == "panic"
    assert verdict.exit_code == EXIT_GUEST_PANIC
    assert any("Kernel panic - not syncing: patchgen test" in line
               for line in verdict.offending)
    assert any("its /init never wrote a line" in r for r in verdict.reasons)


def test_hung_guest_log_is_a_timeout_verdict():
    verdict = parse_serial_log(log("hang-6.1.log"), timed_out=True,
                               timeout=20)
    assert not verdict.passed and verdict.kind == "timeout"
    assert verdict.exit_code == EXIT_GUEST_TIMEOUT
    assert "within 20 s" in verdict.reasons[0]
    # The last thing the guest said, not qemu's "terminating on signal".
    assert verdict.reasons[0].endswith("Switched to clocksource tsc")


def test_a_test_stopped_at_a_timeout_names_the_tests_last_line():
    text = (KERNEL_ONLY + "PATCHGEN: info guest up\n"
            "[    0.6] PATCHGEN: #1 info start stress=0\n"
            "[    0.7] PATCHGEN: #2 check setup PASS uid 0\n"
            "[    0.8] process 26 (soft_offline_te) attempted a POSIX timer "
            "syscall while CONFIG_POSIX_TIMERS is not set\n"
            "qemu-system-x86_64: terminating on signal 15\n")
    verdict = parse_serial_log(text, timed_out=True, timeout=90)
    assert verdict.reasons[0].endswith("CONFIG_POSIX_TIMERS is not set")
    assert verdict.reasons[1].endswith("its last line: check setup PASS "
                                       "uid 0")


def test_a_log_without_a_result_never_passes():
    text = log("pass-6.1.log")
    cut = "\n".join(line for line in text.splitlines()
                    if "PATCHGEN: result" not in line)
    verdict = parse_serial_log(cut)
    assert not verdict.passed
    assert any("stopped midway, before its result; its last line: check "
               "unpoison-data PASS" in r for r in verdict.reasons)
    assert not parse_serial_log("").passed


# --- how far a guest got: written logs in the shape of real ones ---------

KERNEL_ONLY = """\
[    0.000000] Linux version 4.9.154 (root@vm) (gcc version 12.2.0) #1
[    0.000000] Command line: console=ttyS0 panic=-1 printk.devkmsg=on
[    0.412345] Freeing unused kernel memory: 1024K
"""


def test_no_output_at_all_is_its_own_reason():
    for text in ("", "qemu-system-x86_64: terminating on signal 15\n"):
        verdict = parse_serial_log(text)
        assert not verdict.passed
        assert verdict.reasons == ("the guest produced no output at all (not "
                                   "even the kernel's first line on the "
                                   "serial console)",)


def test_a_kernel_without_a_line_from_init():
    verdict = parse_serial_log(KERNEL_ONLY)
    assert not verdict.passed
    (reason,) = verdict.reasons
    assert reason.startswith("the kernel booted but its /init never wrote")


def test_init_ran_but_the_test_never_started():
    text = (KERNEL_ONLY + "PATCHGEN: info init started\n"
            "[    0.5] PATCHGEN: info guest up, kernel 4.9.154\n"
            "/bin/sh: /soft_offline_test: not found\n"
            "PATCHGEN: info test exited with status 127\n")
    (reason,) = parse_serial_log(text).reasons
    assert reason == ("/init ran but the test program never started (no line "
                      "from it); /init saw it exit with status 127")


def test_the_test_stopped_midway_names_its_last_line():
    text = (KERNEL_ONLY + "[    0.5] PATCHGEN: info init started\n"
            "[    0.6] PATCHGEN: #1 info start stress=64 leak-slack=20\n"
            "[    0.7] PATCHGEN: #2 check setup PASS uid 0\n"
            "[    0.9] PATCHGEN: info test exited with status 137\n")
    (reason,) = parse_serial_log(text).reasons
    assert reason == ("the test started but stopped midway, before its "
                      "result; its last line: check setup PASS uid 0; /init "
                      "saw it exit with status 137, killed by SIGKILL "
                      "(signal 9)")


def _both_channels(text: str, drop_console: bool = False) -> str:
    """*text*'s PATCHGEN lines as the new guest writes them: numbered, each
    once through the kernel log (timestamped) and once on the console."""
    out, seq = [], 0
    for line in text.splitlines():
        body = strip_timestamp(line)
        if not body.startswith("PATCHGEN: ") or " info guest up" in body \
                or " info test exited" in body:
            out.append(line)
            continue
        seq += 1
        numbered = body.replace("PATCHGEN: ", f"PATCHGEN: #{seq} ", 1)
        out.append(f"[    9.{seq:06d}] {numbered}")
        if not drop_console:
            out.append(numbered)
    return "\n".join(out) + "\n"


def test_each_line_counts_once_when_it_comes_both_ways():
    plain = parse_serial_log(log("pass-6.1.log"))
    doubled = parse_serial_log(_both_channels(log("pass-6.1.log")))
    assert doubled.passed
    assert doubled.checks == plain.checks
    # The 4.9 case: nothing written to the console arrived.
    kmsg_only = parse_serial_log(_both_channels(log("pass-6.1.log"), True))
    assert kmsg_only.passed and kmsg_only.checks == plain.checks


def test_a_real_log_with_both_channels_counts_each_check_once():
    verdict = parse_serial_log(log("pass-both-channels-6.1.log"))
    assert verdict.passed, verdict.reasons
    names = [c.name for c in verdict.checks]
    assert len(names) == len(set(names)) == 14
    assert soft_offlines(verdict) == 65


def test_a_console_copy_cut_by_a_kernel_message_loses_to_the_kmsg_copy():
    text = (KERNEL_ONLY
            + "PATCHGEN: info guest up, kernel 6.1\n"
            "PATCHGEN: #1 info start stress=0\n"
            "PATCHGEN: #2 check setup PA[    1.0] Soft offlining pfn 0x10 at "
            "process virtual address 0x7f00\n"
            "SS uid 0\n"
            "[    1.1] PATCHGEN: #2 check setup PASS uid 0\n"
            "[    1.0] PATCHGEN: #1 info start stress=0\n"
            "[    1.2] PATCHGEN: #3 result PASS 0 of 1 checks failed\n")
    verdict = parse_serial_log(text)
    assert verdict.passed, verdict.reasons
    assert [(c.name, c.passed) for c in verdict.checks] == [("setup", True)]


def test_a_kmsg_line_that_starts_inside_a_console_line_is_its_own_line():
    """Seen on a real 4.14.67 debug boot: the console copy of #2 was cut
    by the kernel log's copy of #3, a FAIL, which came through nowhere
    else.  The FAIL must count, and be named."""
    text = (KERNEL_ONLY
            + "PATCHGEN: info guest up, kernel 4.14\n"
            "[    1.0] PATCHGEN: #1 info start stress=0\n"
            "[    1.1] PATCHGEN: #2 check setup PASS uid 0\n"
            "PATCHGEN: #2 check setup PASS u[    1.2] PATCHGEN: #3 check "
            "unpoison-leak FAIL 66 missing\n"
            "[    1.3] PATCHGEN: #4 result FAIL 1 of 2 checks failed\n")
    verdict = parse_serial_log(text)
    assert not verdict.passed
    assert [(c.name, c.passed) for c in verdict.checks] == [
        ("setup", True), ("unpoison-leak", False)]
    assert verdict.checks[1].detail == "66 missing"
    assert any("unpoison-leak" in reason for reason in verdict.reasons)


@pytest.mark.parametrize("line,kind", [
    ("[   12.5] WARNING: CPU: 0 PID: 1 at mm/page_alloc.c:1234 f+0x1/0x2",
     "WARNING"),
    ("[    3.1] BUG: unable to handle page fault for address: 0000", "BUG"),
    ("Oops: 0000 [#1] PREEMPT SMP", "oops"),
    ("rcu: INFO: rcu_sched self-detected stall on CPU", "RCU stall"),
    ("INFO: rcu_sched detected stalls on CPUs/tasks:", "RCU stall"),
    ("INFO: task soft_offline_te:20 blocked for more than 120 seconds.",
     "hung task"),
    ("Kernel panic - not syncing: Attempted to kill init!", "panic"),
    ("BUG: Bad page state in process a.out  pfn:1a0b", "bad page state"),
    ("Call Trace:", "call trace"),
])
def test_each_kernel_complaint_turns_a_pass_into_a_fail(line, kind):
    text = log("pass-6.1.log") + line + "\n"
    verdict = parse_serial_log(text)
    assert not verdict.passed
    assert [p.kind for p in verdict.problems] == [kind]
    assert line.split("] ")[-1] in verdict.offending[0]


def test_a_failed_check_alone_fails():
    text = log("pass-6.1.log").replace(
        "PATCHGEN: check unpoison-leak PASS", "PATCHGEN: check unpoison-leak FAIL")
    verdict = parse_serial_log(text)
    assert not verdict.passed
    assert verdict.reasons[0].startswith("check unpoison-leak failed")


def test_both_spellings_of_the_soft_offline_line():
    # 6.1 (recorded above) and the 4.x format, which no tree here prints.
    lines = ["[    0.71] Soft offlining pfn 0x1a0b at process virtual "
             "address 0x7f57bbbbf000",
             "[    1.20] Soft offlining page 0x3f2c at 0x7fd4a1e00000",
             "Soft offlining page 0x10 at 0x20 and more"]
    assert count_lines([strip_timestamp(x) for x in lines], SOFT_OFFLINES) == 3
    assert count_lines(["Soft offlining pfn 0x10"], SOFT_OFFLINES) == 0


def test_the_engine_parser_reads_the_protocol_and_the_recipe_adds_its_own():
    """Without a recipe: the guest protocol and the kernel's own complaints
    only; a recipe adds its counts and its complaints (a made-up one here)."""
    text = ("PATCHGEN: #1 info start\n"
            "[    1.000000] widget: frobbed 3 times\n"
            "[    1.100000] widget: frobbed 4 times\n"
            "[    1.200000] widget: lost a frob\n"
            "PATCHGEN: #2 check frob PASS 7 frobs\n"
            "PATCHGEN: #3 result PASS 1 check\n")
    generic = parse_with(text)
    assert generic.passed and generic.counts == ()
    assert "soft_offlined_pages" not in generic.to_dict()
    recipe = VerifyRecipe(
        program=Path("frob.c"), configs={"default": VerifyConfig((Path("f"),))},
        lava_suite="patchgen-frob", kcidb_test="patchgen.frob",
        counts=(LogCount("frobs", "frobs logged", (r"frobbed \d+ times",)),),
        kernel_problems=(("lost frob", r"lost a frob"),))
    verdict = parse_with(text, recipe=recipe)
    assert verdict.counts == (("frobs", "frobs logged", 2),)
    assert verdict.to_dict()["frobs"] == 2
    assert not verdict.passed
    assert verdict.reasons == ("the kernel reported lost frob once (first: "
                               "widget: lost a frob)",)
    # hwpoison's kill line is that rule's complaint, not the engine's.
    kill = text.replace("widget: lost a frob",
                        "MCE: Killing t:9 due to hardware memory corruption")
    assert parse_with(kill).passed
    assert not parse_serial_log(kill).passed


def test_verdict_json_shape():
    data = parse_serial_log(log("broken-free-path-6.1.log")).to_dict()
    json.dumps(data)
    assert data["verdict"] == "FAIL"
    assert data["checks"] and data["kernel_problems"]


# --- the build's config check and error extraction ----------------------

def test_fragment_asks_for_what_the_test_needs():
    symbols = required_symbols(read_fragment(FRAGMENT))
    for name in ("MEMORY_FAILURE", "HWPOISON_INJECT", "DEBUG_FS",
                 "PROC_SYSCTL", "PROC_PAGE_MONITOR", "ADVISE_SYSCALLS",
                 "COMPACTION", "MIGRATION", "X86_MCE", "BLK_DEV_INITRD",
                 "SERIAL_8250_CONSOLE", "DEVTMPFS"):
        assert f"CONFIG_{name}" in symbols
    # No version-specific symbol: every one of these exists in 4.5 ... 6.x.
    assert len(symbols) == len(set(symbols))


def test_the_configs_and_what_they_ask_of_the_boot(tmp_path):
    default, debug = load_config(), load_config("debug")
    assert (default.name, default.smp, default.kernel_args) == ("default", 1,
                                                                 ())
    assert debug.fragment.startswith(default.fragment)
    assert debug.smp == 2 and debug.memory_mb == 512
    assert "page_owner=on" in debug.kernel_args
    assert any(a.startswith("movablecore=") for a in debug.kernel_args)
    assert debug.optional == ("CONFIG_MEMCG_KMEM",)
    for symbol in ("CONFIG_DEBUG_VM", "CONFIG_PAGE_OWNER", "CONFIG_MEMCG",
                   "CONFIG_TRANSPARENT_HUGEPAGE", "CONFIG_SLUB_DEBUG",
                   "CONFIG_MEMORY_HOTREMOVE", "CONFIG_SMP"):
        assert symbol in required_symbols(debug.fragment)
    assert {"--race", "--memory-offline", "--sysfs"} <= set(debug.guest_args)
    extra = tmp_path / "mine.config"
    extra.write_text("# patchgen-cmdline: quiet\nCONFIG_KASAN=y\n")
    mine = load_config(str(extra))
    assert mine.name == "mine.config" and mine.kernel_args == ("quiet",)
    assert mine.fragment.startswith(default.fragment)
    with pytest.raises(BadBuildConfig, match="no such config"):
        load_config("nope")
    extra.write_text("# patchgen-boot: cpus=2\n")
    with pytest.raises(BadBuildConfig, match="bad patchgen-boot setting"):
        load_config(str(extra))


def test_the_guest_is_asked_for_the_configs_checks():
    init = init_script("soft_offline_test", 8, load_config("debug").guest_args)
    assert "/soft_offline_test --stress 8 --sysfs 8 --race 600 " \
           "--memory-offline 8" in init
    argv = bootmod.qemu_argv(Path("/k"), Path("/i"), smp=2,
                             extra_kernel_args=("page_owner=on",))
    assert argv[argv.index("-smp") + 1] == "2,sockets=2,cores=1,threads=1"
    assert argv[argv.index("-append") + 1].endswith("page_owner=on")


def test_missing_symbols_names_each_one():
    fragment = "CONFIG_A=y\nCONFIG_B=y\n# CONFIG_C is not set\nCONFIG_D=y\n"
    config = "CONFIG_A=y\n# CONFIG_B is not set\nCONFIG_D=m\nCONFIG_DX=y\n"
    assert missing_symbols(config, fragment) == ["CONFIG_B", "CONFIG_D"]
    assert missing_symbols("CONFIG_A=y\nCONFIG_B=y\nCONFIG_D=y\n", fragment) == []


def test_first_errors_from_a_real_failed_build_log():
    errors = first_errors(log("build-error-6.1.log"))
    assert errors[0].startswith("mm/memory-failure.c:") or \
        "mm/memory-failure.c:" in errors[0]
    assert "error:" in errors[0] and "this_is_not_declared" in errors[0]
    assert len(errors) <= 8
    assert not any(line.startswith("  CC ") for line in errors)


def test_first_errors_falls_back_to_make_and_linker_lines():
    text = "  LD      vmlinux\nld: mm/a.o: in function `f':\n" \
           "a.c:(.text+0x1): undefined reference to `g'\n" \
           "make[1]: *** [Makefile:1: vmlinux] Error 1\n"
    assert "undefined reference to `g'" in first_errors(text)[0] or \
        "undefined reference" in " ".join(first_errors(text))
    assert first_errors("x\nmake: *** [all] Error 2\n") == ["make: *** [all] Error 2"]


def kernel_shaped(folder: Path) -> Path:
    (folder / "arch" / "x86").mkdir(parents=True)
    (folder / "Makefile").write_text("all:\n")
    (folder / "Kconfig").write_text("")
    return folder


def test_tree_checks(tmp_path):
    with pytest.raises(NotAKernelTree, match="there is no folder"):
        check_kernel_tree(tmp_path / "nope")
    with pytest.raises(NotAKernelTree, match="is not a Linux source tree"):
        check_kernel_tree(tmp_path)
    tree = kernel_shaped(tmp_path / "linux")
    assert check_kernel_tree(tree) == tree.resolve()
    (tree / ".config").write_text("CONFIG_X=y\n")
    # Configured in place is still a tree; only a build of it, outside git,
    # is refused (verify builds a git tree from a private clone instead).
    assert check_kernel_tree(tree) == tree.resolve()
    assert configured_in_place(tree) == [tree / ".config"]
    with pytest.raises(NotAKernelTree, match="is not a git repository"):
        refuse_in_place(tree)


def test_a_tracked_config_stays_in_the_users_tree_and_leaves_the_clone(
        tmp_path):
    """A vendor tree that commits its .config (and generated headers): the
    private clone drops them after every checkout and git am, the user's
    tree and repository keep them untouched."""
    from checkhelp import git as run_git, tree_state
    from patchgen.engine.sources import GitKernelTree
    from patchgen.kernel.workspace import persistent_workspace
    import git as gitpython

    tree = kernel_shaped(tmp_path / "vendor")
    (tree / ".config").write_text("CONFIG_MEMORY_FAILURE=y\n")
    (tree / "include" / "generated").mkdir(parents=True)
    (tree / "include" / "generated" / "autoconf.h").write_text("#define X 1\n")
    (tree / "arch" / "x86" / "include" / "generated").mkdir(parents=True)
    (tree / "arch" / "x86" / "include" / "generated" / "a.h").write_text("\n")
    (tree / "mm").mkdir()
    (tree / "mm" / "x.c").write_text("int x;\n")
    run_git(tree, "init", "-q")
    run_git(tree, "add", "-A")
    run_git(tree, "-c", "user.name=T", "-c", "user.email=t@example.org",
            "commit", "-qm", "vendor tree")
    before = tree_state(tree)
    repo = gitpython.Repo(tree)
    with persistent_workspace(GitKernelTree(tree, repo, ""), "HEAD",
                              tmp_path / "work") as workspace:
        top = workspace.kernel_root
        assert (top / "mm" / "x.c").is_file()
        assert configured_in_place(top) == []
        mail = tmp_path / "0001.patch"
        (top / "mm" / "x.c").write_text("int x;\nint y;\n")
        diff = run_git(top, "diff", "HEAD", "--", "mm/x.c")
        run_git(top, "checkout", "-q", "--", "mm/x.c")
        mail.write_text("From: T <t@example.org>\nSubject: [PATCH] mm: y\n"
                        "Date: Wed, 6 Apr 2016 12:00:00 +0000\n\nAdd y.\n---\n"
                        + diff)
        outcome = workspace.am(mail)
        assert outcome.applied, outcome.error
        assert configured_in_place(top) == []
        # The commit git am made still tracks the vendor's files.
        listed = run_git(top, "ls-tree", "-r", "--name-only", "HEAD")
        assert ".config" in listed.split()
    repo.close()
    assert tree_state(tree) == before
    assert (tree / ".config").read_text() == "CONFIG_MEMORY_FAILURE=y\n"


# --- the initramfs ------------------------------------------------------

def test_cpio_round_trip_and_padding():
    import io
    buf = io.BytesIO()
    cpio = CpioWriter(buf)
    cpio.add_dir("dev")
    cpio.add_char_device("dev/console", 5, 1)
    cpio.add_file("init", b"#!/bin/sh\n", 0o755)
    cpio.add_file("odd", b"x" * 5)
    cpio.add_symlink("sh", "busybox")
    cpio.close()
    data = buf.getvalue()
    assert len(data) % 4 == 0
    assert data.startswith(b"070701")
    entries = {e["name"]: e for e in read_cpio(data)}
    assert entries["dev/console"]["rdev"] == (5, 1)
    assert entries["dev/console"]["mode"] & 0o170000 == 0o020000
    assert entries["odd"]["data"] == b"xxxxx"
    assert entries["sh"]["data"] == b"busybox"
    assert entries["init"]["mode"] & 0o777 == 0o755
    with pytest.raises(ValueError):
        cpio.add_file("late", b"")
    with pytest.raises(ValueError):
        CpioWriter(io.BytesIO()).add_file("../escape", b"")


def test_the_real_cpio_tool_reads_our_archive(tmp_path):
    need_tool("cpio")
    archive = tmp_path / "a.cpio"
    with open(archive, "wb") as out:
        write_initramfs(out, busybox=b"BB" * 1001, program=b"\x7fELF...",
                        init=init_script("soft_offline_test", 16),
                        name="soft_offline_test")
    listing = subprocess.run(["cpio", "-itv"], stdin=open(archive, "rb"),
                             capture_output=True, text=True, check=True)
    assert "dev/console" in listing.stdout
    console = next(line for line in listing.stdout.splitlines()
                   if line.endswith("dev/console"))
    assert console.startswith("c") and "5," in console and " 1 " in console
    out = tmp_path / "x"
    out.mkdir()
    subprocess.run(["cpio", "-idm", "--no-absolute-filenames"],
                   stdin=open(archive, "rb"), cwd=out, check=True,
                   capture_output=True)
    assert (out / "bin" / "busybox").read_bytes() == b"BB" * 1001
    assert os.readlink(out / "bin" / "sh") == "busybox"
    init = (out / "init").read_text()
    assert "--stress 16" in init and "reboot -f" in init
    assert os.access(out / "init", os.X_OK)


def test_busybox_and_the_test_program_are_static():
    busybox = find_busybox()
    assert is_static_elf(busybox)
    need_tool("gcc")
    program = compile_test_program(TEST_SOURCE)
    assert is_static_elf(program)
    assert not is_static_elf(Path(sys.executable).resolve())


def test_the_guest_program_compiles_without_warnings(tmp_path):
    need_tool("gcc")
    result = subprocess.run(["gcc", "-static", "-O2", "-Wall", "-Wextra",
                             "-Werror", "-o", tmp_path / "t", TEST_SOURCE],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_full_disk_is_one_clear_error():
    # /dev/full answers every write with ENOSPC, as a full disk does.
    with open("/dev/full", "wb", buffering=0) as full:
        with pytest.raises(CacheFull, match="is full"):
            write_all(full, b"x" * 65536, Path("/cache"))


# --- qemu ---------------------------------------------------------------

def test_qemu_argv_tcg_default():
    argv = bootmod.qemu_argv(Path("/k/bzImage"), Path("/i.cpio"))
    assert all(isinstance(a, str) for a in argv)
    assert argv[0] == "qemu-system-x86_64"
    assert "-no-reboot" in argv and "-enable-kvm" not in argv
    assert argv[argv.index("-accel") + 1] == "tcg"
    assert argv[argv.index("-nic") + 1] == "none"
    assert "-nodefaults" in argv
    append = argv[argv.index("-append") + 1]
    assert "panic=-1" in append.split() and "console=ttyS0" in append.split()
    assert shlex.split(shlex.join(argv)) == argv


def test_qemu_argv_kvm_is_opt_in():
    argv = bootmod.qemu_argv(Path("/k"), Path("/i"), kvm=True, memory_mb=512)
    assert argv[1:4] == ["-enable-kvm", "-cpu", "host"]
    assert "tcg" not in argv
    assert argv[argv.index("-m") + 1] == "512"


def test_kvm_without_a_usable_device(tmp_path):
    with pytest.raises(KvmUnavailable, match="drop --kvm"):
        bootmod.check_kvm(tmp_path / "kvm")
    with pytest.raises(KvmUnavailable, match="does not answer the KVM API"):
        bootmod.check_kvm(Path("/dev/null"))


def test_stream_stops_a_command_at_its_timeout(tmp_path):
    result = stream(["sh", "-c", "echo first; sleep 30; echo never"],
                    timeout=1, log_path=tmp_path / "log")
    assert result.timed_out and result.seconds < 20
    assert result.output == "first\n"
    assert (tmp_path / "log").read_text() == "first\n"


# --- bad input through the real CLI --------------------------------------

def cli(*args, env=None, cwd=None):
    full = dict(os.environ, PYTHONPATH=str(ROOT))
    full.update(env or {})
    return subprocess.run([sys.executable, "-m", "patchgen", *args],
                          capture_output=True, text=True, env=full, cwd=cwd,
                          timeout=600)


def one_clear_sentence(result):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("patchgen: error: ")
    assert "Traceback" not in result.stderr


def test_cli_no_tree(tmp_path):
    result = cli("verify", "--tree", str(tmp_path / "missing"))
    assert result.returncode == 40
    one_clear_sentence(result)


def test_cli_not_a_kernel_tree(tmp_path):
    result = cli("verify", "--tree", str(tmp_path))
    assert result.returncode == 40
    one_clear_sentence(result)
    assert "not a Linux source tree" in result.stderr


def test_cli_a_tree_with_a_tracked_config_is_built_from_the_clone(tmp_path):
    """Routing only (a kernel-shaped folder has no real Kbuild): verify of a
    git tree that tracks .config goes to the private clone, with the
    user's uncommitted change applied there; the tree stays as it was."""
    from checkhelp import git as run_git, tree_state
    need_tool("busybox")
    need_tool("qemu-system-x86_64")
    tree = kernel_shaped(tmp_path / "vendor")
    (tree / "arch" / "x86" / "Kconfig").write_text("")   # git keeps files
    (tree / ".config").write_text("CONFIG_64BIT=y\n")
    (tree / "mm").mkdir()
    (tree / "mm" / "x.c").write_text("int x;\n")
    run_git(tree, "init", "-q")
    run_git(tree, "add", "-A")
    run_git(tree, "-c", "user.name=T", "-c", "user.email=t@example.org",
            "commit", "-qm", "vendor tree")
    (tree / "mm" / "x.c").write_text("int x;\nint uncommitted;\n")
    before = tree_state(tree)
    cache = tmp_path / "cache"
    result = cli("verify", "--tree", str(tree),
                 env={"PATCHGEN_CACHE": str(cache)})
    assert result.returncode == 41, result.stderr   # make tinyconfig fails
    assert "mrproper" not in result.stderr and "Traceback" not in result.stderr
    assert str(cache / "workspaces") in result.stderr
    (clone,) = (cache / "workspaces").glob("*/src")
    assert not (clone / ".config").exists()
    assert (clone / "mm" / "x.c").read_text() == "int x;\nint uncommitted;\n"
    assert tree_state(tree) == before


def test_cli_a_configured_tree_outside_git_is_refused_in_one_sentence(
        tmp_path):
    tree = kernel_shaped(tmp_path / "linux")
    (tree / ".config").write_text("CONFIG_64BIT=y\n")
    result = cli("verify", "--tree", str(tree),
                 env={"PATCHGEN_CACHE": str(tmp_path / "cache")})
    assert result.returncode == 40
    one_clear_sentence(result)
    assert "is not a git repository" in result.stderr


def path_without(tmp_path, *missing):
    """A PATH folder with links to the tools verify uses, except *missing*."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for tool in ("qemu-system-x86_64", "busybox", "make", "gcc", "git",
                 "sh", "cpio", "as", "ld"):
        found = shutil.which(tool)
        if found and tool not in missing:
            (folder / tool).symlink_to(found)
    return str(folder)


def test_cli_missing_qemu_names_the_package(tmp_path):
    need_tool("busybox")
    tree = kernel_shaped(tmp_path / "linux")
    result = cli("verify", "--tree", str(tree),
                 env={"PATH": path_without(tmp_path, "qemu-system-x86_64")})
    assert result.returncode == 10
    one_clear_sentence(result)
    assert "qemu-system-x86" in result.stderr


def test_cli_missing_busybox_names_the_package(tmp_path):
    need_tool("qemu-system-x86_64")
    tree = kernel_shaped(tmp_path / "linux")
    result = cli("verify", "--tree", str(tree),
                 env={"PATH": path_without(tmp_path, "busybox")})
    assert result.returncode == 10
    one_clear_sentence(result)
    assert "busybox-static" in result.stderr


def test_cli_series_errors(tmp_path):
    need_tool("qemu-system-x86_64")
    need_tool("busybox")
    need_tool("git")
    tree = kernel_shaped(tmp_path / "linux")
    result = cli("verify", "--tree", str(tree), "--series", "topic")
    assert result.returncode == 3, result.stderr
    one_clear_sentence(result)
    assert "not a git repository" in result.stderr

    env = {"GIT_AUTHOR_NAME": "T", "GIT_AUTHOR_EMAIL": "t@example.org",
           "GIT_COMMITTER_NAME": "T", "GIT_COMMITTER_EMAIL": "t@example.org"}
    git = ["git", "-C", str(tree)]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], check=True,
                   env=dict(os.environ, **env))
    subprocess.run([*git, "branch", "topic"], check=True)
    result = cli("verify", "--tree", str(tree), "--series", "no-such-branch")
    assert result.returncode == 15
    one_clear_sentence(result)
    result = cli("verify", "--tree", str(tree), "--series", "topic")
    assert result.returncode == 47
    one_clear_sentence(result)
    assert "no commits on top of its base" in result.stderr
    # SERIES spelled as check spells it: the same series, the same answer.
    positional = cli("verify", "--tree", str(tree), "topic")
    assert (positional.returncode, positional.stderr) == (47, result.stderr)
    both = cli("verify", "--tree", str(tree), "topic", "--series", "other")
    assert both.returncode == 2
    one_clear_sentence(both)
    assert "two series: topic and --series other" in both.stderr
    empty = tmp_path / "empty-series"
    empty.mkdir()
    result = cli("verify", "--tree", str(tree), "--series", str(empty))
    assert result.returncode == 47
    one_clear_sentence(result)


def test_cli_full_cache_disk(tmp_path):
    """A really full disk under the cache: a 64 kB tmpfs."""
    need_tool("qemu-system-x86_64")
    need_tool("busybox")
    mount = tmp_path / "full"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)],
            capture_output=True).returncode != 0:
        # Not a missing tool: this machine does not let us mount.
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        tree = kernel_shaped(tmp_path / "linux")
        result = cli("verify", "--tree", str(tree),
                     env={"PATCHGEN_CACHE": str(mount)})
        assert result.returncode == 44, result.stderr
        one_clear_sentence(result)
        assert "is full" in result.stderr
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_cli_bad_numbers(tmp_path):
    result = cli("verify", "--tree", str(tmp_path), "--stress", "-3")
    assert result.returncode == 2
    assert "out of range" in result.stderr


def test_qemu_that_cannot_boot_the_file_is_a_boot_error(tmp_path):
    need_tool("qemu-system-x86_64")
    kernel = tmp_path / "bzImage"
    kernel.write_bytes(b"this is not a kernel\n" * 100)
    initrd = tmp_path / "initrd"
    initrd.write_bytes(b"")
    with pytest.raises(BootFailed, match="qemu could not boot") as caught:
        bootmod.boot(kernel, initrd, tmp_path / "serial.log", timeout=60)
    # qemu's own complaint is quoted, e.g. "qemu: linux kernel too old ..."
    assert "): qemu" in str(caught.value)


def test_first_errors_names_kconfig_s_own_complaint_not_make_s():
    # The shape of a real 4.14.67 export that lacked drivers/gpu/drm/amd:
    # what failed is the sourced Kconfig, not the four make[N] lines.
    text = ("scripts/kconfig/conf  --allnoconfig Kconfig\n"
            'drivers/gpu/drm/Kconfig:192: can\'t open file '
            '"drivers/gpu/drm/amd/amdgpu/Kconfig"\n'
            "make[5]: *** [scripts/kconfig/Makefile:87: allnoconfig] Error 1\n"
            "make[4]: *** [Makefile:512: allnoconfig] Error 2\n")
    assert first_errors(text, 4) == [
        'drivers/gpu/drm/Kconfig:192: can\'t open file '
        '"drivers/gpu/drm/amd/amdgpu/Kconfig"']
    # A kconfig warning is not the error.
    assert first_errors("arch/Kconfig:7: warning: x\nmake: *** [a] Error 2\n") \
        == ["make: *** [a] Error 2"]
