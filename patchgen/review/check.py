"""Check: a reviewer's checks on any series, per patch and per series.

What a maintainer runs on a series that arrived on the list, and what an
author runs before sending it:

  per patch   mail (is it a patch), subject, signoff, body, fixes, diff
              (check_mail.py); apply (`git am` in order on the base, in a
              private clone: workspace.py); checkpatch (the tree's own
              checkpatch.pl); semantic (each rule's review of the code
              after the patch, compared with the code before it); build
              (with --build: check_build.py)
  per series  cover-letter, numbering, version, size, base-commit,
              threading (check_series.py); semantic and build at the end

The base is the series' `base-commit:` when the tree has it, else the
tree's HEAD; the report says which.  Each problem is reported once, by
the most specific check: checkpatch's messages that a dedicated check
covers are left to it, and the checks that need a patch that applies (or a
diff that parses) are skipped, with the reason, after one that does not.
The engine knows no rule: rules contribute through Rule.review.
"""

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import unidiff

from patchgen.infra.cache import kernel_build_lock, workdir_for
from patchgen.review.build import (Bisector, GccSyntaxBuilder, check_build_for,
                                  folders_of, is_kbuild_tree, kbuild_builder)
from patchgen.review.mail import (AMBIGUOUS, CommitInfo, check_body_width, check_diff,
                                 check_fixes, check_is_patch, check_signoff,
                                 check_subject)
from patchgen.review.result import (FAIL, CheckResult, failed, passed, skipped,
                                   warned)
from patchgen.review.series import (MAX_PATCHES, check_base_commit, check_cover_letter,
                                   check_numbering, check_size, check_threading,
                                   check_version)
from patchgen.kernel.checkpatch import checkpatch_script, run_checkpatch
from patchgen.infra.errors import CheckpatchUnusable, PatchgenError
from patchgen.series.incoming import (RANGE, REPLY, IncomingSeries, Mail, ReplyTrailer,
                                      SetAside, read_series)
from patchgen.kernel.kconfig import build_dir_for, read_fragment
from patchgen.engine.rule import (REVIEW_FAIL, REVIEW_PENDING, REVIEW_WARN, Rule,
                                  Finding)
from patchgen.engine.registry import all_rules
from patchgen.infra.provenance import GENERATED_BY
from patchgen.infra.runner import run, run_git
from patchgen.infra.scratch import scratch_folder
from patchgen.engine.sources import (CommitTree, FileSource, GitKernelTree, WorkTree, commit_id,
                           corrected_search, makefile_version, open_git_tree)
from patchgen.kernel.workspace import (Workspace, persistent_workspace,
                                       temporary_workspace)

PATCH_CHECKS = ("mail", "subject", "signoff", "body", "fixes", "diff", "apply",
                "checkpatch", "semantic", "build")
SERIES_CHECKS = ("cover-letter", "numbering", "version", "size", "base-commit",
                 "threading", "semantic", "build")
# Only for an input that has them: what reviewers said in replies.
REPLY_CHECKS = ("replies",)
# Mail-only checks: a range of the tree has no mails of its own yet.
MAIL_SHAPE = ("cover-letter", "numbering", "version", "threading")

# checkpatch.pl messages that a dedicated check reports (once, better).
COVERED_BY = {
    "MISSING_SIGN_OFF": "signoff",
    "NO_AUTHOR_SIGN_OFF": "signoff",
    "COMMIT_LOG_LONG_LINE": "body",
    "BAD_FIXES_TAG": "fixes",
}


@dataclass(frozen=True)
class CheckOptions:
    build: bool = False
    strict: bool = False               # checkpatch.pl --strict
    checkpatch: Path | None = None     # another checkpatch.pl than the tree's
    config: Path | None = None         # more config for --build
    workdir: Path | None = None        # workspace and build folders (default: cache)
    version: int | None = None         # of a multi-version input (default: newest)


@dataclass(frozen=True)
class BaseChoice:
    commit: str
    origin: str          # "base-commit", "HEAD" or "range"
    note: str            # one sentence for the reader


