"""The one place that runs external commands (git, make, qemu, checkpatch).

Commands are argument lists, never shell strings; every call has a
timeout; every command is logged (logger "patchgen.run") in a form a user
can paste into a shell to rerun it by hand.
"""

import logging
import os
import shlex
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from patchgen.infra.errors import (CacheFull, CommandFailed, CommandTimeout, DiskFull,
                             ToolMissing)

log = logging.getLogger("patchgen.run")

# Which Debian package provides a command, for "install X" messages.
DEBIAN_PACKAGE = {
    "git": "git",
    "gcc": "gcc",
    "make": "make",
    "perl": "perl",
    "qemu-system-x86_64": "qemu-system-x86",
    "busybox": "busybox-static",
    "cpio": "cpio",
    "spatch": "coccinelle",
    "flex": "flex",
    "bison": "bison",
}


# How text from and to a command is coded: UTF-8, any other byte kept.
TEXT = {"encoding": "utf-8", "errors": "surrogateescape"}


def text_bytes(text: str) -> bytes:
    """*text* as the bytes it was read from (see TEXT)."""
    return text.encode("utf-8", "surrogateescape")


def shown(text: str) -> str:
    """*text* with the bytes that are not UTF-8 as U+FFFD, for printing."""
    return text_bytes(text).decode("utf-8", "replace")


@dataclass(frozen=True)
class Result:
    argv: tuple
    returncode: int
    stdout: Any    # str; bytes when run with text=False
    stderr: Any
    seconds: float

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def describe(argv: Sequence[str], cwd=None) -> str:
    """The command as a user would type it."""
    line = shlex.join([str(a) for a in argv])
    return f"cd {shlex.quote(str(cwd))} && {line}" if cwd else line


def _with_environment(env: Mapping[str, str] | None) -> dict | None:
    """This process's environment with *env* over it (None: inherit)."""
    if not env:
        return None
    full_env = dict(os.environ)
    full_env.update(env)
    return full_env


def _not_started(argv: tuple, cwd) -> Exception:
    """Why *argv* could not start: its folder or its program is missing."""
    if cwd is not None and not Path(cwd).is_dir():
        return CommandFailed(f"cannot run {argv[0]}: folder {cwd} does not exist")
    pkg = DEBIAN_PACKAGE.get(Path(argv[0]).name)
    hint = f" (Debian package {pkg})" if pkg else ""
    return ToolMissing(f"{argv[0]} is not installed: install it{hint} and retry")


def run(argv: Sequence, *, cwd=None, env: Mapping[str, str] | None = None,
        timeout: float = 120, check: bool = True, input: str | bytes | None = None,
        text: bool = True, waiting_for: str | None = None,
        finish_on_interrupt: bool = False) -> Result:
    """Run *argv* and return its Result.

    Raises ToolMissing when the program does not exist, CommandTimeout when
    it outlives *timeout* seconds, CommandFailed on a non-zero exit when
    *check* is true.  The command runs in its own process group: on a
    timeout, an interrupt or SIGTERM, the group (the command and anything
    it started, such as a git hook) gets SIGTERM first, so that git removes
    its own lock and temporary files, then SIGKILL.  With *waiting_for*
    (what the command is, for a person), a wait longer than a few seconds
    is reported on stderr while it lasts.  With *finish_on_interrupt*, an
    interrupt first lets the command end (a few seconds at most): git
    writing an object leaves a tmp_obj_* file in the repository when it is
    stopped half-way, and a finished object is harmless (unreachable).
    """
    argv = tuple(str(a) for a in argv)
    full_env = _with_environment(env)
    log.debug("$ %s", describe(argv, cwd))
    start = time.monotonic()
    # git speaks UTF-8 whatever the locale; bytes that are not UTF-8
    # (a Latin-1 line of a kernel file) survive as surrogates and are
    # written back unchanged (text_bytes()).
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=full_env,
                                stdin=subprocess.PIPE if input is not None
                                else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True,
                                encoding=TEXT["encoding"] if text else None,
                                errors=TEXT["errors"] if text else None)
    except FileNotFoundError as exc:
        raise _not_started(argv, cwd) from exc
    except NotADirectoryError as exc:
        raise _not_started(argv, cwd) from exc
    try:
        fault_point(argv)
        stdout, stderr = _communicate(proc, input, timeout, waiting_for, start)
    except subprocess.TimeoutExpired as exc:
        _stop_group(proc)
        raise CommandTimeout(
            f"{step_name(argv)} did not finish within {timeout:.0f} s (rerun "
            "with -v to see the command)") from exc
    except BaseException:
        if finish_on_interrupt:
            try:
                proc.wait(timeout=FINISH_GRACE)
            except BaseException:  # a second signal, or it did not end
                pass
        _stop_group(proc)
        raise
    result = Result(argv, proc.returncode, stdout, stderr,
                    time.monotonic() - start)
    if proc.returncode != 0:
        err = stderr if isinstance(stderr, str) else stderr.decode(errors="replace")
        _no_space(argv, cwd, err)
    if check and proc.returncode != 0:
        first = err.strip().splitlines()[:1]
        why = f": {first[0]}" if first else ""
        # One sentence: the step and git's own words; the whole command
        # line (hundreds of characters) is logged, shown with -v.
        log.info("failed: %s", describe(argv, cwd))
        raise CommandFailed(f"{step_name(argv)} failed with exit code "
                            f"{proc.returncode}{why[:300]} (rerun with -v to "
                            "see the command)")
    return result


