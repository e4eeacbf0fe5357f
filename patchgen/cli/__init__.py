"""The command line: the one place that prints and exits.

main(argv) parses the arguments, runs one command and maps every
PatchgenError to its one-sentence message and its exit code.  Each command
lives in a module of this package with NAME, HELP, add_arguments(parser)
and run(args) -> exit status; adding a command adds a module and a line in
COMMANDS.

A command's --tree defaults to the kernel tree the command runs in
(default_tree()).  Verbose output is --verbose only: -v belongs to format,
where it is git format-patch's -v N (--reroll-count), so that no option
letter means two things.
"""

import argparse
import codecs
import errno
import logging
import os
import signal
import sys
import threading
from pathlib import Path

from patchgen import __version__
from patchgen.infra.cache import cache_root
from patchgen.infra.errors import (CacheFull, DiskFull, NotAGitTree, OutputUnwritable,
                             PatchgenError, ReadOnly)
from patchgen.infra.runner import run
from patchgen.infra.scratch import made_for_user
from patchgen.engine.sources import has_kernel_layout
from patchgen.cli import (apply, cache, check, demo, format, rule_test, rules,
                          scan, verify)

COMMANDS = [rules, scan, apply, format, check, verify, demo, rule_test, cache]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patchgen",
        description="Turn a semantic rewrite of kernel C into a verified, "
                    "mailing-list-ready patch series.")
    parser.add_argument("--version", action="version",
                        version=f"patchgen {__version__}")
    parser.add_argument("--verbose", action="store_true",
                        help="print every external command as it runs (no "
                        "short form: -v is format's version number)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        p = sub.add_parser(command.NAME, help=command.HELP,
                           description=command.HELP)
        command.add_arguments(p)
        p.set_defaults(_run=command.run)
    return parser


def default_tree(command: str) -> Path:
    """The kernel tree a command run without --tree works on: the nearest
    folder from here up to the top of the git repository that has the
    kernel's shape (a Makefile and the kernel's folders), else that top (git rev-parse
    --show-toplevel).  scan, which reads any folder, takes the current one
    outside git."""
    here = Path(os.getcwd())
    top = run(["git", "rev-parse", "--show-toplevel"], cwd=here, check=False)
    if top.returncode != 0 or not top.stdout.strip():
        if command == "scan":
            return here
        raise NotAGitTree(f"the current folder {here} is in no git repository: "
                          "run patchgen in the kernel tree, or give --tree")
    top_dir = Path(top.stdout.strip()).resolve()
    for folder in (here.resolve(), *here.resolve().parents):
        if has_kernel_layout(folder):
            return folder
        if folder == top_dir:
            break
    return top_dir


def _unencodable(error: UnicodeError):
    """What stdout and stderr write for a character their locale cannot
    encode: a byte read from a file that was not UTF-8 (a surrogate, see
    runner.TEXT) as that byte, anything else (an em dash or a CJK name in
    a Latin-1 locale) as "?"."""
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start:error.end]
    out = bytearray()
    for char in text:
        code = ord(char)
        out += bytes([code - 0xDC00]) if 0xDC80 <= code <= 0xDCFF else b"?"
    return bytes(out), error.end


codecs.register_error("patchgen-output", _unencodable)


def _tolerant_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="patchgen-output")  # type: ignore[union-attr]
        except (AttributeError, ValueError):  # not a TextIOWrapper (tests)
            pass


class GuardedOutput:
    """stdout that never raises: a reader that went away (`| head -1`) or a
    full device (/dev/full) is noted, further output dropped, and main()
    decides the status: the command's own for a closed pipe (a failing
    check stays 1), 51 for a device that cannot take it."""

    def __init__(self, stream):
        self.stream = stream
        self.error: OSError | None = None

    def _guard(self, action, value):
        if self.error is not None:
            return value
        try:
            return action()
        except OSError as exc:
            self.error = exc
            _silence(self.stream)
            return value

    def write(self, text):
        return self._guard(lambda: self.stream.write(text), len(text))

    def flush(self):
        return self._guard(self.stream.flush, None)

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _silence(stream) -> None:
    """Point *stream*'s file descriptor at /dev/null, so that what is still
    buffered is dropped at exit instead of raising there."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):
        pass


class Terminated(BaseException):
    """SIGTERM arrived: unwound like an interrupt, so cleanups run."""


def _on_sigterm(signum, frame):
    raise Terminated()


def _install_signal_handlers() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def _stop_listening() -> None:
    """After the first interrupt, a second one must not print a traceback
    from a cleanup: ignore both signals while main() finishes."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)


