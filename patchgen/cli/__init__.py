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
import logging
import os
import sys
from pathlib import Path

from patchgen import __version__
from patchgen.errors import NotAGitTree, PatchgenError
from patchgen.runner import run
from patchgen.cli import apply, cache, check, demo, format, scan, verify

COMMANDS = [scan, apply, format, check, verify, demo, cache]


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
    kernel's shape (Makefile and mm/), else that top (git rev-parse
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
        if (folder / "Makefile").is_file() and (folder / "mm").is_dir():
            return folder
        if folder == top_dir:
            break
    return top_dir


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="patchgen: %(message)s", stream=sys.stderr)
    try:
        if getattr(args, "tree", False) is None:
            args.tree = default_tree(args.command)
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
              "(a bug in patchgen: rerun with --verbose for the traceback and "
              "report it)", file=sys.stderr)
        return 70


def entry_point() -> None:
    sys.exit(main(sys.argv[1:]))