@dataclass(frozen=True)
class MailSummary:
    position: int
    label: str
    kind: str            # "patch", "cover" or "not a patch"
    subject: str
    source: str
    message_id: str | None


@dataclass(frozen=True)
class CheckReport:
    series_kind: str
    series_origin: str
    tree: str
    base: BaseChoice
    mails: tuple[MailSummary, ...]
    results: tuple[CheckResult, ...]
    set_aside: tuple[SetAside, ...] = ()      # replies, other versions
    trailers: tuple[ReplyTrailer, ...] = ()   # given in replies

    @property
    def failed(self) -> bool:
        return any(r.state == FAIL for r in self.results)

    def counts(self) -> Counter:
        return Counter(r.state for r in self.results)

    def label(self, position: int | None) -> str:
        if position is None:
            return "series"
        for mail in self.mails:
            if mail.position == position:
                return mail.label
        return f"#{position}"


# --- the base and the tree's history ---------------------------------------------

def _at(workspace: Workspace, commit: str) -> CommitTree:
    """The files of *commit* in the workspace's clone."""
    return CommitTree(workspace.repo, commit, workspace.prefix)


def is_commit(tree: GitKernelTree, rev: str) -> str | None:
    return commit_id(tree.root, rev)


def choose_base(tree: GitKernelTree, series: IncomingSeries) -> BaseChoice:
    if series.range_base:
        return BaseChoice(series.range_base, "range",
                          f"the range starts at {series.range_base[:12]}")
    head = tree.head()
    ids = sorted({m.base_commit for m in series.mails if m.base_commit})
    if len(ids) == 1:
        found = is_commit(tree, ids[0])
        if found:
            return BaseChoice(found, "base-commit",
                              f"base-commit {found[:12]}, from the series")
        return BaseChoice(head, "HEAD", f"HEAD ({head[:12]}): the series' "
                          f"base-commit {ids[0][:12]} is not in the tree")
    if ids:
        return BaseChoice(head, "HEAD", f"HEAD ({head[:12]}): the series names "
                          "more than one base-commit")
    return BaseChoice(head, "HEAD", f"HEAD ({head[:12]}): the series has no "
                      "base-commit")


def commit_lookup(tree: GitKernelTree, base: str):
    def lookup(rev: str):
        sha = commit_id(tree.root, rev)
        if sha is None:
            probe = run_git(tree.root, "cat-file", "-t", rev, check=False)
            return AMBIGUOUS if "ambiguous" in probe.stderr else None
        subject = run_git(tree.root, "log", "-1", "--format=%s", sha, check=False).stdout.strip()
        in_base = run_git(tree.root, "merge-base", "--is-ancestor", sha, base, check=False).returncode == 0
        return CommitInfo(sha, subject, in_base)
    return lookup


# --- checkpatch ---------------------------------------------------------------------

def checkpatch_result(tree: GitKernelTree, mail: Mail, mail_file: Path, cwd: Path,
                      options: CheckOptions) -> CheckResult:
    where = dict(patch=mail.position)
    script = options.checkpatch or checkpatch_script(tree.root)
    if script is None:
        return warned("checkpatch", f"not run: {tree.root} has no "
                      "scripts/checkpatch.pl (pass --checkpatch FILE)", **where)
    own = options.checkpatch is None
    version = makefile_version(WorkTree(tree.root))
    # checkpatch.pl's own default follows its tree (100 columns since 5.7);
    # another tree's script must be told the width of this one.
    width = None if own or version is None or version[:2] >= (5, 7) else 80
    try:
        result = run_checkpatch(tree.root, mail_file, strict=options.strict,
                                max_line_length=width, script=script, cwd=cwd)
    except PatchgenError as exc:
        return warned("checkpatch", f"not run: {exc}", **where)
    fixes_ids = {line.split()[1].lower() for line in mail.message_lines()
                 if line.lower().startswith("fixes:") and len(line.split()) > 1}
    shown: list = []
    left: Counter[str] = Counter()
    for message in result.messages:
        covered = COVERED_BY.get(message.type or "")
        if message.type == "UNKNOWN_COMMIT_ID" and any(i in message.text for i in fixes_ids):
            covered = "fixes"
        if covered:
            left[covered] += 1
            continue
        if message.level == "CHECK" and not options.strict:
            continue
        shown.append(message)
    lines = [f"{m.level}:{m.type or '-'}: "
             + (f"{m.file}:{m.line}: " if m.file else "") + m.text for m in shown]
    errors = [m for m in shown if m.level == "ERROR"]
    others = [m for m in shown if m.level != "ERROR"]
    note = ""
    if left:
        note = " (" + ", ".join(f"{n} left to {check}" for check, n in sorted(left.items())) + ")"
    counts = f"{len(errors)} errors, {len(others)} warnings{note}"
    if errors:
        return failed("checkpatch", f"{counts}: {lines[0]}", lines, **where)
    if others:
        return warned("checkpatch", f"{counts}: {lines[0]}", lines, **where)
    return passed("checkpatch", counts, **where)


