"""patchgen format: the series as git format-patch files, ready to mail."""

import argparse
import contextlib
import shlex
import sys
from pathlib import Path

from patchgen.infra.errors import CheckpatchErrors
from patchgen.series.format import (FormatOptions, FormatResult, SentResult,
                             format_series, mark_sent)

NAME = "format"
HELP = ("write a branch or range as a mailing-list-ready series: "
        "series/<topic>/v<N>/ with a cover letter, recipients and checkpatch "
        "(nothing is sent)")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("versions start at 1")
    return value


def add_arguments(parser):
    parser.add_argument("--tree", help="top of the kernel source tree, a git "
                        "repository (default: the one the current folder is in)")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--branch", help="the branch to post (default: the branch "
                       "patchgen apply made, if any)")
    which.add_argument("--range", dest="range_spec", metavar="BASE..TIP",
                       help="the commits to post")
    parser.add_argument("--base", help="where --branch starts (default: its "
                        "upstream's merge base, or what patchgen apply made it "
                        "on); with --range, the base-commit: to name, an "
                        "ancestor of the range (the commits between become "
                        "prerequisite-patch-id: lines)")
    parser.add_argument("-v", "--reroll-count", dest="version", type=_positive,
                        metavar="N", help="version of the series (default: 1, or "
                        "the latest one written, which is then replaced)")
    parser.add_argument("--rfc", action="store_true", help="[RFC PATCH] instead of [PATCH]")
    parser.add_argument("--subject-prefix", metavar="TEXT",
                        help="the subject's prefix instead of PATCH, e.g. "
                        "\"PATCH 4.14\" for a stable tree (--rfc adds RFC)")
    parser.add_argument("--in-reply-to", metavar="MSGID",
                        help="the cover letter (or the one patch) replies to "
                        "this Message-Id")
    parser.add_argument("--stdout", action="store_true",
                        help="print the series as one mbox on stdout; nothing "
                        "is written under -o (the report goes to stderr)")
    parser.add_argument("-o", "--output", type=Path, metavar="DIR",
                        help="the folder that holds <topic>/v<N>/ (default: ./series)")
    parser.add_argument("--topic", help="folder name of the series (default: "
                        "the branch name)")
    parser.add_argument("--strict", action="store_true",
                        help="run checkpatch.pl with --strict")
    parser.add_argument("--no-checkpatch", dest="checkpatch", action="store_false",
                        help="do not run checkpatch.pl")
    parser.add_argument("--allow-checkpatch-errors", action="store_true",
                        help="a checkpatch ERROR does not fail format (say why "
                        "in the cover letter)")
    parser.add_argument("--max-line-length", type=_positive, metavar="N",
                        help="checkpatch's line length (default: 80 for trees "
                        "before v5.7, else checkpatch's own)")
    parser.add_argument("--scripts-from", type=Path, metavar="TREE",
                        help="use checkpatch.pl, get_maintainer.pl and "
                        "MAINTAINERS of another kernel tree")
    parser.add_argument("--cover-template", type=Path, metavar="FILE",
                        help="a Jinja2 template for the cover letter (first "
                        "line: subject)")
    parser.add_argument("--sent", action="store_true",
                        help="write nothing: mark the latest version (or -v N) "
                        "sent, recording its Message-Ids; a sent version is "
                        "never rewritten, the next run writes vN+1")
    parser.add_argument("--sent-mbox", type=Path, metavar="FILE",
                        help="mark sent every version whose cover letter's "
                        "Message-Id is in this mbox (your sent mail, a lore "
                        "thread), then format (with --sent: only mark)")
    parser.add_argument("--to", action="append", default=[], metavar="ADDR",
                        help="add a To: recipient (repeatable)")
    parser.add_argument("--cc", action="append", default=[], metavar="ADDR",
                        help="add a Cc: recipient (repeatable)")


def _note(message: str) -> None:
    print(f"patchgen: note: {message}", file=sys.stderr)


def _relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def checkpatch_errors(result: FormatResult) -> str | None:
    """The sentence for a series with checkpatch ERRORs, else None."""
    if not result.checks:
        return None
    failing = [c for c in result.checks if c.errors]
    if not failing:
        return None
    count = sum(c.errors for c in failing)
    names = ", ".join(Path(c.patch).name for c in failing)
    hint = ""
    if any(m.type == "MISSING_SIGN_OFF" for c in failing for m in c.messages):
        hint = (" (format never adds a Signed-off-by:, whatever format.signOff "
                "says: sign the commits off, e.g. git rebase --signoff BASE)")
    return (f"checkpatch found {count} error{'s' if count != 1 else ''} in "
            f"{names}{hint}: fix the commits and rerun format, or pass "
            "--allow-checkpatch-errors and say why in the cover letter")


