"""Checks of one mail on its own: what a reviewer reads before applying it.

Each function takes a Mail (and, where it needs one, a way to look a
commit up in the tree) and returns one CheckResult.  They never run the
patch: applying, checkpatch.pl, the rule engine and builds are in check.py.

Conventions checked (../shared/SERIES.md, submitting-patches.rst):
  subject   `[PATCH vN M/T] prefix: summary`, unique in the series
  signoff   a Signed-off-by: matching the From author
  body      commit message lines at most 75 columns (tags exempt)
  fixes     `Fixes: <12+ hex> ("subject")`, a commit of the tree, same subject
  diff      well-formed hunks, no whitespace damage, no binary, and the
            diffstat agrees with the diff (parsed with unidiff)
"""

import email.utils
import re
from dataclasses import dataclass
from typing import Callable

import unidiff

from patchgen.review.result import CheckResult, failed, passed, warned
from patchgen.series.incoming import Mail

BODY_WIDTH = 75
SUMMARY_WIDTH = 75
TAG_LINE = re.compile(r"^(?:[A-Za-z-]+-by|Fixes|Link|Closes|Cc|BugLink|Message-I[dD]|"
                      r"Change-Id|Reported-and-tested-by|Co-developed-by): ")
SUBSYSTEM = re.compile(r"^(?:Revert \"|[\w.,/*+-]+(?: [\w.,/*+-]+){0,2}: \S)")
SIGNOFF = re.compile(r"^Signed-off-by:\s*(.*?)\s*$", re.I)
# A line that means to be a Fixes: tag (as checkpatch.pl reads it), not a
# sentence that starts with "Fixes the ...".
FIXES_ANY = re.compile(r"^\s*(?:fixes:|fixes\s+(?:commit\s*)?[0-9a-f]{5,}\b)", re.I)
FIXES = re.compile(r"^Fixes: ([0-9a-f]{12,40}) \(\"(.+)\"\)$")
HUNK = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
STAT_LINE = re.compile(r"^ (\S.*?)\s+\|\s+(?:(\d+)(?: [+-]*)?|Bin .*)$")
STAT_TOTAL = re.compile(r"^ (\d+) files? changed(?:, (\d+) insertions?\(\+\))?"
                        r"(?:, (\d+) deletions?\(-\))?")


def mail_line(mail: Mail, text: str) -> str:
    """Where *text* (a line of the decoded mail) is in the mail, for a reader."""
    lines = mail.raw.decode("utf-8", "replace").replace("\r\n", "\n").split("\n")
    try:
        number = lines.index(text) + 1
    except ValueError:
        return mail.source
    if mail.source.endswith(".patch"):
        return f"{mail.source}:{number}"
    return f"line {number} of {mail.source}"


# --- the gate: is this a patch at all ----------------------------------------

def check_is_patch(mail: Mail) -> CheckResult:
    if mail.problem:
        return failed("mail", f"{mail.source}: {mail.problem}", patch=mail.position)
    return passed("mail", "a patch mail: From, Subject and a diff",
                  patch=mail.position)


# --- subject ---------------------------------------------------------------------

def check_subject(mail: Mail, patches: tuple[Mail, ...], *,
                  needs_prefix: bool = True) -> CheckResult:
    """`[PATCH vN M/T] prefix: summary`, unique among *patches*."""
    tags, summary = mail.tags, mail.tags.summary
    where = dict(patch=mail.position)
    if mail.subject_problem:
        return failed("subject", mail.subject_problem, **where)
    if needs_prefix and not tags.is_patch:
        return failed("subject", f"no [PATCH] prefix: {mail.subject!r} (send "
                      "with git format-patch / git send-email)", **where)
    if not summary:
        return failed("subject", "the subject has no summary after its prefix", **where)
    if not SUBSYSTEM.match(summary):
        return failed("subject", f"no subsystem prefix: {summary!r} (write "
                      "`subsys: summary`, e.g. `mm/migrate: ...`)", **where)
    # Reported once, on the later of the two.
    same = [m for m in patches if m.position < mail.position and
            m.tags.summary.strip().lower() == summary.strip().lower()]
    if same:
        return failed("subject", f"the same subject as {same[0].label}: "
                      f"{summary!r} (subjects must be unique in a series)", **where)
    if len(summary) > SUMMARY_WIDTH:
        return warned("subject", f"the summary is {len(summary)} characters "
                      f"(at most about {SUMMARY_WIDTH}): {summary!r}", **where)
    return passed("subject", f"{tags.bracket or 'no prefix'}: {summary}", **where)


# --- Signed-off-by -------------------------------------------------------------

