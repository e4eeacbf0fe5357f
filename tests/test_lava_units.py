"""verify's LAVA jobs, without a kernel build: the job and the device
dictionary (checked by the real lava-run --validate), the monitor patterns
on recorded guest lines, and lava-run's log read back into a verdict (a
log recorded from a real lava-run boot of the 6.1 tree, tests/data/lava/).
test_lava_real.py boots real kernels through lava-run.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import ROOT, need_tool
from patchgen.vm.boot import KERNEL_ARGS, qemu_argv
from patchgen.infra.errors import LavaDispatcherMissing
from patchgen.vm.lava import (BOOT_PROMPT, MONITOR_END, MONITOR_PATTERN,
                           MONITOR_START, LavaCase, LavaOutcome,
                           case_key, device_dictionary, job_definition,
                           lava_verdict, qemu_settings, read_log, write_job)
from patchgen.vm.lava_run import find_lava_run
from patchgen.rules.hwpoison.recipe import VERIFY as RECIPE

# The checks' LAVA test suite: the rule's, not the engine's.
SUITE = RECIPE.lava_suite

DATA = Path(__file__).resolve().parent / "data"
PASS_LOG = DATA / "lava" / "pass-6.1-lava-run.log"


def serial(name: str) -> list[str]:
    return (DATA / "verify" / name).read_text().splitlines()


# --- the job and the device dictionary ------------------------------------

def test_qemu_settings_are_the_direct_boots():
    settings = qemu_settings(memory_mb=300)
    direct = qemu_argv(Path("K"), Path("I"), memory_mb=300)
    assert settings.kernel_args == " ".join(KERNEL_ARGS)
    assert settings.kernel_args == direct[direct.index("-append") + 1]
    smp = direct[direct.index("-smp") + 1]
    assert "-m 300" in settings.options and f"-smp {smp}" in settings.options
    assert smp.split(",")[0] == "1"
    assert "-accel tcg" in settings.options
    assert "-no-reboot" in settings.options
    # Every item of qemu's own command line is in the options, except the
    # binary and what LAVA's deploy gives (-kernel, -initrd, -append).
    joined = " ".join(settings.options).split()
    rest = [a for a in direct[1:] if a not in ("-kernel", "K", "-initrd", "I",
                                                "-append",
                                                settings.kernel_args)]
    assert joined == rest
    assert "-enable-kvm" in " ".join(qemu_settings(kvm=True).options)


def test_a_configs_boot_settings_reach_the_job():
    """The debug config boots with two CPUs and its own kernel arguments:
    its LAVA job must boot that machine, not the default one."""
    from patchgen.vm.kbuild import load_config
    from patchgen.vm.lava import settings_for
    from patchgen.vm.verify import VerifyOptions
    debug = load_config(RECIPE, "debug")
    settings = settings_for(VerifyOptions(tree=Path(".")), debug)
    direct = qemu_argv(Path("K"), Path("I"), memory_mb=settings.memory_mb,
                       extra_kernel_args=debug.kernel_args, smp=debug.smp)
    assert settings.kernel_args == direct[direct.index("-append") + 1]
    assert f"-smp {direct[direct.index('-smp') + 1]}" in settings.options
    assert all(arg in settings.kernel_args for arg in debug.kernel_args)
    assert debug.smp == 2 and settings.memory_mb == (debug.memory_mb or 256)


def test_job_definition_shape():
    job = job_definition("t", "file:///k", "file:///i",
                         settings=qemu_settings(), suite=SUITE,
                         boot_timeout=90)
    assert job["device_type"] == "qemu"
    deploy, boot, test = (a[next(iter(a))] for a in job["actions"])
    assert deploy["to"] == "tmpfs"
    assert deploy["images"]["kernel"]["url"] == "file:///k"
    assert deploy["images"]["initrd"]["url"] == "file:///i"
    assert f'-append "{" ".join(KERNEL_ARGS)}"' in \
        deploy["images"]["kernel"]["image_arg"]
    assert boot["method"] == "qemu" and boot["timeout"] == {"seconds": 90}
    (monitor,) = test["monitors"]
    assert monitor["name"] == SUITE
    assert job["context"]["memory"] == 256
    assert job["context"]["no_kvm"] == "True"
    assert "-no-reboot" in job["context"]["extra_options"]


GUEST_LINES = [
    "PATCHGEN: check fresh-single FAIL the page faulted in right after",
    "[    1.524067] PATCHGEN: #8 check fresh-stress PASS 0 of 64 pages",
    "PATCHGEN: #11 check audit-own-stress PASS 0 of 348 pages",
]


def test_monitor_pattern_matches_each_check_line_of_a_real_log():
    lines = serial("broken-free-path-6.1.log") + serial("pass-6.1.log")
    pattern = re.compile(MONITOR_PATTERN)
    checks = [line for line in lines if "PATCHGEN: check " in line]
    assert checks
    for line in checks + GUEST_LINES:
        match = pattern.search(line)
        assert match, line
        assert match.group("result") in ("PASS", "FAIL")
    for line in lines:
        if "PATCHGEN: check " not in line and "check " not in line:
            assert not pattern.search(line), line
    assert re.search(MONITOR_PATTERN, GUEST_LINES[1]).group(
        "test_case_id") == "fresh-stress"


def test_prompt_start_and_end_match_the_guests_lines():
    lines = serial("pass-6.1.log")
    assert any(re.search(BOOT_PROMPT, line) for line in lines)
    assert any(re.search(MONITOR_START, line) for line in lines)
    ends = [line for line in lines if re.search(MONITOR_END, line)]
    assert ends and all("PATCHGEN: result" in line for line in ends)
    assert re.search(MONITOR_END, "PATCHGEN: #16 result PASS 0 of 14 checks")
    # The kernel's own panic line is LAVA's to catch, never a test case.
    panic = serial("panic-at-boot-6.1.log")
    assert not any(re.search(BOOT_PROMPT, line) for line in panic)


def test_case_key_is_lavas_spelling():
    assert case_key("audit-own-stress") == "audit_own_stress"
    assert case_key(" Fresh.Single ") == "fresh_single"


def test_lava_run_validates_the_job_and_the_device(tmp_path):
    """The real lava-run --validate (LAVA's own schema and pipeline
    checks) accepts what write_job writes."""
    need_tool("lava-run")
    kernel, initrd = tmp_path / "bzImage", tmp_path / "initrd.cpio"
    kernel.write_bytes(b"not a kernel: validate only checks the URL")
    initrd.write_bytes(b"not an archive")
    files = write_job(tmp_path / "jobs", "tip", kernel, initrd,
                      settings=qemu_settings(), suite=SUITE,
                      boot_timeout=120)
    assert yaml.safe_load(files.job.read_text()) == files.definition
    assert files.kernel.read_bytes() == kernel.read_bytes()
    result = subprocess.run(
        ["lava-run", "--validate", "--job-id", "1", "--output-dir",
         str(tmp_path / "out"), "--device", str(files.device),
         str(files.job)], capture_output=True, text=True, timeout=120)
    outcome = read_log(result.stdout + result.stderr)
    assert outcome.job_result == "pass", result.stderr[-2000:]
    assert (tmp_path / "out" / "description.yaml").is_file()


def test_url_prefix_names_the_files_under_it(tmp_path):
    kernel, initrd = tmp_path / "k", tmp_path / "i.cpio"
    kernel.write_bytes(b"k")
    initrd.write_bytes(b"i")
    files = write_job(tmp_path / "out", "base", kernel, initrd,
                      settings=qemu_settings(), suite=SUITE,
                      url_prefix="https://lab.example/jobs/")
    images = files.definition["actions"][0]["deploy"]["images"]
    assert images["kernel"]["url"] == "https://lab.example/jobs/base-bzImage"
    assert images["initrd"]["url"] == "https://lab.example/jobs/i.cpio"


def test_device_dictionary_has_what_lava_run_asks_for():
    device = device_dictionary(qemu_settings())
    assert "x86_64" in device["available_architectures"]
    assert "image" in device["actions"]["deploy"]["methods"]
    assert device["constants"]["failure_retry"] == 1
    assert device["constants"]["boot_retry"] == 1
    qemu = device["actions"]["boot"]["methods"]["qemu"]["parameters"]
    assert qemu["command"] == "qemu-system-x86_64"


# --- reading lava-run's log back --------------------------------------------

def test_recorded_lava_run_log_reads_back_as_pass():
    outcome = read_log(PASS_LOG.read_text())
    assert outcome.job_result == "pass" and outcome.error_msg is None
    names = [c.name for c in outcome.guest_cases]
    # One case per check, although each check line came twice.
    assert len(names) == len(set(names)) >= 8
    assert {"fresh-single", "audit-own-stress", "unpoison-leak"} <= set(names)
    assert all(c.result == "pass" for c in outcome.guest_cases)
    assert any(c.suite == "lava" and c.name == "kernel-messages"
               for c in outcome.cases)
    assert any("Linux version" in line for line in outcome.serial)
    assert any("reboot: Restarting system" in line for line in outcome.serial)


def _record(lvl, msg):
    return json.dumps({"dt": "2026-12-02T13:57:42", "lvl": lvl, "msg": msg})


def _log_of(lines, cases, job=None):
    records = [_record("target", line) for line in lines]
    for name, result in cases:
        records.append(_record("results", {
            "case": case_key(name), "definition": SUITE, "result": result,
            "extra": {"test_case_id": name}}))
    records.append(_record("results", job or {"case": "job",
                                              "definition": "lava",
                                              "result": "pass"}))
    return "\n".join(records)


def test_a_failing_check_fails_in_both_the_log_and_lavas_cases():
    lines = serial("broken-free-path-6.1.log")
    cases = [(m.group("test_case_id"), m.group("result").lower())
             for m in map(re.compile(MONITOR_PATTERN).search, lines) if m]
    verdict = lava_verdict(read_log(_log_of(lines, cases)))
    assert not verdict.passed
    failed = {c.name for c in verdict.checks if not c.passed}
    assert {"fresh-single", "audit-own-single"} <= failed
    assert not any("LAVA" in r for r in verdict.reasons)


def test_a_check_lava_saw_fail_is_never_a_pass():
    lines = serial("pass-6.1.log")
    outcome = read_log(_log_of(lines, [("stress", "pass"), ("stress", "fail")]))
    assert outcome.guest_cases == (LavaCase(SUITE, "stress", "fail"),)
    verdict = lava_verdict(outcome)
    assert not verdict.passed and verdict.kind == "fail"
    assert "LAVA recorded check stress as failed" in verdict.reasons


def test_a_lava_job_error_fails_a_guest_that_passed():
    lines = serial("pass-6.1.log")
    job = {"case": "job", "definition": "lava", "result": "fail",
           "error_type": "Infrastructure", "error_msg": "Connection closed"}
    verdict = lava_verdict(read_log(_log_of(lines, [], job)))
    assert not verdict.passed
    assert any("Infrastructure: Connection closed" in r
               for r in verdict.reasons)


def test_a_lava_timeout_is_a_timeout_verdict():
    lines = serial("hang-6.1.log")
    job = {"case": "job", "definition": "lava", "result": "fail",
           "error_type": "Job",
           "error_msg": "lava-test-monitor timed out after 120 seconds"}
    outcome = read_log(_log_of(lines, [], job))
    assert outcome.timed_out
    verdict = lava_verdict(outcome, timeout=120)
    assert verdict.kind == "timeout" and not verdict.passed


def test_a_panic_at_boot_is_a_panic_verdict():
    lines = serial("panic-at-boot-6.1.log")
    job = {"case": "job", "definition": "lava", "result": "fail",
           "error_type": "Job", "error_msg": "Kernel panic - not syncing: x"}
    verdict = lava_verdict(read_log(_log_of(lines, [], job)))
    assert verdict.kind == "panic"


def test_server_logs_as_a_yaml_list_read_the_same():
    text = PASS_LOG.read_text()
    as_server = "\n".join("- " + line for line in text.splitlines()
                          if line.startswith("{"))
    assert read_log(as_server) == read_log(text)


# --- no lava-dispatcher -------------------------------------------------------

def test_no_lava_run_names_the_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LavaDispatcherMissing) as caught:
        find_lava_run()
    assert "lava-dispatcher" in str(caught.value)
    assert caught.value.exit_code == 60


def test_cli_without_lava_run_stops_before_any_build(tmp_path):
    """The real CLI, with a PATH that has python and git but no lava-run: one
    sentence, exit 60, before the tree is even looked at."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    os.symlink(sys.executable, bindir / "python3")
    os.symlink(need_tool("git"), bindir / "git")     # GitPython needs it
    result = subprocess.run(
        [str(bindir / "python3"), "-m", "patchgen", "verify", "--tree",
         str(tmp_path / "no-such-tree"), "--lava-run"],
        capture_output=True, text=True, timeout=60,
        env=dict(os.environ, PATH=str(bindir), PYTHONPATH=str(ROOT)))
    assert result.returncode == 60, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert "lava-dispatcher" in lines[0]