def main(argv=None, *, restore_signals: bool = True) -> int:
    """Run one command; *restore_signals* puts the SIGINT and SIGTERM
    handlers back afterwards (for callers in the same process; the
    command-line entry point leaves them ignored until it exits)."""
    _tolerant_streams()
    given = sys.argv[1:] if argv is None else list(argv)
    if any("\0" in str(arg) for arg in given):
        # exec() cannot pass one; a caller in Python can, and no path, ref
        # or address may hold it.
        print("patchgen: error: an argument holds a NUL byte, which no path, "
              "branch or address can hold: remove it", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="patchgen: %(message)s", stream=sys.stderr)
    stdout = sys.stdout
    guarded = GuardedOutput(stdout)
    sys.stdout = guarded
    try:
        status = _run(args, restore_signals)
        guarded.flush()
    finally:
        sys.stdout = stdout
    if guarded.error is not None and not isinstance(guarded.error, BrokenPipeError):
        print(f"patchgen: error: {OutputUnwritable.describe(guarded.error)}",
              file=sys.stderr)
        return OutputUnwritable.exit_code
    return status


def _left() -> str:
    if made_for_user:
        return ", ".join(made_for_user) + " had been made; nothing else was left"
    return "nothing was left behind"


def _run(args, restore_signals: bool) -> int:
    made_for_user.clear()
    previous = signal.getsignal(signal.SIGTERM) \
        if restore_signals and threading.current_thread() is threading.main_thread() \
        else None
    _install_signal_handlers()
    try:
        # A matrix file names its own trees: no tree from the folder.
        if getattr(args, "tree", False) is None and not getattr(args, "matrix", None):
            args.tree = default_tree(args.command)
        return args._run(args)
    except PatchgenError as exc:
        print(f"patchgen: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        _stop_listening()
        print(f"patchgen: interrupted; {_left()}", file=sys.stderr)
        return 130
    except Terminated:
        _stop_listening()
        print(f"patchgen: terminated; {_left()}", file=sys.stderr)
        return 143
    except OSError as exc:
        logging.getLogger("patchgen").debug("system call failed", exc_info=True)
        problem = environment_problem(exc)
        if problem is None:
            return _internal_error(exc)
        print(f"patchgen: error: {problem}", file=sys.stderr)
        return problem.exit_code
    except Exception as exc:  # a bug in patchgen, not in the user's input
        return _internal_error(exc)
    finally:
        if previous is not None:
            try:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                signal.signal(signal.SIGTERM, previous)
            except (TypeError, ValueError):
                pass


def environment_problem(exc: OSError):
    """The error a failed system call means when the machine, not patchgen,
    is the cause: a read-only file system or folder, a full disk."""
    where = f" {exc.filename}" if exc.filename else ""
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return ReadOnly(f"cannot write{where} ({exc.strerror}): make it "
                        "writable or choose another place")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        root = str(cache_root())
        if str(exc.filename or "").startswith(root) or (
                not exc.filename and _nearly_full(root)):
            return CacheFull(f"the disk under the cache {root} is full"
                             + (f" (writing{where})" if where else "")
                             + ": free space there or point "
                             "PATCHGEN_CACHE at a larger disk")
        return DiskFull(f"no space left to write{where} ({exc.strerror}): "
                        "free some space (or point TMPDIR, -o or "
                        "PATCHGEN_CACHE elsewhere) and retry")
    return None


def _nearly_full(folder: str) -> bool:
    """Whether the disk under *folder* has less than 64 KiB left (a write
    that failed with ENOSPC and named no file was most likely there)."""
    try:
        stat = os.statvfs(folder)
    except OSError:
        return False
    return stat.f_bavail * stat.f_frsize < 64 * 1024


def _internal_error(exc: Exception) -> int:
    logging.getLogger("patchgen").debug("internal error", exc_info=True)
    print(f"patchgen: internal error: {type(exc).__name__}: {exc} "
          "(a bug in patchgen: rerun with --verbose for the traceback and "
          "report it)", file=sys.stderr)
    return 70


def entry_point() -> None:
    status = main(sys.argv[1:], restore_signals=False)
    # Leave without running finalizers: a library's stream finalizer (a
    # half-read GitPython cat-file blob) can block for ever after an
    # interrupt.  Everything of ours is cleaned up by now.
    _signals_off()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    logging.shutdown()
    os._exit(status)


def _signals_off() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