# --- semantic: the rules' reviews ---------------------------------------------------

class BaseGrep:
    """The base's files_containing(), asked once per question: a `git grep`
    of a commit reads every blob (2.5 s on the 6.1 tree)."""

    def __init__(self, base: FileSource):
        self.base = base
        self.answers: dict[tuple, list[str]] = {}

    def files_containing(self, words, suffixes) -> list[str]:
        key = (tuple(sorted(words)), tuple(suffixes))
        if key not in self.answers:
            self.answers[key] = self.base.files_containing(list(words), suffixes)
        return self.answers[key]


@dataclass(frozen=True)
class AfterPatches:
    """The code of a commit of the series: files read from the commit; a
    search is the previous commit's answer (the base's, for the first)
    corrected for the files this patch changed, which gives the same list
    as grepping the commit, and costs what the patch touched, not what the
    series touched so far (a long series stays linear)."""

    commit: FileSource
    base: BaseGrep
    changed: frozenset[str]               # what this patch changed
    previous: "AfterPatches | None" = None
    answers: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def label(self) -> str:
        return self.commit.label

    def read(self, path: str) -> bytes:
        return self.commit.read(path)

    def exists(self, path: str) -> bool:
        return self.commit.exists(path)

    def files_containing(self, words, suffixes=(".c", ".h")) -> list[str]:
        words, suffixes = list(words), tuple(suffixes)
        key = (tuple(sorted(words)), suffixes)
        # The nearest earlier step that knows the answer (or the base) ...
        chain: list[AfterPatches] = []
        step: AfterPatches | None = self
        while step is not None and key not in step.answers:
            chain.append(step)
            step = step.previous
        found = step.answers[key] if step is not None \
            else self.base.files_containing(words, suffixes)
        # ... corrected step by step up to this one.
        for step in reversed(chain):
            contents = ((path, step.commit.read(path) if step.commit.exists(path)
                         else None)
                        for path in step.changed if path.endswith(suffixes))
            found = corrected_search(found, contents, words, suffixes)
            step.answers[key] = found
        return list(found)


def _findings(reviewers, source: FileSource) -> tuple[dict, str | None]:
    """Findings by identity (rule, kind, path, function, message) -> Finding."""
    found: dict[tuple, Finding] = {}
    for rule in reviewers:
        try:
            for finding in rule.review(source):
                key = (rule.id, finding.kind, finding.path, finding.function,
                       finding.message)
                found.setdefault(key, finding)
        except PatchgenError as exc:
            return found, f"rule {rule.id} could not review the code: {exc}"
    return found, None


def _where(finding: Finding) -> str:
    return f"{finding.kind} at {finding.location()}: {finding.message}"


