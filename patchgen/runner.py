"""The one place that runs external commands (git, make, qemu, checkpatch).

Commands are argument lists, never shell strings; every call has a
timeout; every command is logged (logger "patchgen.run") in a form a user
can paste into a shell to rerun it by hand.
"""

import logging
import os
import shlex
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

from patchgen.errors import CommandFailed, CommandTimeout, ToolMissing

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


@dataclass(frozen=True)
class Result:
    argv: tuple
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def describe(argv: Sequence[str], cwd=None) -> str:
    """The command as a user would type it."""
    line = shlex.join([str(a) for a in argv])
    return f"cd {shlex.quote(str(cwd))} && {line}" if cwd else line


def run(argv: Sequence, *, cwd=None, env: Mapping[str, str] | None = None,
        timeout: float = 120, check: bool = True, input: str | bytes | None = None,
        text: bool = True) -> Result:
    """Run *argv* and return its Result.

    Raises ToolMissing when the program does not exist, CommandTimeout when
    it outlives *timeout* seconds, CommandFailed on a non-zero exit when
    *check* is true.
    """
    argv = tuple(str(a) for a in argv)
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    log.debug("$ %s", describe(argv, cwd))
    start = time.monotonic()
    try:
        proc = subprocess.run(argv, cwd=cwd, env=full_env, input=input,
                              capture_output=True, text=text, timeout=timeout)
    except FileNotFoundError as exc:
        if cwd is not None and not Path(cwd).is_dir():
            raise CommandFailed(f"cannot run {argv[0]}: folder {cwd} does not exist") from exc
        pkg = DEBIAN_PACKAGE.get(Path(argv[0]).name)
        hint = f" (Debian package {pkg})" if pkg else ""
        raise ToolMissing(f"{argv[0]} is not installed: install it{hint} and retry") from exc
    except subprocess.TimeoutExpired as exc:
        raise CommandTimeout(
            f"{describe(argv, cwd)} did not finish within {timeout:.0f} s") from exc
    result = Result(argv, proc.returncode, proc.stdout, proc.stderr,
                    time.monotonic() - start)
    if check and proc.returncode != 0:
        err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode(errors="replace")
        first = err.strip().splitlines()[:1]
        why = f": {first[0]}" if first else ""
        raise CommandFailed(
            f"{describe(argv, cwd)} failed with exit code {proc.returncode}{why}")
    return result
