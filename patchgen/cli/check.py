"""patchgen check: a reviewer's checks on a series, per patch and per series."""

import argparse
import json
import os
import re
import sys
import urllib.parse
from dataclasses import asdict
from pathlib import Path

from patchgen.infra.errors import OutputUnwritable, TokenUnset
from patchgen.review.check import CheckOptions, CheckReport, run_check
from patchgen.review.patchwork import post_results
from patchgen.review.result import FAIL, PATCHWORK_STATE, SKIP, WARN

NAME = "check"
HELP = ("check a series (folder of .patch files, mbox, or range of the tree) "
        "as a reviewer would: per patch and per series; exit 1 if a check fails")


def add_arguments(parser):
    parser.add_argument("series", metavar="SERIES",
                        help="a folder of .patch or .eml files (git format-patch "
                             "-o, b4 send -o), an mbox file (a thread: replies "
                             "are set aside, their trailers reported), - for an "
                             "mbox on stdin, or a range of --tree (A..B, or a "
                             "branch: what it adds to HEAD)")
    parser.add_argument("--version", dest="series_version", type=_version,
                        metavar="N",
                        help="of an input that holds several versions of the "
                             "series, check vN (default: the newest)")
    parser.add_argument("--tree",
                        help="top of the kernel source tree, a git repository "
                             "(default: the one the current folder is in); "
                             "never modified")
    parser.add_argument("--build", action="store_true",
                        help="build after each patch (bisectability) and report "
                             "new compiler warnings by file:line: message")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON document (patchwork checks API fields)")
    parser.add_argument("--strict", action="store_true",
                        help="run checkpatch.pl --strict (its CHECKs become warnings)")
    parser.add_argument("--checkpatch", type=Path, metavar="FILE",
                        help="use this checkpatch.pl (for a tree that ships none)")
    parser.add_argument("--config", type=Path, metavar="FILE",
                        help="with --build on a kernel tree: config lines added "
                             "to tinyconfig and the default fragment")
    parser.add_argument("--post", metavar="URL",
                        help="post the results to the patchwork at URL (REST "
                             "API 1.2: each result on its patch, series-level "
                             "ones on every patch); needs --token-env")
    parser.add_argument("--token-env", metavar="VAR",
                        help="the environment variable that holds the "
                             "patchwork API token (never on the command line)")
    parser.add_argument("--target-url", metavar="TEMPLATE", type=_target_template,
                        help="target_url of each result, with {check}, {label}, "
                             "{patch} and {msgid} filled in (default: the "
                             "file:// URI of --log, else none)")
    parser.add_argument("--log", type=Path, metavar="FILE",
                        help="write the whole report (every row, the details) "
                             "to FILE")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="show only warnings and failures (and the summary)")


def _version(text: str) -> int:
    value = text[1:] if text[:1] in "vV" else text
    if not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a version number "
                                         "(1, 2, ... or v2)")
    return int(value)


def _bare(message_id: str | None) -> str | None:
    """A Message-Id as patchwork's msgid filter and lore URLs take it."""
    return message_id.strip().strip("<>") if message_id else None


TARGET_FIELDS = ("check", "label", "patch", "msgid")
_FIELD = re.compile(r"\{([^{}]*)\}")


def _target_template(text: str) -> str:
    """--target-url: a URL with only the fields check fills in."""
    unknown = [f for f in _FIELD.findall(text) if f not in TARGET_FIELDS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"--target-url knows {{{'}, {'.join(TARGET_FIELDS)}}}, not {{{unknown[0]}}}")
    if not text.startswith(("http://", "https://")):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http(s) URL (patchwork takes no other)")
    return text


def _target_url(template: str | None, log_uri: str | None, values: dict) -> str | None:
    if template is None:
        return log_uri
    return _FIELD.sub(lambda m: urllib.parse.quote(str(values[m.group(1)]), safe=""),
                      template)