def reviewers_for(mails: list[Mail]) -> tuple[list[Rule], str]:
    """The rules whose review a series gets, and why: the rules that made
    its patches (their "Generated by: patchgen X, rule ID" line), else the
    rules whose site words its diffs touch; never every rule."""
    rules = {rule_id: rule for rule_id, rule in all_rules().items()
             if rule.review is not None}
    made_by = set()
    for mail in mails:
        mark = GENERATED_BY.search(mail.message)
        if mark is not None:
            made_by.add(mark.group(2))
    if made_by:
        chosen = [rules[rule_id] for rule_id in sorted(made_by) if rule_id in rules]
        why = ("no rule that made the series (" + ", ".join(sorted(made_by))
               + ") has reviewer checks" if not chosen else "")
        return chosen, why
    diffs = [mail.diff for mail in mails]
    chosen = [rule for rule in rules.values()
              if any(word in diff for diff in diffs for word in rule.site_words)]
    return chosen, "" if chosen else "the series touches no rule's site words"


def semantic_results(base: FileSource,
                     steps: Sequence[tuple[Mail, FileSource, Any]],
                     complete: bool, progress: "CheckProgress | None" = None,
                     reviewers: list[Rule] | None = None, why: str = ""
                     ) -> tuple[list[CheckResult], CheckResult]:
    """Per patch: what it introduces (fail/warn), leaves in files it
    changes (warn), resolves; for the series: what is left at its end.
    *reviewers* are the rules that review it (default: reviewers_for the
    mails of *steps*)."""
    if reviewers is None:
        reviewers, why = reviewers_for([m for m, _, _ in steps])
    if not reviewers:
        why = why or "no rule has reviewer checks"
        return ([passed("semantic", why, patch=m.position) for m, _, _ in steps],
                passed("semantic", why))
    names = ", ".join(rule.id for rule in reviewers)
    before, problem = _findings(reviewers, base)
    if problem:
        return ([warned("semantic", problem, patch=m.position) for m, _, _ in steps],
                warned("semantic", problem))
    at_base = dict(before)
    results = []
    all_touched: set[str] = set()
    for done, (mail, source, touched) in enumerate(steps):
        if progress is not None:
            progress.step(done, "reviewed")
        all_touched |= set(touched)
        after, problem = _findings(reviewers, source)
        where = dict(patch=mail.position)
        if problem:
            results.append(warned("semantic", problem, **where))
            continue
        introduced = [f for k, f in after.items() if k not in before]
        resolved = [f for k, f in before.items() if k not in after]
        still = [f for k, f in after.items() if k in before and f.path in touched
                 and f.action in (REVIEW_FAIL, REVIEW_WARN)
                 and (not isinstance(touched, dict) or _in_changed_code(f, source, touched))]
        details = ([f"introduced: {_where(f)}" for f in introduced]
                   + [f"still present in a file this patch changes: {_where(f)}"
                      for f in still]
                   + [f"resolved: {_where(f)}" for f in resolved])
        bad = [f for f in introduced if f.action == REVIEW_FAIL]
        doubtful = [f for f in introduced if f.action == REVIEW_WARN]
        pending = [f for f in introduced if f.action == REVIEW_PENDING]
        if bad:
            results.append(failed("semantic", f"introduces {_where(bad[0])}",
                                  details, **where))
        elif doubtful or still:
            first = doubtful[0] if doubtful else still[0]
            verb = "introduces" if doubtful else "leaves"
            results.append(warned("semantic", f"{verb} {_where(first)}", details, **where))
        else:
            reason = f"{names}: nothing introduced"
            if resolved:
                reason += f"; resolves {resolved[0].kind} at {resolved[0].location()}"
            if pending:
                reason += (f"; {pending[0].kind} at {pending[0].location()} is "
                           "pending (fine if a later patch completes it)")
            results.append(passed("semantic", reason, details, **where))
        before = after
    if not complete:
        return results, skipped("semantic", "not every patch applied")
    end = before
    left_pending = [f for k, f in end.items() if f.action == REVIEW_PENDING
                    and k not in at_base]
    left_bad = [f for k, f in end.items() if f.action == REVIEW_FAIL and k not in at_base]
    kept = [f for k, f in end.items() if k in at_base and f.path in all_touched
            and f.action in (REVIEW_FAIL, REVIEW_WARN)]
    resolved = [f for k, f in at_base.items() if k not in end]
    details = ([f"left by the series: {_where(f)}" for f in left_pending + left_bad]
               + [f"still present in a file the series changes: {_where(f)}"
                  for f in kept]
               + [f"resolved by the series: {_where(f)}" for f in resolved])
    if left_pending or left_bad:
        first = (left_pending + left_bad)[0]
        return results, failed("semantic", f"at the end of the series: {_where(first)}",
                                details)
    if kept:
        return results, warned("semantic", f"the series leaves {_where(kept[0])}",
                               details)
    reason = f"{names}: nothing left at the end of the series"
    if resolved:
        reason += f"; resolves {len(resolved)} finding{'s' if len(resolved) != 1 else ''}"
    return results, passed("semantic", reason, details)