def run_git(folder, *args, check: bool = True, timeout: float = 600,
        env: Mapping[str, str] | None = None, input: str | bytes | None = None,
        writes: bool = False) -> Result:
    """`git -C folder ARGS` through run(): the one git helper.

    *writes* is for commands that write objects or refs into a user's
    repository: an interrupt lets them finish (run's finish_on_interrupt)
    rather than leave a half-written tmp_obj_* there."""
    return run(["git", "-C", folder, *args], check=check, timeout=timeout,
               env=env, input=input, finish_on_interrupt=writes)


def step_name(argv: Sequence[str]) -> str:
    """"git update-ref", "perl checkpatch.pl": what a step of a run is."""
    words = [Path(argv[0]).name]
    options_with_value = {"-C", "-c"}
    skip = False
    for arg in argv[1:]:
        if skip:
            skip = False
            continue
        if arg in options_with_value:
            skip = True
            continue
        if not arg.startswith("-"):
            words.append(Path(arg).name if "/" in arg else arg)
            break
    return " ".join(words)


_steps_started = 0


def fault_point(argv: Sequence[str], detail: str = "") -> None:
    """For the fault suite (tests/test_faults.py): with PATCHGEN_FAULT_LOG
    set, each command's step is appended to that file as it starts; with
    PATCHGEN_FAULT_PAUSE=N too, the N-th command, once started, is held
    here (the file gets a "paused" line) so that a test can signal the
    process at exactly that step.  Unset, this costs one lookup."""
    log_path = os.environ.get("PATCHGEN_FAULT_LOG")
    if not log_path:
        return
    global _steps_started
    _steps_started += 1
    pause = os.environ.get("PATCHGEN_FAULT_PAUSE")
    with open(log_path, "a", encoding="utf-8") as out:
        out.write(f"{_steps_started}\t{step_name(argv)}"
                  + (f"\t{detail}" if detail else "") + "\n")
        if pause == str(_steps_started):
            out.write("paused\n")
    if pause == str(_steps_started):
        limit = time.monotonic() + 60
        while time.monotonic() < limit:
            time.sleep(0.02)


NO_SPACE = ("No space left on device", "Disk quota exceeded")


def _no_space(argv: tuple, cwd, err: str) -> None:
    """A command that failed for want of disk space: CacheFull when it
    worked in patchgen's cache, else DiskFull; never a failed check."""
    lines = [line for line in err.splitlines() if any(w in line for w in NO_SPACE)]
    if not lines:
        return
    from patchgen.infra.cache import cache_root
    root = str(cache_root())
    in_cache = any(str(a).startswith(root) for a in (*argv, str(cwd or "")))
    name = f"{Path(argv[0]).name} {argv[1] if len(argv) > 1 else ''}".strip()
    if in_cache:
        raise CacheFull(f"the disk under the cache {root} is full ({name}: "
                        f"{lines[0].strip()[:120]}): free space there or point "
                        "PATCHGEN_CACHE at a larger disk")
    raise DiskFull(f"no space left for {name} ({lines[0].strip()[:120]}): free "
                   "some space and retry")


