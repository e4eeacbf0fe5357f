"""verify's boot as a LAVA job: the job definition, the qemu device
dictionary, and LAVA's results read back into patchgen's verdict.

A job has three actions, the shape LAVA labs run for device_type qemu:

- deploy to tmpfs: the kernel and the initramfs as images (file:// URLs
  here, or under a URL prefix the user's lab can fetch), with the same
  kernel command line as the direct boot (boot.KERNEL_ARGS);
- boot method qemu, with a prompt that is the guest's first line, so that
  LAVA's own kernel-message detection (panic, BUG, Oops, WARNING) watches
  the whole kernel boot;
- a test action with `monitors`: one LAVA test case per guest check
  ("PATCHGEN: check NAME PASS|FAIL", verdict.py's guest protocol), from
  the guest's start line to its result line, in the test suite the rule's
  recipe names (VerifyRecipe.lava_suite).

The qemu settings (accelerator, memory, CPUs, no network, -no-reboot) come
from boot.qemu_argv, so a LAVA boot and a direct boot run the same
machine.  A lab's own qemu device type fixes most of the command line; the
job's context carries what LAVA lets a job choose (memory, extra options,
no_kvm).  For lava-run on this machine the device dictionary below states
them outright.

Reading back: lava-run's log (and a server's /logs/) is a list of records
({dt, lvl, msg}); "target" records are the serial console, "results"
records the test cases.  The verdict is verdict.parse_serial_log on the
serial lines (the same parser as a direct boot), checked against LAVA's
own test cases: a check LAVA saw fail is never a PASS.
"""

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from patchgen.engine.rule import VerifyRecipe
from patchgen.vm.boot import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, qemu_argv
from patchgen.vm.verdict import Verdict, parse_serial_log

# LAVA's own test suite (the job, the boot); every other one is the guest's.
LAVA_SUITE = "lava"
# The checks' suite of a config that comes with no recipe.
GUEST_SUITE = "patchgen-guest"


def suite_of(config) -> str:
    """The LAVA test suite of *config*'s checks: its recipe's."""
    return config.recipe.lava_suite if config.recipe is not None else GUEST_SUITE
DEVICE_TYPE = "qemu"
ARCH = "x86_64"

# The guest's lines, with or without a "#N " sequence number after the tag,
# and with or without printk's time stamp before it (a copy that went
# through /dev/kmsg).
_TAG = r"PATCHGEN: (?:#\d+ )?"
BOOT_PROMPT = _TAG + r"info guest up"
MONITOR_START = _TAG + r"info start"
MONITOR_END = _TAG + r"result (?:PASS|FAIL)"
MONITOR_PATTERN = (_TAG + r"check (?P<test_case_id>[A-Za-z0-9_.-]+) "
                   r"(?P<result>PASS|FAIL)")
FIXUP = {"PASS": "pass", "FAIL": "fail"}

# LAVA's timeouts are whole minutes or seconds; a job gets the boot timeout
# for its boot and its test, and a margin for the deploy and the end.
DEPLOY_SECONDS = 120
JOB_MARGIN_SECONDS = 120


@dataclass(frozen=True)
class QemuSettings:
    """The direct boot's qemu command line, split the way LAVA wants it:
    the device's options, and the kernel's command line."""

    options: tuple
    kernel_args: str
    memory_mb: int
    kvm: bool


def qemu_settings(*, kvm: bool = False,
                  memory_mb: int = DEFAULT_MEMORY_MB,
                  extra_kernel_args: tuple = (), smp: int = 1) -> QemuSettings:
    """boot.qemu_argv without the binary, -kernel, -initrd and -append,
    each option with its value as one item (LAVA joins them with spaces)."""
    argv = qemu_argv(Path("KERNEL"), Path("INITRD"), kvm=kvm,
                     memory_mb=memory_mb, extra_kernel_args=extra_kernel_args,
                     smp=smp)[1:]
    options, kernel_args, i = [], "", 0
    while i < len(argv):
        arg = argv[i]
        has_value = i + 1 < len(argv) and not argv[i + 1].startswith("-")
        value = argv[i + 1] if has_value else None
        if arg == "-append":
            kernel_args = value or ""
        elif arg not in ("-kernel", "-initrd"):
            options.append(f"{arg} {value}" if has_value else arg)
        i += 2 if has_value else 1
    return QemuSettings(tuple(options), kernel_args, memory_mb, kvm)


def settings_for(options, config) -> QemuSettings:
    """The qemu settings of verify's direct boot of *config* (a
    kbuild.GuestConfig: its memory, kernel arguments and CPUs) under
    *options*, so that a LAVA job boots the same machine."""
    return qemu_settings(
        kvm=options.kvm,
        memory_mb=options.memory_mb or config.memory_mb or DEFAULT_MEMORY_MB,
        extra_kernel_args=tuple(config.kernel_args), smp=config.smp)


def _timeout(seconds: float) -> dict:
    seconds = max(1, int(round(seconds)))
    if seconds % 60 == 0:
        return {"minutes": seconds // 60}
    return {"seconds": seconds}


def job_definition(name: str, kernel_url: str, initrd_url: str, *,
                   settings: QemuSettings, suite: str,
                   boot_timeout: float = DEFAULT_TIMEOUT) -> dict:
    """The LAVA job (as data) that boots one kernel and runs the test; its
    checks are test cases of *suite*."""
    job_seconds = DEPLOY_SECONDS + 2 * boot_timeout + JOB_MARGIN_SECONDS
    # What a lab's qemu device type lets a job set (lava_common's
    # CONTEXT_VARIABLES); the rest of its command line is the lab's.
    context = {"arch": ARCH, "memory": settings.memory_mb,
               "extra_options": [o for o in settings.options
                                 if o.split()[0] in ("-smp", "-no-reboot")]}
    if not settings.kvm:
        context["no_kvm"] = "True"
    return {
        "device_type": DEVICE_TYPE,
        "job_name": name,
        "visibility": "public",
        "priority": "medium",
        "context": context,
        "timeouts": {"job": _timeout(job_seconds),
                     "action": _timeout(2 * boot_timeout),
                     "connection": _timeout(boot_timeout)},
        "actions": [
            {"deploy": {
                "to": "tmpfs",
                "timeout": _timeout(DEPLOY_SECONDS),
                "images": {
                    "kernel": {
                        "image_arg": "-kernel {kernel} -append "
                                     f"\"{settings.kernel_args}\"",
                        "url": kernel_url},
                    "initrd": {"image_arg": "-initrd {initrd}",
                               "url": initrd_url},
                }}},
            {"boot": {
                "method": "qemu",
                "media": "tmpfs",
                "timeout": _timeout(boot_timeout),
                # LAVA watches for kernel messages until a prompt: the
                # guest's first line ends the kernel's part of the boot.
                "prompts": [BOOT_PROMPT],
                "failure_retry": 1,
            }},
            {"test": {
                "timeout": _timeout(boot_timeout),
                "monitors": [{
                    "name": suite,
                    "start": MONITOR_START,
                    "end": MONITOR_END,
                    "pattern": MONITOR_PATTERN,
                    "fixupdict": dict(FIXUP),
                }],
            }},
        ],
    }


def device_dictionary(settings: QemuSettings,
                      boot_timeout: float = DEFAULT_TIMEOUT) -> dict:
    """A rendered device dictionary for device_type qemu, enough for
    lava-run on this machine: what LAVA's base.jinja2 and qemu.jinja2
    would render, with the direct boot's qemu options."""
    minutes = {"minutes": max(1, int(boot_timeout // 60) + 1)}
    return {
        "constants": {
            "posix": {"lava_test_sh_cmd": "/bin/sh",
                      "lava_test_results_dir": "/lava-%s",
                      "lava_test_shell_file": "~/.bashrc"},
            "shutdown-message": "The system is going down for reboot NOW",
            "kernel-start-message": "Linux version [0-9]",
            "default-shell-prompt": "lava-test: # ",
            "spawn_maxread": "4092",
            # One attempt: a kernel that fails its boot is a verdict, and a
            # retry would only hide a boot that fails now and then.
            "failure_retry": 1,
            "boot_retry": 1,
        },
        "parameters": {},
        "available_architectures": ["amd64", "x86_64"],
        "actions": {
            "deploy": {
                "connections": {"serial": None},
                "methods": {"image": {"parameters": {"guest": {
                    "size": 512, "interface": "ide",
                    "driveid": "lavatest"}}}},
            },
            "boot": {
                "connections": {"serial": None},
                "methods": {"qemu": {"parameters": {
                    "command": "qemu-system-x86_64",
                    "options": list(settings.options),
                }}},
            },
        },
        "timeouts": {
            "actions": {name: dict(minutes) for name in (
                "boot-qemu-image", "boot-image-retry", "auto-login-action",
                "lava-test-monitor", "download-retry", "file-download")},
            "connections": {"auto-login-action": dict(minutes),
                            "lava-test-monitor": dict(minutes)},
        },
    }


def dump_yaml(data: dict) -> str:
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False,
                          width=1000)


@dataclass(frozen=True)
class JobFiles:
    """A job written to a folder, with the images it names."""

    label: str
    job: Path
    device: Path
    kernel: Path
    initrd: Path
    definition: dict


def write_job(folder: Path, label: str, kernel: Path, initrd: Path, *,
              settings: QemuSettings, suite: str,
              boot_timeout: float = DEFAULT_TIMEOUT,
              url_prefix: str | None = None, name: str | None = None
              ) -> JobFiles:
    """Copy the kernel and the initramfs into *folder* and write
    <label>.yaml (the job) and device.yaml (the device dictionary) there.
    The images' URLs are file:// paths in *folder*, or *url_prefix* + the
    file's name (the folder as the user's lab will serve it)."""
    folder = Path(folder).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    kernel_copy = folder / f"{label}-bzImage"
    initrd_copy = folder / Path(initrd).name
    shutil.copyfile(kernel, kernel_copy)
    if not initrd_copy.exists():
        shutil.copyfile(initrd, initrd_copy)

    def url(path: Path) -> str:
        if url_prefix:
            return url_prefix.rstrip("/") + "/" + path.name
        return path.as_uri()

    definition = job_definition(name or f"patchgen verify {label}",
                                url(kernel_copy), url(initrd_copy),
                                settings=settings, suite=suite,
                                boot_timeout=boot_timeout)
    job = folder / f"{label}.yaml"
    job.write_text(dump_yaml(definition))
    device = folder / "device.yaml"
    device.write_text(dump_yaml(device_dictionary(settings, boot_timeout)))
    return JobFiles(label, job, device, kernel_copy, initrd_copy, definition)


# --- reading LAVA's results back ------------------------------------------

@dataclass(frozen=True)
class LavaCase:
    suite: str
    name: str           # as the guest spelled it (LAVA's extra.test_case_id)
    result: str         # pass, fail, skip, unknown


@dataclass(frozen=True)
class LavaOutcome:
    """What one LAVA job said: its serial lines, its test cases, and how
    the job itself ended."""

    serial: tuple
    cases: tuple
    job_result: str | None = None       # "pass" / "fail" (the lava/job case)
    error_type: str | None = None
    error_msg: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def timed_out(self) -> bool:
        text = (self.error_msg or "").lower()
        return "timed out" in text or "timeout" in text

    @property
    def guest_cases(self) -> tuple:
        return tuple(c for c in self.cases if c.suite != LAVA_SUITE)


def _record_list(text: str) -> list:
    """lava-run's log (one JSON record a line, after other lines) or a
    server's /logs/ (a YAML list of records)."""
    records = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("- {"):
            line = line[2:]
        if not line.startswith("{"):
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            try:
                item = yaml.safe_load(line)
            except yaml.YAMLError:
                continue
            if isinstance(item, dict):
                records.append(item)
    return records


def read_log(text: str) -> LavaOutcome:
    """A LAVA job log, as lava-run prints it or a server serves it."""
    serial: list[str] = []
    cases: list[LavaCase] = []
    seen: set[tuple[str, str]] = set()
    job_result = error_type = error_msg = None
    for record in _record_list(text):
        level, msg = record.get("lvl"), record.get("msg")
        # "target": the console while an action watches it; "feedback":
        # what it printed after the test action had stopped watching.
        if level in ("target", "feedback") and isinstance(msg, str):
            serial.append(msg)
        elif level == "results" and isinstance(msg, dict):
            suite = str(msg.get("definition", ""))
            extra = msg.get("extra")
            extra = extra if isinstance(extra, dict) else {}
            name = str(extra.get("test_case_id") or msg.get("case", ""))
            result = str(msg.get("result", "unknown"))
            if suite == LAVA_SUITE and name == "job":
                job_result = result
                error_type = msg.get("error_type")
                error_msg = msg.get("error_msg")
                continue
            # A check line reaches the console twice (printed, and through
            # /dev/kmsg): one case per check, a failure winning.
            key = (suite, name)
            if key in seen:
                if result == "fail":
                    cases = [LavaCase(suite, name, "fail")
                             if (c.suite, c.name) == key else c for c in cases]
                continue
            seen.add(key)
            cases.append(LavaCase(suite, name, result))
    return LavaOutcome(tuple(serial), tuple(cases), job_result, error_type,
                       error_msg)


def case_key(name: str) -> str:
    """A test case name as LAVA stores it (lower case, \\W runs as _)."""
    return re.sub(r"\W+", "_", name.strip().lower())


def lava_verdict(outcome: LavaOutcome, *, timeout: float | None = None,
                 recipe: VerifyRecipe | None = None) -> Verdict:
    """patchgen's verdict for a LAVA job: the serial lines through the
    direct boot's parser (with the rule's *recipe*), then LAVA's own
    findings added where they say more (a failed test case, a job LAVA
    ended with an error)."""
    verdict = parse_serial_log("\n".join(outcome.serial),
                               timed_out=outcome.timed_out, timeout=timeout,
                               recipe=recipe)
    reasons = list(verdict.reasons)
    offending = list(verdict.offending)
    parsed = {case_key(c.name): c for c in verdict.checks}
    for case in outcome.guest_cases:
        check = parsed.get(case_key(case.name))
        if case.result == "fail" and (check is None or check.passed):
            reasons.append(f"LAVA recorded check {case.name} as failed")
    if outcome.job_result == "fail" and verdict.passed:
        reasons.append(f"the LAVA job ended with an error "
                       f"({outcome.error_type}: {outcome.error_msg})")
    if reasons == list(verdict.reasons):
        return verdict
    kind = verdict.kind if verdict.kind != "pass" else "fail"
    return Verdict(passed=False, kind=kind, reasons=tuple(reasons),
                   offending=tuple(offending), checks=verdict.checks,
                   problems=verdict.problems,
                   counts=verdict.counts,
                   kernel_version=verdict.kernel_version,
                   guest_result=verdict.guest_result)


def cases_table(outcome: LavaOutcome) -> list[dict]:
    """LAVA's test cases as plain data, for the JSON report."""
    return [{"suite": c.suite, "case": c.name, "result": c.result}
            for c in outcome.cases]


# --- a boot that only writes the job --------------------------------------

NOT_RUN = "not run"


def job_writer(folder: Path, *, url_prefix: str | None = None,
               written: list | None = None):
    """A boot function for verify (verify.BootFn) that writes each kernel's
    job to *folder* and boots nothing; each JobFiles goes to *written*."""
    from patchgen.vm.boot import BootResult

    def write(kernel: Path, initramfs, run_dir: Path, label: str, options,
              config):
        settings = settings_for(options, config)
        files = write_job(folder, label, kernel, initramfs.path,
                          settings=settings, suite=suite_of(config),
                          boot_timeout=options.boot_timeout,
                          url_prefix=url_prefix)
        if written is not None:
            written.append(files)
        booted = BootResult((), files.job, "", 0.0, 0, False,
                            options.boot_timeout)
        verdict = Verdict(passed=False, kind=NOT_RUN,
                          reasons=(f"LAVA job written to {files.job}; "
                                   "nothing was booted",), offending=())
        return booted, verdict

    return write