def test_lava_options_that_need_another_are_refused(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "patchgen", "verify", "--tree", str(tmp_path),
         "--lava-url", "https://lab/"], capture_output=True, text=True,
        timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 28
    assert "--lava-url goes with --lava-jobs or --lava-submit" in result.stderr
    result = subprocess.run(
        [sys.executable, "-m", "patchgen", "verify", "--tree", str(tmp_path),
         "--lava-run", "--lava-jobs", str(tmp_path)], capture_output=True,
        text=True, timeout=60, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert result.returncode == 2 and "not allowed with" in result.stderr


def test_recorded_lava_run_log_of_the_broken_free_path_fails():
    """lava-run on the 6.1 kernel without the free-path hook: LAVA's cases
    and patchgen's parser agree on the failing checks."""
    outcome = read_log((DATA / "lava" /
                        "broken-free-path-6.1-lava-run.log").read_text())
    lava_failed = {c.name for c in outcome.guest_cases if c.result == "fail"}
    assert {"fresh-single", "audit-own-single"} <= lava_failed
    verdict = lava_verdict(outcome, timeout=60)
    assert not verdict.passed
    assert {c.name for c in verdict.checks if not c.passed} == lava_failed
    assert not any(r.startswith("LAVA recorded") for r in verdict.reasons)