def check_signoff(mail: Mail) -> CheckResult:
    where = dict(patch=mail.position)
    signers = [found.group(1) for line in mail.message_lines()
               if (found := SIGNOFF.match(line))]
    author = mail.author
    if not signers:
        return failed("signoff", f"no Signed-off-by: line; the author {author} "
                      "must sign off (git commit -s)", **where)
    by_email = [s for s in signers
                if email.utils.parseaddr(s)[1].lower() == mail.author_email.lower()]
    if not by_email:
        return failed("signoff", f"no Signed-off-by: matches the author {author} "
                      f"(found: {', '.join(signers)})", **where)
    name = email.utils.parseaddr(by_email[0])[0]
    if name.strip() != mail.author_name:
        return warned("signoff", f"Signed-off-by: {by_email[0]} has the author's "
                      f"address but not the name {mail.author_name!r}", **where)
    return passed("signoff", f"signed off by the author, {author}", **where)


# --- commit message width ---------------------------------------------------------

def _exempt(line: str) -> bool:
    # Tags, and a line that is one unbreakable token (a URL, a path).
    return bool(TAG_LINE.match(line)) or " " not in line.strip()


def check_body_width(mail: Mail, width: int = BODY_WIDTH) -> CheckResult:
    where = dict(patch=mail.position)
    long_lines = [(line, len(line.expandtabs(8))) for line in mail.message_lines()
                  if len(line.expandtabs(8)) > width and not _exempt(line)]
    if not long_lines:
        return passed("body", f"commit message lines fit in {width} columns", **where)
    line, columns = long_lines[0]
    more = f" (and {len(long_lines) - 1} more)" if len(long_lines) > 1 else ""
    details = [f"{mail_line(mail, text)}: {cols} columns: {text[:60]}..."
               for text, cols in long_lines]
    return failed("body", f"{mail_line(mail, line)}: a commit message line of "
                  f"{columns} columns (at most {width}; tags exempt){more}",
                  details, **where)


# --- Fixes: ------------------------------------------------------------------------

@dataclass(frozen=True)
class CommitInfo:
    sha: str
    subject: str
    in_base: bool          # an ancestor of the series' base


AMBIGUOUS = "ambiguous"
# id -> CommitInfo, None (unknown) or AMBIGUOUS
CommitLookup = Callable[[str], "CommitInfo | str | None"]


def check_fixes(mail: Mail, lookup: CommitLookup, tree_label: str) -> CheckResult:
    where = dict(patch=mail.position)
    tags = [line for line in mail.message_lines() if FIXES_ANY.match(line)]
    if not tags:
        return passed("fixes", "no Fixes: tag", **where)
    problems, warnings, good = [], [], []
    for line in tags:
        match = FIXES.match(line.strip())
        if not match:
            problems.append(f"{line.strip()!r} is not `Fixes: <12+ hex> "
                            "(\"subject\")` on one line")
            continue
        commit_id, subject = match.groups()
        found = lookup(commit_id)
        if found is None:
            problems.append(f"Fixes: {commit_id} is not a commit of {tree_label}")
        elif isinstance(found, str):  # AMBIGUOUS
            problems.append(f"Fixes: {commit_id} names more than one commit: use "
                            "more hex digits")
        elif found.subject != subject:
            problems.append(f"Fixes: {commit_id} has the subject {found.subject!r}, "
                            f"not {subject!r}")
        elif not found.in_base:
            warnings.append(f"Fixes: {commit_id} is not in the history of the "
                            "series' base")
        else:
            good.append(f"{commit_id[:12]} (\"{subject}\")")
    if problems:
        return failed("fixes", problems[0], problems[1:] + warnings, **where)
    if warnings:
        return warned("fixes", warnings[0], warnings[1:], **where)
    return passed("fixes", "Fixes: " + ", ".join(good) + " found in the tree", **where)


# --- the diff ---------------------------------------------------------------------

@dataclass(frozen=True)
class DiffShape:
    problems: tuple[str, ...]     # damage found while walking the hunks
    files: tuple[str, ...]        # target paths, in order