def report_json(report: CheckReport, target_url: str | None = None,
                log_uri: str | None = None) -> dict:
    """Check's results as one JSON document, each result with the fields
    of patchwork's checks API and the Message-Id (no angle brackets) it
    belongs to: a series-level result the cover letter's."""
    results, skipped = [], []
    cover = next((m for m in report.mails if m.kind == "cover"), None)
    for result in report.results:
        common = {"patch": result.patch, "label": report.label(result.patch),
                  "check": result.check}
        if result.state == SKIP:
            skipped.append({**common, "reason": result.reason})
            continue
        mail = (next((m for m in report.mails if m.position == result.patch), None)
                if result.patch is not None else cover)
        message_id = _bare(mail.message_id) if mail else None
        results.append({
            **common,
            "subject": mail.subject if mail else None,
            "message_id": message_id,
            # The fields of patchwork's checks API:
            "state": PATCHWORK_STATE[result.state],
            "context": result.context,
            "description": result.reason,
            "target_url": _target_url(target_url, log_uri, {
                "check": result.check, "label": report.label(result.patch),
                "patch": result.patch or 0, "msgid": message_id or ""}),
            "details": list(result.details),
        })
    counts = report.counts()
    mails = [dict(asdict(m), message_id=_bare(m.message_id)) for m in report.mails]
    return {
        "series": {"kind": report.series_kind, "input": report.series_origin,
                   "mails": mails},
        "tree": report.tree,
        "base": {"commit": report.base.commit, "from": report.base.origin,
                 "note": report.base.note},
        "results": results,
        "skipped": skipped,
        "set_aside": [asdict(a) for a in report.set_aside],
        "reply_trailers": [asdict(t) for t in report.trailers],
        "summary": {PATCHWORK_STATE[s]: counts.get(s, 0) for s in PATCHWORK_STATE}
                   | {"skipped": counts.get(SKIP, 0)},
        "exit_code": 1 if report.failed else 0,
    }


def report_table(report: CheckReport, quiet: bool = False) -> str:
    patches = [m for m in report.mails if m.kind == "patch"]
    cover = any(m.kind == "cover" for m in report.mails)
    lines = [f"patchgen check: {report.series_origin} ({report.series_kind}, "
             f"{len(patches)} patch{'es' if len(patches) != 1 else ''}"
             f"{' + cover letter' if cover else ''})",
             f"tree: {report.tree}; base: {report.base.note}", ""]
    rows = [r for r in report.results if not quiet or r.state in (WARN, FAIL)]
    width = max([len(report.label(r.patch)) for r in rows] + [6])
    check_width = max([len(r.check) for r in rows] + [5])
    lines.append(f"{'PATCH':<{width}}  {'CHECK':<{check_width}}  STATE  REASON")
    previous = None
    for index, result in enumerate(rows):
        new_group = index == 0 or result.patch != previous
        shown = report.label(result.patch) if new_group else ""
        previous = result.patch
        lines.append(f"{shown:<{width}}  {result.check:<{check_width}}  "
                     f"{result.state:<5}  {result.reason}")
        if result.state in (WARN, FAIL):
            for detail in result.details[:20]:
                lines.append(f"{'':<{width}}  {'':<{check_width}}         {detail}")
    if not rows:
        lines.append("(every check passed)")
    if report.set_aside:
        lines.append("")
        lines.append(f"set aside ({len(report.set_aside)} mail"
                     f"{'s' if len(report.set_aside) != 1 else ''} of the input, "
                     "not checked):")
        for aside in report.set_aside:
            lines.append(f"  {aside.source}: {aside.subject} ({aside.reason})")
    counts = report.counts()
    lines.append("")
    lines.append(f"{counts.get('pass', 0)} pass, {counts.get('warn', 0)} warn, "
                 f"{counts.get('fail', 0)} fail, {counts.get('skip', 0)} skipped: "
                 + ("a check failed (exit 1)" if report.failed else "no check failed"))
    return "\n".join(lines)


def _note(message: str) -> None:
    print(f"patchgen: note: {message}", file=sys.stderr)


def run(args) -> int:
    if args.config is not None and not args.build:
        _note(f"--config {args.config} is used only with --build: not used")
    options = CheckOptions(build=args.build, strict=args.strict,
                           checkpatch=args.checkpatch, config=args.config,
                           version=args.series_version)
    token = None
    if args.post:
        token = os.environ.get(args.token_env or "")
        if not args.token_env or not token:
            raise TokenUnset(
                f"--post needs a patchwork API token: put it in a variable "
                f"and name it with --token-env VAR"
                + (f" ({args.token_env} is unset or empty)" if args.token_env else ""))
    report = run_check(args.series, args.tree, options, notify=_note,
                       stdin=sys.stdin.buffer)
    table = report_table(report)
    log = save_log(args.log, table) if args.log else None
    document = report_json(report, args.target_url, log.as_uri() if log else None)
    if args.json:
        print(json.dumps(document, indent=2))
    else:
        print(report_table(report, quiet=args.quiet) if args.quiet else table)
    if args.post and token:
        posted = post_results(args.post, token, document, notify=_note)
        patches = len({p.patch_id for p in posted})
        _note(f"posted {len(posted)} checks on {patches} patches to {args.post}")
    return 1 if report.failed else 0


def save_log(path: Path, table: str) -> Path:
    """--log FILE: the whole report (every row, the details), what
    target_url points at unless --target-url says otherwise."""
    try:
        path.write_text(table + "\n", encoding="utf-8", errors="surrogateescape")
    except OSError as exc:
        raise OutputUnwritable(f"cannot write the log {path}: {exc.strerror}: "
                               "give --log a writable file") from None
    return path.resolve()
