"""Checks of a series as a whole: its shape as it would reach the list.

Cover letter for two or more patches, numbering complete and in order,
one version throughout, at most 15 patches, `base-commit:` present and
known, patches threaded onto the cover letter (../shared/SERIES.md).
"""

import re
from typing import Callable

from patchgen.review.result import CheckResult, failed, passed, warned
from patchgen.series.incoming import IncomingSeries

MAX_PATCHES = 15
PLACEHOLDERS = ("*** SUBJECT HERE ***", "*** BLURB HERE ***")
EDITME = "EDITME"   # what b4 and patchgen format put in a seeded changes list
CHANGES_NOTE = re.compile(r"(?im)^\s*(changes (in|since|from) v\d+|v\d+\s*[:-]|changelog)")


def check_cover_letter(series: IncomingSeries) -> CheckResult:
    patches, covers = series.patches, series.covers
    if len(covers) > 1:
        return failed("cover-letter", f"{len(covers)} cover letters (0/N): send one")
    if not covers:
        if len(patches) >= 2:
            return failed("cover-letter", f"no cover letter for {len(patches)} "
                          "patches: add a 0/N mail that says what and why "
                          "(git format-patch --cover-letter)")
        return passed("cover-letter", "a single patch needs no cover letter")
    cover = covers[0]
    text = cover.subject + "\n" + cover.message
    left = [p for p in PLACEHOLDERS if p in text]
    if left:
        return failed("cover-letter", f"the cover letter still has git's "
                      f"placeholder {left[0]}: write its subject and text")
    if not cover.message.strip():
        return failed("cover-letter", "the cover letter has no text")
    return passed("cover-letter", f"{cover.label}: {cover.tags.summary}")


def check_numbering(series: IncomingSeries) -> CheckResult:
    patches = series.patches
    count = len(patches)
    numbered = [(m.tags.number, m.tags.total) for m in patches]
    if count == 1 and numbered[0] == (None, None):
        return passed("numbering", "a single patch, not numbered")
    unnumbered = [m.label for m in patches if m.tags.number is None]
    if unnumbered:
        return failed("numbering", f"{unnumbered[0]} has no M/T number while "
                      f"the series has {count} patches")
    # Every patch is numbered here, so it has a total: M/T gives both.
    totals = {total for _, total in numbered if total is not None} | \
        {c.tags.total for c in series.covers if c.tags.total is not None}
    if totals != {count}:
        return failed("numbering", "the mails count "
                      f"{' and '.join(map(str, sorted(totals)))} patches, the "
                      f"series has {count}")
    numbers = [number for number, _ in numbered if number is not None]
    if sorted(numbers) != list(range(1, count + 1)):
        missing = sorted(set(range(1, count + 1)) - set(numbers))
        repeated = sorted({n for n in numbers if numbers.count(n) > 1})
        what = (f"{missing[0]}/{count} is missing" if missing else
                f"{repeated[0]}/{count} appears twice" if repeated else
                "numbers outside 1..N")
        return failed("numbering", f"numbering is not 1..{count}: {what}")
    if numbers != sorted(numbers):
        first = next(i for i in range(count - 1) if numbers[i] > numbers[i + 1])
        return failed("numbering", f"{numbers[first]}/{count} comes before "
                      f"{numbers[first + 1]}/{count} in the input")
    return passed("numbering", f"1..{count} in order"
                  + (", cover letter 0" if series.covers else ""))


def check_version(series: IncomingSeries) -> CheckResult:
    mails = series.patches + series.covers
    versions = sorted({m.tags.version for m in mails})
    if len(versions) > 1:
        by = {v: [m.label for m in mails if m.tags.version == v] for v in versions}
        return failed("version", "mixed versions: " + "; ".join(
            f"v{v} in {', '.join(labels)}" for v, labels in by.items()))
    version = versions[0]
    if version == 1:
        if any("v1" in (m.tags.bracket or "").split() for m in mails):
            return warned("version", "a first version says v1: leave the "
                          "version out until v2")
        return passed("version", "v1 (no version tag)")
    cover = series.covers[0] if series.covers else None
    note = (cover.message if cover else "") + "\n".join(m.notes for m in series.patches)
    if not CHANGES_NOTE.search(note):
        return warned("version", f"v{version} without a `Changes in v{version}:` "
                      "list (cover letter or below the --- lines)")
    if EDITME in note:
        return warned("version", f"v{version}'s changes list still says {EDITME} "
                      "(seeded by a tool): edit it, say what changed and why")
    return passed("version", f"v{version} throughout, with a changes list")


def check_size(series: IncomingSeries, limit: int = MAX_PATCHES) -> CheckResult:
    count = len(series.patches)
    if count > limit:
        return failed("size", f"{count} patches: at most {limit} per posting; "
                      "split the series")
    return passed("size", f"{count} patch{'es' if count != 1 else ''} "
                  f"(at most {limit})")


def check_base_commit(series: IncomingSeries,
                      is_known: Callable[[str], bool], tree_label: str) -> CheckResult:
    ids = sorted({m.base_commit for m in series.mails if m.base_commit})
    if series.range_base is not None:
        return passed("base-commit", f"a range of the tree: based on "
                      f"{series.range_base[:12]}")
    if not ids:
        return failed("base-commit", "no base-commit: line: make the series "
                      "with git format-patch --base=<commit>")
    if len(ids) > 1:
        return failed("base-commit", "more than one base-commit: "
                      + ", ".join(i[:12] for i in ids))
    if not is_known(ids[0]):
        return warned("base-commit", f"base-commit {ids[0][:12]} is not a "
                      f"commit of {tree_label}: the series was checked on HEAD")
    return passed("base-commit", f"{ids[0][:12]}, a commit of the tree")


def check_threading(series: IncomingSeries) -> CheckResult:
    patches = series.patches
    if len(patches) < 2 and not series.covers:
        return passed("threading", "a single mail")
    root = series.covers[0] if series.covers else patches[0]
    if not root.message_id:
        return warned("threading", f"{root.label} has no Message-Id: the mails "
                      "are not threaded (git format-patch --thread=shallow)")
    loose = [m.label for m in patches if m is not root
             and m.in_reply_to != root.message_id]
    if loose:
        return warned("threading", f"{', '.join(loose)} do not reply to "
                      f"{root.label} (git format-patch --thread=shallow)")
    return passed("threading", f"every patch replies to {root.label}")