def walk_hunks(diff: str) -> DiffShape:
    """Walk the hunks by their headers' counts, as git apply does, and
    name damage where it is: a short hunk (truncated mail), a line that
    is not context, + or - (a mailer's rewrap), carriage returns."""
    problems: list[str] = []
    files: list[str] = []
    current = None
    git_diff = False
    lines = diff.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("diff --git "):
            git_diff = True
            current = line.split(" b/", 1)[-1] if " b/" in line else line[11:]
            files.append(current)
        elif line.startswith("+++ ") and not git_diff:
            current = line[4:].split("\t")[0].removeprefix("b/")
            files.append(current)
        header = HUNK.match(line)
        if header:
            old = int(header.group(2) if header.group(2) is not None else 1)
            new = int(header.group(4) if header.group(4) is not None else 1)
            hunk = line.split("@@")[1].strip()
            seen_old = seen_new = 0
            index += 1
            while index < len(lines) and (seen_old < old or seen_new < new):
                body = lines[index]
                if body.startswith("\\"):
                    index += 1
                    continue
                if body.endswith("\r"):
                    problems.append(f"{current}: carriage return in hunk @@ {hunk} @@")
                if body == "":
                    problems.append(f"{current}: hunk @@ {hunk} @@ has a context "
                                    "line without its leading space (whitespace "
                                    "damage by a mailer)")
                    seen_old += 1
                    seen_new += 1
                elif body[0] == " ":
                    seen_old += 1
                    seen_new += 1
                elif body[0] == "-":
                    seen_old += 1
                elif body[0] == "+":
                    seen_new += 1
                else:
                    problems.append(f"{current}: hunk @@ {hunk} @@ has a line that "
                                    f"is not context, + or -: {body[:40]!r} (a "
                                    "wrapped or damaged line)")
                    break
                index += 1
            if seen_old < old or seen_new < new:
                if index >= len(lines):
                    problems.append(f"{current}: hunk @@ {hunk} @@ ends after "
                                    f"{seen_old} of {old} old and {seen_new} of "
                                    f"{new} new lines: the patch is truncated")
                break
            continue
        if "\u00a0" in line and line[:1] in " +-":
            problems.append(f"{current}: a non-breaking space in the diff "
                            "(whitespace damage by a mailer)")
        index += 1
    return DiffShape(tuple(dict.fromkeys(problems)), tuple(files))


def parse_diffstat(notes: str) -> tuple[dict[str, int | None], tuple | None]:
    """Files -> changed lines (None for binary), and the total line."""
    files: dict[str, int | None] = {}
    total = None
    for line in notes.split("\n"):
        match = STAT_LINE.match(line)
        if match:
            files[match.group(1).strip()] = int(match.group(2)) \
                if match.group(2) is not None else None
            continue
        match = STAT_TOTAL.match(line)
        if match:
            total = tuple(int(g or 0) for g in match.groups())
    return files, total


def _stat_matches(stat_path: str, path: str) -> bool:
    """diffstat shortens long paths to `.../tail` and shows renames as
    `{a => b}`; compare what is shown."""
    if "=>" in stat_path:
        return True
    if stat_path.startswith(".../"):
        return path.endswith(stat_path[3:])
    return stat_path == path


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def check_diff(mail: Mail) -> CheckResult:
    where = dict(patch=mail.position)
    if mail.transfer_problem and "flowed" in mail.transfer_problem:
        return failed("diff", f"whitespace damage: {mail.transfer_problem}", **where)
    shape = walk_hunks(mail.diff)
    if shape.problems:
        return failed("diff", shape.problems[0], shape.problems[1:], **where)
    try:
        patch_set = unidiff.PatchSet(mail.diff)
    except unidiff.UnidiffParseError as exc:
        return failed("diff", f"the diff does not parse: {exc}", **where)
    if not len(patch_set):
        return failed("diff", "the diff names no file", **where)
    binary = [f.path for f in patch_set if f.is_binary_file]
    if binary:
        return failed("diff", f"binary content in {binary[0]}: kernel patches "
                      "are text", **where)
    stat, total = parse_diffstat(mail.notes)
    summary = (f"{_count(len(patch_set), 'file')}, "
               f"{_count(sum(len(f) for f in patch_set), 'hunk')}, "
               f"+{patch_set.added}/-{patch_set.removed}")
    if not stat and total is None:
        return warned("diff", f"{summary}; no diffstat below the --- line to "
                      "compare with", **where)
    disagree = []
    for patched in patch_set:
        shown = [k for k in stat if _stat_matches(k, patched.path)]
        if not shown:
            disagree.append(f"{patched.path} is in the diff but not in the diffstat")
            continue
        count = stat[shown[0]]
        if count is not None and "=>" not in shown[0] and \
                count != patched.added + patched.removed:
            disagree.append(f"{patched.path}: the diffstat says {count} changed "
                            f"lines, the diff has {patched.added + patched.removed}")
    if len(stat) != len(patch_set):
        disagree.append(f"the diffstat lists {len(stat)} files, the diff has "
                        f"{len(patch_set)}")
    if total is not None and total != (len(patch_set), patch_set.added,
                                       patch_set.removed):
        disagree.append(f"the diffstat total says {total[0]} files "
                        f"+{total[1]}/-{total[2]}, the diff has {summary}")
    if disagree:
        return failed("diff", disagree[0], disagree[1:], **where)
    if mail.transfer_problem:
        return warned("diff", f"{summary}; {mail.transfer_problem}", **where)
    return passed("diff", f"{summary}, as the diffstat says", **where)
