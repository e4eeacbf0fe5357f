"""The command line: the one place that prints and exits.

main(argv) parses the arguments, runs one command and maps every
PatchgenError to its one-sentence message and its exit code.  Each command
lives in a module of this package with NAME, HELP, add_arguments(parser)
and run(args) -> exit status; adding a command adds a module and a line in
COMMANDS.
"""

import argparse
import codecs
import logging
import sys

from patchgen import __version__
from patchgen.errors import PatchgenError
from patchgen.cli import apply, check, demo, format, scan, verify

COMMANDS = [scan, apply, format, check, verify, demo]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="patchgen",
        description="Turn a semantic rewrite of kernel C into a verified, "
                    "mailing-list-ready patch series.")
    parser.add_argument("--version", action="version",
                        version=f"patchgen {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="print every external command as it runs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for command in COMMANDS:
        p = sub.add_parser(command.NAME, help=command.HELP,
                           description=command.HELP)
        command.add_arguments(p)
        p.set_defaults(_run=command.run)
    return parser


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
            stream.reconfigure(errors="patchgen-output")
        except (AttributeError, ValueError):  # not a TextIOWrapper (tests)
            pass


def main(argv=None) -> int:
    _tolerant_streams()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="patchgen: %(message)s", stream=sys.stderr)
    try:
        return args._run(args)
    except PatchgenError as exc:
        print(f"patchgen: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("patchgen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug in patchgen, not in the user's input
        logging.getLogger("patchgen").debug("internal error", exc_info=True)
        print(f"patchgen: internal error: {type(exc).__name__}: {exc} "
              "(a bug in patchgen: rerun with -v for the traceback and "
              "report it)", file=sys.stderr)
        return 70


def entry_point() -> None:
    sys.exit(main(sys.argv[1:]))