def print_result(result: FormatResult, sendable: bool = True) -> None:
    sel = result.selection
    verb = "replaced" if result.replaced else "wrote"
    where = "stdout (one mbox; nothing written under -o)" if result.folder is None \
        else f"{_relative(result.folder)}/"
    print(f"{verb} {where}: v{result.version} of {result.topic}, "
          f"{len(sel.commits)} patches on {sel.base[:12]} ({sel.base_reason})")
    for path in result.files:
        print(f"  {path.name}")
    if result.cover_source:
        print(f"cover letter: text from {result.cover_source}")
    if result.folder is None:
        print(f"change-id: {result.change_id}")
    else:
        print(f"change-id: {result.change_id} (kept in {_relative(result.state_file)})")
    if result.previous is not None:
        changed = [c for c in result.changes if c.kind != "same"]
        print(f"changes since v{result.previous.version} (git range-diff): "
              f"{len(changed)} of {len(result.changes)} entries differ")
    print(f"round trip: the patches applied to the base give the tip's tree "
          f"{result.round_trip_tree[:12]}")
    if result.checks is None:
        print(result.checkpatch_note)
    else:
        width = f", --max-line-length={result.max_line_length}" \
            if result.max_line_length else ""
        errors = sum(c.errors for c in result.checks)
        warnings = sum(c.warnings for c in result.checks)
        checks = sum(c.checks for c in result.checks)
        print(f"checkpatch{width}: {errors} errors, {warnings} warnings, "
              f"{checks} checks")
        for check in result.checks:
            print(f"  {Path(check.patch).name}: {check.summary()}")
            for message in check.messages:
                where = f" ({message.file}:{message.line})" if message.file else ""
                kind = f":{message.type}" if message.type else ""
                print(f"    {message.level}{kind}: {message.text}{where}")
    recipients = result.recipients
    if recipients.empty:
        print(f"recipients: none ({recipients.source}); add them with --to/--cc "
              "or format.to/format.cc in git config")
    else:
        print(f"recipients, written into the files' To:/Cc: headers (tree: "
              f"{recipients.source}; plus the trailers' people, git config "
              "format.to/cc and sendemail.to/cc, --to/--cc):")
        for name, found in result.per_file:
            print(f"  {name}: " + (", ".join(
                [f"To: {a}" for a in found.to] + [f"Cc: {a}" for a in found.cc])
                or "(nobody)"))
    if not sendable:
        print("nothing was sent; " + ("the mbox is not printed" if result.folder
                                      is None else "the files are written")
              + ", but not ready to send")
        return
    if result.folder is None:
        print("nothing was sent (git send-email takes one mail a file: to "
              "send, write the folder without --stdout)")
        return
    print("nothing was sent; to send, review the files, then run:")
    command = list(result.send_command)
    command[-1] = _relative(Path(command[-1]))
    print("  " + shlex.join(command))


def print_sent(result: SentResult) -> None:
    for record in result.marked:
        print(f"marked v{record.version} of {result.topic} sent ({record.sent}, "
              f"{record.sent_how}): {len(record.message_ids)} Message-Ids kept in "
              f"{_relative(result.state_file)}")
    for record in result.already:
        print(f"v{record.version} of {result.topic} was already marked sent "
              f"({record.sent}, {record.sent_how})")
    newest = max(r.version for r in result.marked + result.already)
    print(f"v{newest} is never rewritten: the next `patchgen format` writes "
          f"v{newest + 1}")


def run(args) -> int:
    options = FormatOptions(
        tree=Path(args.tree), branch=args.branch, range_spec=args.range_spec,
        base=args.base, version=args.version, rfc=args.rfc, output=args.output,
        topic=args.topic, checkpatch=args.checkpatch, strict=args.strict,
        max_line_length=args.max_line_length, scripts_from=args.scripts_from,
        cover_template=args.cover_template, to=tuple(args.to), cc=tuple(args.cc),
        sent_mbox=args.sent_mbox, subject_prefix=args.subject_prefix,
        in_reply_to=args.in_reply_to, stdout=args.stdout)
    if args.sent:
        print_sent(mark_sent(options, notify=_note))
        return 0
    result = format_series(options, notify=_note)
    problem = None if args.allow_checkpatch_errors else checkpatch_errors(result)
    if result.mbox is not None:
        # stdout carries the mbox only; the report goes to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            print_result(result, sendable=problem is None)
        if problem is None:
            sys.stdout.flush()
            sys.stdout.buffer.write(result.mbox)
            sys.stdout.buffer.flush()
    else:
        print_result(result, sendable=problem is None)
    if problem:
        raise CheckpatchErrors(problem)
    return 0