FINISH_GRACE = 10.0   # seconds an interrupted object write may take to end
PROGRESS_AFTER = 5.0   # seconds of silence before a wait is reported


def _communicate(proc, input, timeout, waiting_for, start):
    """proc.communicate() within *timeout*, saying on stderr every few
    seconds what it waits for when *waiting_for* is given."""
    if waiting_for is None:
        return proc.communicate(input, timeout=timeout)
    deadline = start + timeout
    first = True
    while True:
        left = deadline - time.monotonic()
        try:
            return proc.communicate(input if first else None,
                                    timeout=max(0.01, min(PROGRESS_AFTER, left)))
        except subprocess.TimeoutExpired:
            first = False
            if time.monotonic() >= deadline:
                raise
            log.warning("still waiting for %s (%.0f s of at most %.0f s)",
                        waiting_for, time.monotonic() - start, timeout)


@dataclass(frozen=True)
class StreamResult:
    """What a streamed command left: its whole output, and whether it was
    stopped at its timeout (then returncode is the signal's, negative)."""

    argv: tuple
    returncode: int
    output: str
    seconds: float
    timed_out: bool

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def stream(argv: Sequence, *, cwd=None, env: Mapping[str, str] | None = None,
           timeout: float, on_line: Callable[[str], None] | None = None,
           log_path: Path | None = None,
           append: bool = False) -> StreamResult:
    """Run *argv* with stdout and stderr merged, line by line as they come.

    For long commands whose progress matters (make) and for guests whose
    output is the result (qemu's serial console).  Each line goes to
    *on_line* and to *log_path* (appended to, if *append*) as it arrives.
    At *timeout* seconds the whole process group is stopped (TERM, then
    KILL) and the result says timed_out: the caller decides whether that is
    an error, because a hung guest is a verdict, not a failure of patchgen.  Raises ToolMissing when
    the program does not exist; a non-zero exit is the caller's business.
    """
    argv = tuple(str(a) for a in argv)
    full_env = _with_environment(env)
    log.debug("$ %s", describe(argv, cwd))
    start = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=full_env,
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT,
                                start_new_session=True)
    except FileNotFoundError as exc:
        raise _not_started(argv, cwd) from exc

    lines: list[str] = []
    log_file = open(log_path, "a" if append else "w", encoding="utf-8", errors="replace") if log_path else None
    log_error: list[OSError] = []

    def pump() -> None:
        nonlocal log_file
        # Bytes, not text: a guest's serial line may carry anything.
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
            lines.append(line)
            if log_file:
                try:
                    log_file.write(line + "\n")
                    log_file.flush()
                except OSError as exc:  # a full disk: said after the run
                    log_error.append(exc)
                    try:
                        log_file.close()
                    except OSError:
                        pass
                    log_file = None
            if on_line:
                on_line(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        _stop_group(proc)
    except BaseException:
        _stop_group(proc)
        raise
    finally:
        reader.join(timeout=10)
        assert proc.stdout is not None
        proc.stdout.close()
        if log_file:
            try:
                log_file.close()
            except OSError as exc:
                log_error.append(exc)
    if log_error:
        _no_space(argv, log_path, log_error[0].strerror or str(log_error[0]))
        raise CommandFailed(f"cannot write the log {log_path} "
                            f"({log_error[0].strerror or log_error[0]})")
    return StreamResult(argv, proc.returncode, "\n".join(lines) + ("\n" if lines else ""),
                        time.monotonic() - start, timed_out)


def _stop_group(proc: subprocess.Popen) -> None:
    """Stop *proc* and everything it started (make's children, qemu)."""
    if proc.poll() is not None:
        return
    for sig, grace in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue
