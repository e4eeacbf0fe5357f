"""Run verify's LAVA jobs on this machine with Debian's lava-run.

`lava-run --job-id N --output-dir DIR --device device.yaml job.yaml` is
LAVA's own dispatcher, the program a lab's worker runs for each job: it
downloads the images, starts qemu, watches the console and records test
cases.  Its log (JSON records, one a line, on stderr) is kept in the run
folder and read back by lava.read_log.
"""

import itertools
import os
import shlex
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from patchgen.vm.boot import BootResult
from patchgen.infra.errors import LavaDispatcherMissing, LavaRunFailed
from patchgen.vm.initramfs import Initramfs
from patchgen.vm.lava import (JobFiles, LavaOutcome, lava_verdict, read_log,
                              settings_for, suite_of, write_job)
from patchgen.infra.runner import stream
from patchgen.vm.verdict import Verdict

LAVA_RUN = "lava-run"
PACKAGE = "lava-dispatcher"
# lava-run's own start and end around the boot: the deploy, the retries'
# bookkeeping, the power-off.
RUN_MARGIN = 120

_job_numbers = itertools.count(1)


def find_lava_run() -> str:
    found = shutil.which(LAVA_RUN)
    if found is None:
        raise LavaDispatcherMissing(
            f"{LAVA_RUN} is not installed: install the Debian package "
            f"{PACKAGE} (apt-get install {PACKAGE}) and retry")
    return found


def job_id() -> int:
    """A job id no other lava-run on this machine uses now: lava-run works
    in /var/lib/lava/dispatcher/tmp/<id>/ and removes it at the end."""
    return os.getpid() * 1000 + next(_job_numbers) % 1000


@dataclass(frozen=True)
class LavaRun:
    files: JobFiles
    argv: tuple
    log: Path
    seconds: float
    returncode: int
    outcome: LavaOutcome


def run_job(files: JobFiles, output_dir: Path, *, timeout: float) -> LavaRun:
    """Run one job through lava-run; its log goes to output_dir."""
    program = find_lava_run()
    output_dir.mkdir(parents=True, exist_ok=True)
    log = output_dir / f"{files.label}-lava.log"
    argv = [program, "--job-id", str(job_id()),
            "--output-dir", str(output_dir / f"{files.label}-lava"),
            "--device", str(files.device), str(files.job)]
    start = time.monotonic()
    result = stream(argv, timeout=timeout + RUN_MARGIN, log_path=log)
    seconds = time.monotonic() - start
    outcome = read_log(result.output)
    if result.timed_out:
        raise LavaRunFailed(f"lava-run did not end within "
                            f"{timeout + RUN_MARGIN:.0f} s (log: {log}); "
                            f"rerun it by hand: {shlex.join(argv)}")
    if outcome.job_result is None:
        last = [line for line in result.output.splitlines() if line.strip()]
        raise LavaRunFailed(
            f"lava-run gave no job result (exit status {result.returncode}; "
            f"last line: {last[-1] if last else '(none)'}); log: {log}")
    if outcome.error_type == "Configuration":
        raise LavaRunFailed(f"lava-run refused the job or the device "
                            f"dictionary: {outcome.error_msg} (log: {log})")
    return LavaRun(files, tuple(argv), log, seconds, result.returncode,
                   outcome)


def lava_run_boot(kernel: Path, initramfs: Initramfs, run_dir: Path,
                  label: str, options, config) -> tuple[BootResult, Verdict]:
    """verify's boot (a verify.BootFn), through a LAVA job and lava-run:
    the job and its images are written to run_dir/lava/, the serial lines
    LAVA saw to run_dir/<label>-serial.log."""
    timeout = options.boot_timeout
    settings = settings_for(options, config)
    files = write_job(run_dir / "lava", label, kernel, initramfs.path,
                      settings=settings, suite=suite_of(config),
                      boot_timeout=timeout)
    ran = run_job(files, run_dir, timeout=timeout * 2)
    serial_log = run_dir / f"{label}-serial.log"
    text = "\n".join(ran.outcome.serial) + "\n"
    serial_log.write_text(text)
    verdict = lava_verdict(ran.outcome, timeout=timeout, recipe=config.recipe)
    booted = BootResult(ran.argv, serial_log, text, ran.seconds,
                        ran.returncode, ran.outcome.timed_out, timeout)
    return booted, verdict