# --- builds ---------------------------------------------------------------------------

def build_result(mail: Mail, step) -> CheckResult:
    where = dict(patch=mail.position)
    if not step.ok:
        return failed("build", f"does not build: {step.errors[0] if step.errors else step.command}",
                      step.errors[1:], **where)
    if step.new:
        more = f" (and {len(step.new) - 1} more)" if len(step.new) > 1 else ""
        return failed("build", f"new warning: {step.new[0].identity()}{more}",
                      [d.identity() for d in step.new[1:]], **where)
    details = [f"warning gone: {d.identity()}" for d in step.gone]
    compiled = len(step.compiled)
    return passed("build", f"builds, no new warnings ({compiled} file"
                  f"{'s' if compiled != 1 else ''} compiled, {step.seconds:.0f} s)",
                  details, **where)


# --- the whole check ---------------------------------------------------------------------

def _patch_set(mail: Mail) -> unidiff.PatchSet:
    return unidiff.PatchSet(mail.diff)


def _changed_lines(patch_set: unidiff.PatchSet) -> dict[str, set[int]]:
    """Path -> the lines of the new file that the patch adds, or where it
    removes lines."""
    changed: dict[str, set[int]] = {}
    for patched in patch_set:
        path = (patched.target_file if patched.target_file != "/dev/null"
                else patched.source_file).removeprefix("a/").removeprefix("b/")
        lines = changed.setdefault(path, set())
        for hunk in patched:
            following = hunk.target_start
            for line in hunk:
                if line.is_removed:
                    lines.add(following)
                    continue
                if line.target_line_no is None:
                    continue        # "\ No newline at end of file"
                if line.is_added:
                    lines.add(line.target_line_no)
                following = line.target_line_no + 1
    return changed


def _in_changed_code(finding: Finding, source: FileSource,
                     changed: dict[str, set[int]]) -> bool:
    """Whether *finding* sits in a function the patch changes (or, for a
    finding outside any function, in a file it changes)."""
    if finding.path not in changed:
        return False
    if not finding.function or not source.exists(finding.path):
        return True
    from patchgen.engine.parse import functions, parse
    lines = changed[finding.path]
    parsed = parse(source.read(finding.path), finding.path)
    for function in functions(parsed):
        if function.name != finding.function:
            continue
        first = function.node.start_point[0] + 1
        last = function.node.end_point[0] + 1
        if any(first <= line <= last + 1 for line in lines):
            return True
    return False


def _paths(patch_set: unidiff.PatchSet) -> set[str]:
    paths = set()
    for patched in patch_set:
        for name in (patched.source_file, patched.target_file):
            if name and name != "/dev/null":
                paths.add(name.removeprefix("a/").removeprefix("b/"))
    return paths


def usable_checkpatch(script: Path) -> None:
    """--checkpatch FILE must be a perl script: said once, before the
    review, rather than as a warning on every patch."""
    if not script.is_file():
        raise CheckpatchUnusable(f"--checkpatch {script}: no such file: give "
                                 "the path of a checkpatch.pl")
    result = run(["perl", "-c", str(script)], check=False, timeout=120)
    if result.returncode != 0:
        said = (result.stderr.strip().splitlines() or ["perl -c failed"])[0][:160]
        raise CheckpatchUnusable(f"--checkpatch {script} is not a perl script "
                                 f"({said}): give the path of a checkpatch.pl")


def _quiet(_message: str) -> None:
    pass


class CheckProgress:
    """"checked 40 of 300 patches" on *notify*, at most every few seconds."""

    EVERY = 10.0

    def __init__(self, notify, total: int):
        self.notify, self.total = notify, total
        self.last = time.monotonic()

    def step(self, done: int, what: str = "applied") -> None:
        if time.monotonic() - self.last >= self.EVERY and done < self.total:
            self.notify(f"{what} {done} of {self.total} patches")
            self.last = time.monotonic()


def run_check(spec: str, tree_path: str | Path, options: CheckOptions = CheckOptions(),
              notify=_quiet, stdin=None) -> CheckReport:
    """Check the series *spec* (`-`: an mbox on *stdin*); *notify* gets
    notes for the user as the work goes (a series far over the size limit,
    progress on a long one, what of a thread was set aside)."""
    if options.checkpatch is not None:
        usable_checkpatch(Path(options.checkpatch))
    tree = open_git_tree(tree_path)
    series = read_series(spec, tree.root, version=options.version, stdin=stdin)
    if series.set_aside:
        replies = sum(a.reason == REPLY for a in series.set_aside)
        others = len(series.set_aside) - replies
        notify(f"set aside {len(series.set_aside)} mails of {series.origin}: "
               f"{replies} repl{'y' if replies == 1 else 'ies'}"
               + (f", {others} of other versions (checking v{series.version}"
                  + (", the newest)" if options.version is None else ")")
                  if others else "") + "; the report lists them")
    count = len(series.patches)
    if count > 2 * MAX_PATCHES:
        notify(f"{count} patches: far over the {MAX_PATCHES} a posting may hold "
               "(the size check fails: split the series); checking them all")
    base = choose_base(tree, series)
    results: list[CheckResult] = []
    patches = series.patches
    lookup = commit_lookup(tree, base.commit)
    diff_ok: dict[int, unidiff.PatchSet] = {}

    for mail in series.mails:
        if mail.is_cover:
            continue
        gate = check_is_patch(mail)
        results.append(gate)
        if gate.state == FAIL:
            continue
        try:
            diff = check_diff(mail)
            mail_results = [
                check_subject(mail, patches, needs_prefix=series.kind != RANGE),
                check_signoff(mail), check_body_width(mail),
                check_fixes(mail, lookup, str(tree.root)), diff]
            if diff.state != FAIL:
                diff_ok[mail.position] = _patch_set(mail)
        except (ValueError, LookupError, unidiff.UnidiffParseError) as exc:
            # One mail patchgen cannot read is one failing result, and the
            # review of the others goes on.
            diff_ok.pop(mail.position, None)
            mail_results = [failed("diff", f"patchgen could not read this mail "
                                   f"({type(exc).__name__}: {exc})",
                                   patch=mail.position)]
        results += mail_results

    touched_all: set[str] = set()
    for patch_set in diff_ok.values():
        touched_all |= _paths(patch_set)
    kbuild = options.build and is_kbuild_tree(tree.root)
    # Only a kernel build needs a folder that outlives the run.
    workdir = ((options.workdir or workdir_for(Path(tree.top)))
               if kbuild else None)
    if kbuild:
        assert workdir is not None
        workspace_cm = persistent_workspace(tree, base.commit, workdir)
    else:
        workspace_cm = temporary_workspace(tree, base.commit,
                                           None if options.build else touched_all)
    with workspace_cm as workspace, scratch_folder("mails") as mail_dir:
        results += _apply_and_review(tree, series, base, workspace, Path(mail_dir),
                                     diff_ok, touched_all, options, kbuild, workdir,
                                     CheckProgress(notify, count))

    results += _series_results(tree, series)
    results += reply_results(series)
    mails = tuple(MailSummary(
        m.position, m.label,
        "patch" if m.is_patch else "cover" if m.is_cover else "not a patch",
        m.subject or m.source, m.source, m.message_id) for m in series.mails)
    return CheckReport(series.kind, series.origin, str(tree.root), base, mails,
                       tuple(_ordered(results)), series.set_aside, series.trailers)


def reply_results(series: IncomingSeries) -> list[CheckResult]:
    """What reviewers said in replies, per patch (a trailer given on the
    cover letter counts for every patch, as b4 applies it): a Nacked-by
    warns, the other trailers pass and are listed."""
    covers = {m.position for m in series.covers}
    patches = [m.position for m in series.patches]
    given: dict[int | None, list[ReplyTrailer]] = {}
    for trailer in series.trailers:
        targets = (patches if trailer.position in covers else
                   [trailer.position] if trailer.position in patches else [None])
        for target in targets:
            given.setdefault(target, []).append(trailer)
    results = []
    for position, trailers in sorted(given.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
        details = tuple(f"{t.trailer} (in {t.reply_source}, from {t.reply_from}"
                        + (f", given on v{t.carried_from} of the same patch"
                           if t.carried_from else "") + ")"
                        for t in trailers)
        nacks = [t for t in trailers if t.trailer.lower().startswith("nacked-by")]
        where = {"patch": position} if position is not None else {}
        if position is None:
            reason = (f"{len(trailers)} trailer{'s' if len(trailers) != 1 else ''} "
                      "in replies to no mail of this version of the series")
            results.append(warned("replies", reason, details=details, **where))
        elif nacks:
            results.append(warned("replies", f"{nacks[0].trailer} in a reply",
                                  details=details, **where))
        else:
            results.append(passed("replies", "; ".join(t.trailer for t in trailers),
                                  details=details, **where))
    return results


def _apply_and_review(tree, series, base, workspace, mail_dir, diff_ok, touched_all,
                      options, kbuild, workdir, progress) -> list[CheckResult]:
    results = []
    patches = [m for m in series.patches]
    bisector = None
    build_notes: list[str] = []
    base_step = None
    lock = (kernel_build_lock(f"patchgen check --build in {tree}") if kbuild
            else _no_lock())
    with lock:
        if options.build:
            folders = folders_of(touched_all)
            # The build settings of the rule that made the series.
            settings, note = check_build_for(m.message for m in patches)
            if note:
                build_notes.append(note)
            if kbuild:
                builder = kbuild_builder(workspace.kernel_root, workdir, folders,
                                         touched_all, settings, options.config)
                builder.configure()
            else:
                builder = GccSyntaxBuilder(  # type: ignore[assignment]
                    workspace.kernel_root, folders,
                    settings.toggle if settings else None)
            bisector = Bisector(builder)
            if folders:
                # A kernel build takes minutes: say what runs.
                if kbuild:
                    progress.notify(f"building the base ({bisector.builder.name}: "
                                    f"{', '.join(f + '/' for f in folders)})")
                base_step = bisector.base()
        commits: dict[int, str] = {}
        blocked = None
        steps: list[tuple[Mail, AfterPatches, Any]] = []
        base_grep = BaseGrep(_at(workspace, base.commit))
        for done, mail in enumerate(patches):
            progress.step(done)
            where = dict(patch=mail.position)
            mail_file = mail_dir / f"{mail.position:04d}.patch"
            mail_file.write_bytes(mail.raw)
            if mail.position in diff_ok:
                results.append(checkpatch_result(tree, mail, mail_file, workspace.top,
                                                 options))
            else:
                results.append(skipped("checkpatch", "the diff is damaged (see diff)",
                                       **where))
            if mail.position not in diff_ok:
                results.append(skipped("apply", "the diff is damaged (see diff)", **where))
                blocked = blocked or mail.label
            elif blocked:
                results.append(skipped("apply", f"not tried: {blocked} did not apply",
                                       **where))
            else:
                outcome = workspace.am(mail_file)
                on = base.note if not commits else "the patches before it"
                if outcome.applied:
                    results.append(passed("apply", f"applies on {on}", **where))
                    commits[mail.position] = outcome.commit
                    touched = _paths(diff_ok[mail.position])
                    previous = steps[-1][1] if steps else None
                    steps.append((mail, AfterPatches(_at(workspace, outcome.commit),
                                                     base_grep, frozenset(touched),
                                                     previous),
                                  _changed_lines(diff_ok[mail.position])))
                else:
                    results.append(failed("apply", f"does not apply on {on}: "
                                          f"{outcome.error}", **where))
                    blocked = mail.label
            if bisector is None:
                continue
            if mail.position not in commits:
                results.append(skipped("build", "not applied", **where))
            elif base_step is None:
                results.append(skipped("build", "the series changes no .c file",
                                       **where))
            elif not base_step.ok:
                results.append(skipped("build", "the base does not build", **where))
            else:
                if kbuild:
                    progress.notify(f"building after {mail.label} ({done + 1} of "
                                    f"{len(patches)} patches)")
                results.append(build_result(mail, bisector.after(diff_ok[mail.position])))
        if bisector is not None:
            build_notes += list(getattr(bisector.builder, "notes", []))
            if kbuild and base_step is not None:
                missing = bisector.builder.not_built(touched_all)
                if missing:
                    build_notes.append("not compiled by this configuration (add "
                                       "its CONFIG_ with --config): " + ", ".join(missing))
    complete = len(commits) == len(patches) and bool(patches)
    reviewers, why = reviewers_for(patches)
    per_patch, series_semantic = semantic_results(
        AfterPatches(_at(workspace, base.commit), base_grep, frozenset()), steps, complete,
        progress, reviewers, why)
    results += per_patch
    not_applied = [m for m in patches if m.position not in commits]
    results += [skipped("semantic", "not applied", patch=m.position) for m in not_applied]
    results.append(series_semantic)
    if bisector is not None:
        results.append(_series_build(base.commit, base_step, bisector, build_notes, kbuild))
    return results


class _no_lock:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _series_build(base, base_step, bisector, notes, kbuild) -> CheckResult:
    name = bisector.builder.name
    folders = ", ".join(f + "/" for f in bisector.builder.folders) or "no folder"
    if base_step is None:
        return skipped("build", "the series changes no .c file: nothing to build")
    if not base_step.ok:
        return warned("build", f"the base {base[:12]} does not build ({name} "
                      f"{folders}): {base_step.errors[0] if base_step.errors else ''}",
                      base_step.errors[1:])
    where = (f" in {bisector.builder.build_dir}" if kbuild else "")
    reason = (f"base {base[:12]} builds with {name} ({folders}, "
              f"{len(base_step.compiled)} files, {base_step.seconds:.0f} s){where}")
    if notes and kbuild:
        return warned("build", reason + "; " + notes[0], notes[1:])
    return passed("build", reason, notes)


def _series_results(tree: GitKernelTree, series: IncomingSeries) -> list[CheckResult]:
    results = []
    for check, function in (("cover-letter", check_cover_letter),
                            ("numbering", check_numbering),
                            ("version", check_version)):
        if series.kind == RANGE:
            results.append(skipped(check, "a range of the tree is not mail yet"))
        else:
            results.append(function(series))
    results.append(check_size(series))
    results.append(check_base_commit(series, lambda i: is_commit(tree, i) is not None,
                                      str(tree.root)))
    if series.kind == RANGE:
        results.append(skipped("threading", "a range of the tree is not mail yet"))
    else:
        results.append(check_threading(series))
    return results


def _ordered(results: list[CheckResult]) -> list[CheckResult]:
    """Patches in order, each in PATCH_CHECKS order, then the series."""
    def key(result: CheckResult):
        if result.patch is None:
            return (1, 0, (SERIES_CHECKS + REPLY_CHECKS).index(result.check))
        return (0, result.patch, (PATCH_CHECKS + REPLY_CHECKS).index(result.check))
    return sorted(results, key=key)
