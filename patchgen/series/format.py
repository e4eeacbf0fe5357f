"""Format: a range of commits becomes a mailing-list-ready series folder.

    tree -> ... -> commits -> [series -> format] -> checks

format_series() takes a FormatOptions and returns a FormatResult:

1. select the commits (series.py) and the version (versions.py);
2. run the real `git format-patch --cover-letter --thread=shallow
   --base=<base>` (plus `-v N` and `--range-diff` from v2 on) into a
   temporary folder next to the final one;
3. complete the cover letter (cover.py): subject and text, "Changes in
   vN:" from `git range-diff`, a note when the base is a local import,
   the change-id after base-commit:;
4. prove the files rebuild the branch: applied to the base as `git am`
   would (in a private index), they must give the tip's tree exactly;
5. find each file's recipients (recipients.py) and write them as To:/Cc:
   headers, before the proof of step 4, so that it covers them too; then
   rename the folder into place (series/<topic>/v<N>/) and record the
   version in series.json (recipients per file included);
6. run the tree's checkpatch.pl on every patch.

A version the user marks sent (mark_sent(): `format --sent`, or its
Message-Id found in an mbox given with --sent-mbox) is never rewritten: the
next run writes vN+1.  The series is found again by branch from another
-o folder through series_index.py (nothing is kept in the repository).

Nothing is sent; the result carries the `git send-email` command line a
person would run.  Nothing half-written is left: until the rename, all
files are in a hidden temporary folder that is removed on any failure.
"""

import mailbox
import re
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from patchgen import __version__
from patchgen.kernel.checkpatch import CheckpatchResult, checkpatch_script, run_checkpatch
from patchgen.series.cover import (EDITME, GENERIC_TEMPLATE, CoverText, base_note,
                            changelog_of_patch, changes_block, changes_of, compose,
                            from_previous, from_template, subsystem_prefix,
                            summary_paragraph)
from patchgen.infra.errors import (BadArgument, BaseNotAncestor, FormatIdentityUnset,
                             OutputExists,
                             PatchgenError, PreviousVersionMissing,
                             RoundTripFailed, VersionSent)
from patchgen.series.patchfiles import (add_below_separator, add_recipients,
                                        check_recipient,
                                 fill_cover_letter, read_mail, replay, tree_of)
from patchgen.series.recipients import (Recipients, config_recipients, find_recipients,
                                 patch_recipients, union)
from patchgen.engine.registry import get_rule, all_rules
from patchgen.infra.runner import run
from patchgen.infra.scratch import is_stale, owner_tag, scratch_root
from patchgen.series.select import CommitRange, select_range, slug, topic_for
from patchgen.series import index as series_index
from patchgen.engine.sources import (GitKernelTree, makefile_version, open_git_tree,
                           version_text)
from patchgen.series.versions import (STATE_FILE, PatchChange, SeriesState,
                               VersionRecord, load_state, new_change_id,
                               now_iso, parse_range_diff, range_diff,
                               recover_commits, save_state)

COVER_NAME = "0000-cover-letter.patch"
MAX_PATCHES = 15          # SERIES.md: at most 15 patches per posting
NARROW_BEFORE = (5, 7)    # checkpatch's default line length became 100 in 5.7


@dataclass(frozen=True)
class FormatOptions:
    tree: Path
    branch: str | None = None
    range_spec: str | None = None
    base: str | None = None
    version: int | None = None
    rfc: bool = False
    output: Path | None = None        # None: ./series
    topic: str | None = None
    checkpatch: bool = True
    strict: bool = False
    max_line_length: int | None = None
    scripts_from: Path | None = None  # another tree's checkpatch/get_maintainer
    cover_template: Path | None = None
    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    sent_mbox: Path | None = None     # mark versions whose Message-Id is in it
    subject_prefix: str | None = None  # "PATCH 4.14"; None: "PATCH"
    in_reply_to: str | None = None    # the cover letter replies to this mail
    stdout: bool = False              # one mbox on stdout, no folder written


@dataclass(frozen=True)
class FormatResult:
    topic: str
    version: int
    folder: Path | None               # None with --stdout
    files: tuple[Path, ...]           # cover letter first
    cover: Path | None
    selection: CommitRange
    change_id: str
    cover_source: str | None
    previous: VersionRecord | None
    changes: tuple[PatchChange, ...]
    recipients: Recipients            # the cover letter's: everyone
    per_file: tuple[tuple[str, Recipients], ...]
    checks: tuple[CheckpatchResult, ...] | None
    checkpatch_note: str | None
    max_line_length: int | None
    round_trip_tree: str
    send_command: tuple[str, ...]
    replaced: bool
    state_file: Path
    notes: tuple[str, ...] = field(default=())
    editme: bool = False              # the changes list still says EDITME
    mbox: bytes | None = None         # --stdout: the series as one mbox
    declared_base: str | None = None  # --base with --range: base-commit:


Notify = Callable[[str], None]


def _quiet(_message: str) -> None:
    pass


# --- choosing the output folder -------------------------------------------

def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def output_root(options: FormatOptions, tree: GitKernelTree) -> Path:
    if options.output is None:
        root = Path("series")
        if _inside(Path.cwd() / root, Path(tree.top)):
            raise BadArgument(
                f"the default output folder {Path.cwd() / root} is inside the "
                "kernel tree's working tree, which patchgen does not touch: "
                "pass -o with a folder (outside it, or there if you mean it)")
    else:
        root = Path(options.output)
    if root.exists() and not root.is_dir():
        raise OutputExists(f"{root} exists and is not a folder: pass -o a folder")
    return root.resolve()


def choose_version(options: FormatOptions, state: SeriesState | None,
                   topic_dir: Path, selection: CommitRange,
                   notify: Notify) -> tuple[int, bool]:
    """(version, replacing) after checking that the folder may be written.

    Without -v: the latest version, replaced, unless it was sent: then the
    next one.  A sent version is never rewritten."""
    latest = state.latest() if state else None
    if options.version is not None:
        version = options.version
    elif latest is not None and latest.sent:
        version = latest.version + 1
        notify(f"v{latest.version} was sent ({latest.sent}, {latest.sent_how}): "
               f"writing v{version}")
        if latest.tip == selection.tip:
            notify(f"the commits are v{latest.version}'s: v{version} will say "
                   "it changes nothing")
    else:
        version = latest.version if latest else 1
    folder = topic_dir / f"v{version}"
    record = state.get(version) if state else None
    if record is not None and record.sent:
        assert latest is not None and state is not None  # record is state's
        following = latest.version + 1 if latest.sent else latest.version
        raise VersionSent(
            f"v{version} of {state.topic} was sent ({record.sent}, "
            f"{record.sent_how}) and is never rewritten: leave out -v to "
            f"write v{following}")
    if folder.exists() or folder.is_symlink():
        if record is None or not folder.is_dir():
            raise OutputExists(
                f"{folder} exists and patchgen did not write it (it is not in "
                f"{topic_dir / 'series.json'}): move it away or pass -o "
                "another folder")
        notify(f"{folder} exists (v{version}, written {record.written}): "
               "replacing that folder only")
        if options.version is None and record.tip != selection.tip:
            notify(f"the commits differ from v{version}'s: pass -v {version + 1} "
                   "to make a new version instead of replacing this one")
        return version, True
    return version, False


# --- the cover letter's words ----------------------------------------------

def template_context(tree: GitKernelTree, selection: CommitRange, topic: str,
                     rule_report=None) -> dict:
    source = tree.at(selection.base)
    version = makefile_version(source)
    base_version = version_text(version)
    subjects = list(selection.subjects)
    prefix = subsystem_prefix(subjects)
    if selection.branch:
        title = selection.branch.replace("_", " ").replace("-", " ")
    else:
        first = subjects[0]
        title = first.split(": ", 1)[1] if prefix and ": " in first else first
    context: dict[str, Any] = {
        "version": __version__,
        "kernel_version": f"Linux {base_version}" if base_version else "this tree",
        "base_version": base_version,
        "base": selection.base[:12],
        "topic": topic,
        "count": len(selection.commits),
        "prefix": prefix,
        "title": title,
        "commits": [{"number": n, "subject": c.subject, "summary":
                     summary_paragraph(c.body), "author": c.author,
                     "sha": c.sha[:12]}
                    for n, c in enumerate(selection.commits, 1)],
        "rule": None,
        "facts": {},
        "steps": [],
    }
    if rule_report is not None:
        rule, report = rule_report
        context.update(rule.template_values)
        context.update({
            "rule": rule.id,
            "facts": dict(report.facts),
            "kernel_version": (f"Linux {report.kernel_version}"
                               if report.kernel_version else "this tree"),
            "steps": [s.key for s in rule.steps(report)
                      if s.subject in selection.subjects],
        })
    return context


def _rule_and_report(tree: GitKernelTree, selection: CommitRange, notify: Notify):
    rule_id = selection.rule
    if rule_id is None:
        return None
    if rule_id not in all_rules():
        notify(f"the commits were made by patchgen rule {rule_id}, which this "
               "patchgen does not know: using the generic cover letter")
        return None
    rule = get_rule(rule_id)
    if rule.cover_template is None:
        return None
    try:
        report = rule.scan(tree.at(selection.base))
    except PatchgenError as exc:
        notify(f"rule {rule_id} cannot read the base {selection.base[:12]} "
               f"({exc}): using the generic cover letter")
        return None
    return rule, report


def cover_text(options: FormatOptions, tree: GitKernelTree,
               selection: CommitRange, topic: str, topic_dir: Path,
               previous: VersionRecord | None, notify: Notify) -> CoverText:
    rule_report = _rule_and_report(tree, selection, notify)
    context = template_context(tree, selection, topic, rule_report)
    if options.cover_template is not None:
        return from_template(options.cover_template, context, user_file=True,
                             source=str(options.cover_template))
    if previous is not None:
        first = topic_dir / previous.folder / previous.files[0]
        if first.name.endswith(COVER_NAME) and first.is_file():
            return from_previous(read_mail(first), previous.version)
        kept = from_rule_or_generic(rule_report, context)
        if first.is_file():
            kept = CoverText(kept.subject, kept.text,
                             changelog_of_patch(read_mail(first)), kept.source)
        return kept
    return from_rule_or_generic(rule_report, context)


def from_rule_or_generic(rule_report, context: dict) -> CoverText:
    if rule_report is not None:
        rule = rule_report[0]
        return from_template(rule.cover_template, context, user_file=False,
                             source=f"rule {rule.id}'s cover template")
    return from_template(GENERIC_TEMPLATE, context, user_file=False,
                         source="the commit messages (generic template: edit "
                                "the text before sending)")


def is_local_import(tree: GitKernelTree, base: str) -> bool:
    """True when others cannot fetch the base: no remote-tracking branch of a
    remote on the network (not a folder on this machine) contains it."""
    top = tree.top
    refs = run(["git", "-C", top, "for-each-ref", "--format=%(refname)",
                "--contains", base, "refs/remotes"], check=False).stdout.split()
    remotes = {ref.split("/")[2] for ref in refs if ref.count("/") >= 3}
    for remote in sorted(remotes):
        url = run(["git", "-C", top, "config", "--get", f"remote.{remote}.url"],
                  check=False).stdout.strip()
        if url and not url.startswith(("/", ".", "file://", "~")):
            return False
    return True


# --- git format-patch -----------------------------------------------------

def subject_prefix(options: FormatOptions) -> str:
    """"PATCH", --subject-prefix, with "RFC " in front for --rfc."""
    prefix = " ".join((options.subject_prefix or "PATCH").split())
    if not prefix or any(c in prefix for c in "[]"):
        raise BadArgument(f"--subject-prefix {options.subject_prefix!r} must be "
                          "words without brackets, such as \"PATCH 4.14\"")
    if options.rfc and not prefix.upper().startswith("RFC"):
        prefix = "RFC " + prefix
    return prefix


def message_id_option(value: str) -> str:
    """--in-reply-to's Message-Id, with or without brackets: "<id>"."""
    bare = value.strip().strip("<>").strip()
    if not bare or "@" not in bare or any(c.isspace() or c in "<>" for c in bare):
        raise BadArgument(f"--in-reply-to {value!r} is not a Message-Id "
                          "(id@host, as in the mail's Message-Id: header)")
    return f"<{bare}>"


def declared_base(options: FormatOptions, tree: GitKernelTree,
                  selection: CommitRange) -> str:
    """The base-commit: to write: where the range starts, or --base given
    with --range (an ancestor of the range's start: the commits between
    them become prerequisite-patch-id: lines, as git format-patch --base
    writes them)."""
    if options.base is None or options.range_spec is None:
        return selection.base
    base = tree.resolve(options.base)
    if base != selection.base and run(
            ["git", "-C", tree.repo.working_tree_dir, "merge-base",
             "--is-ancestor", base, selection.base], check=False).returncode != 0:
        raise BaseNotAncestor(
            f"--base {options.base} ({base[:12]}) is not an ancestor of where "
            f"--range {options.range_spec} starts ({selection.base[:12]}): give "
            "the commit the series and its prerequisites are built on")
    return base


def format_patch_argv(tree: GitKernelTree, selection: CommitRange, version: int,
                      rfc: bool, out_dir: Path,
                      previous_range: tuple[str, str] | None,
                      prefix: str | None = None, in_reply_to: str | None = None,
                      base: str | None = None) -> list[str]:
    argv = ["git", "-C", tree.top,
            # The user's diff and format settings must not change the mail.
            "-c", "diff.noprefix=false", "-c", "diff.mnemonicPrefix=false",
            "-c", "diff.relative=false", "-c", "diff.external=",
            "format-patch", "--thread=shallow", f"--base={base or selection.base}",
            "--suffix=.patch", "--no-to", "--no-cc",
            "--no-add-header", "--no-signoff", "--no-notes", "--no-attach",
            "--cover-from-description=none", "--no-color", "-o", str(out_dir)]
    if len(selection.commits) > 1:
        argv += ["--cover-letter", "--numbered"]
    else:
        # A lone patch is [PATCH], not [PATCH 1/1], and has no cover letter.
        argv += ["--no-numbered", "--no-cover-letter"]
    if version > 1:
        argv += ["-v", str(version)]
    if prefix is not None:
        argv.append(f"--subject-prefix={prefix}")
    elif rfc:
        argv.append("--rfc")
    if in_reply_to is not None:
        argv.append(f"--in-reply-to={in_reply_to}")
    if previous_range is not None:
        argv.append(f"--range-diff={previous_range[0]}..{previous_range[1]}")
    argv.append(f"{selection.base}..{selection.tip}")
    return argv


def send_command(folder: Path) -> tuple[str, ...]:
    """The files carry their To:/Cc: headers: git send-email needs no flags."""
    return ("git", "send-email", str(folder))


# --- the stage --------------------------------------------------------------

def _select(options: FormatOptions, tree: GitKernelTree, root: Path) -> CommitRange:
    """The commits the options name (default: the branch patchgen apply made)."""
    branch, range_spec = options.branch, options.range_spec
    if branch is None and range_spec is None:
        made = sorted({rule.default_branch for rule in all_rules().values()
                       if tree.branch_exists(rule.default_branch)})
        if len(made) != 1:
            found = (f"patchgen apply made {len(made)} branches: {', '.join(made)}"
                     if made else "there is no branch from patchgen apply")
            raise BadArgument(f"give --branch NAME or --range BASE..TIP ({found})")
        branch = made[0]
    elif branch is not None and range_spec is not None:
        raise BadArgument("give --branch or --range, not both")
    selection = select_range(tree, branch=branch, range_spec=range_spec,
                             base=options.base,
                             known_base=_earlier_base(root, options.topic, branch, tree))
    return selection


def format_series(options: FormatOptions, notify: Notify = _quiet) -> FormatResult:
    tree = open_git_tree(options.tree)
    if tree.identity() is None:
        raise FormatIdentityUnset(
            f"git user.name or user.email is not set for {tree.root}: set them "
            "(git config user.name ...; git config user.email ...), since the "
            "cover letter is from whoever sends the series")
    for kind, entries in (("--to", options.to), ("--cc", options.cc)):
        for entry in entries:
            check_recipient(entry, kind)
    if tree.is_dirty():
        notify(f"{tree.root} has uncommitted changes: they are not in the "
               "series (format reads commits only)")
    root = output_root(options, tree)
    selection = _select(options, tree, root)
    count = len(selection.commits)
    if count > MAX_PATCHES:
        notify(f"{count} patches: more than the {MAX_PATCHES} a posting should "
               "have; consider splitting the series")
    topic = topic_for(selection, options.topic)
    topic_dir = root / topic
    if topic_dir.exists() and not topic_dir.is_dir():
        raise OutputExists(f"{topic_dir} exists and is not a folder: move it away "
                           "or pass --topic another name")
    state = load_state(topic_dir, topic) if topic_dir.is_dir() else None
    if state is None and selection.branch:
        state = _adopt(tree, selection.branch, topic, topic_dir, notify)
    if options.sent_mbox is not None and state is not None:
        state, _ = recognise_sent(state, topic_dir, options.sent_mbox, notify)
    version, replacing = choose_version(options, state, topic_dir, selection, notify)
    previous = state.previous(version) if state else None
    if version > 1 and previous is None:
        raise PreviousVersionMissing(
            f"-v {version} needs an earlier version of {topic} in {topic_dir} "
            "to compare with: make v1 first (without -v), or pass -v 1")
    change_id = state.change_id if state else new_change_id(topic)
    if previous is not None and previous.base != selection.base:
        notify(f"v{previous.version} was on {previous.base[:12]}, this version "
               f"is on {selection.base[:12]} ({selection.base_reason}); pass "
               "--base if that is not where the series starts")

    previous_range, changes, changes_text = _changes_since(
        tree, topic_dir, previous, selection, version, notify)
    current = state.get(version) if state and replacing else None
    changes_text = _kept_changes(topic_dir, current, version, changes_text, notify)
    cover = cover_text(options, tree, selection, topic, topic_dir, previous, notify)
    note = _base_note(tree, selection, notify)

    prefix = subject_prefix(options)
    reply_to = message_id_option(options.in_reply_to) if options.in_reply_to else None
    base_commit = declared_base(options, tree, selection)
    if base_commit != selection.base:
        notify(f"base-commit: {base_commit[:12]} (--base); the "
               f"{_count(tree, base_commit, selection.base)} commits from there "
               f"to {selection.base[:12]} are named by prerequisite-patch-id:")

    if options.stdout:
        # Nothing is written under -o: the files exist only until printed.
        created, folder = None, None
        work = (scratch_root() / f"stdout-v{version}{owner_tag()}").resolve()
        work.mkdir()
    else:
        created = None if root.exists() else root
        topic_dir.mkdir(parents=True, exist_ok=True)
        recover_stale_folders(topic_dir)
        folder = topic_dir / f"v{version}"
        work = (topic_dir / f".v{version}.partial{owner_tag()}").resolve()
        work.mkdir()
    old = None
    try:
        written = run(format_patch_argv(tree, selection, version, options.rfc,
                                        work, previous_range, prefix,
                                        reply_to, base_commit), timeout=600)
        # git prints the files it wrote, relative to the repository.
        files = [work / Path(line).name for line in written.stdout.splitlines()
                 if line.strip()]
        if not files or any(not f.is_file() for f in files):
            raise RoundTripFailed("git format-patch did not list the files it "
                                  f"wrote: {written.stdout.strip()[:200]}")
        footer = [f"change-id: {change_id}"]
        has_cover = files[0].name.endswith(COVER_NAME)
        patches = files[1:] if has_cover else files
        if len(patches) != count:
            raise RoundTripFailed(f"git format-patch wrote {len(patches)} patches "
                                  f"for {count} commits")
        if has_cover:
            fill_cover_letter(files[0], cover.subject,
                              compose(cover.text, changes_text, cover.changelog, note),
                              footer)
        else:
            add_below_separator(files[0], compose("", changes_text,
                                                  cover.changelog, note), footer)
        recipients, per_file = _recipients(options, tree, selection, patches,
                                           files[0] if has_cover else None)
        for name, found in per_file:
            add_recipients(work / name, found.to, found.cc)
        round_trip = replay(tree, selection.base, patches, commit=False)
        expected = tree_of(tree, selection.tip)
        if round_trip != expected:
            raise RoundTripFailed(
                f"the written patches rebuild tree {round_trip[:12]}, not the "
                f"branch's {expected[:12]}, so the series folder was left as "
                "it was (a bug in patchgen: please report it)")
        message_id = read_mail(files[0]).message_id
        if options.stdout:
            checks, check_note, width = _checkpatch(options, tree, selection, patches)
            mbox = b"".join(f.read_bytes() for f in files)   # as git wrote them
            shutil.rmtree(work, ignore_errors=True)
            return FormatResult(
                topic=topic, version=version, folder=None,
                files=tuple(Path(f.name) for f in files),
                cover=Path(files[0].name) if has_cover else None,
                selection=selection, change_id=change_id,
                cover_source=cover.source if has_cover else None,
                previous=previous, changes=changes, recipients=recipients,
                per_file=tuple(per_file), checks=checks,
                checkpatch_note=check_note, max_line_length=width,
                round_trip_tree=round_trip, send_command=(),
                replaced=False, state_file=topic_dir / STATE_FILE,
                mbox=mbox, declared_base=base_commit)
        assert folder is not None  # not --stdout
        if folder.exists():
            old = topic_dir / f".v{version}.old{owner_tag()}"
            folder.rename(old)
        work.rename(folder)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        if old is not None and folder is not None and not folder.exists():
            old.rename(folder)
        if not options.stdout:
            _remove_if_empty(topic_dir, created)
        raise
    final_files = tuple(folder / f.name for f in files)
    record = VersionRecord(version, folder.name, selection.base, selection.tip,
                           tuple(c.sha for c in selection.commits),
                           selection.subjects, tuple(f.name for f in files),
                           message_id, now_iso(),
                           {name: found.to_dict() for name, found in per_file})
    new_state = (state or SeriesState(topic, change_id)).with_version(record)
    state_file = save_state(topic_dir, new_state)
    if selection.branch:
        series_index.remember(repo_key(tree), selection.branch, state_file, change_id)
    editme = EDITME in (changes_of(read_mail(folder / files[0].name), version) or "")
    if editme:
        notify(f"the `Changes in v{version}:` list in {folder / files[0].name} is "
               "seeded from git range-diff: edit it (say why; delete the "
               f"{EDITME} line) before sending")
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

    checks, check_note, width = _checkpatch(options, tree, selection,
                                            [folder / p.name for p in patches])
    return FormatResult(
        topic=topic, version=version, folder=folder, files=final_files,
        cover=final_files[0] if has_cover else None, selection=selection,
        change_id=change_id, cover_source=cover.source if has_cover else None,
        previous=previous, changes=changes, recipients=recipients,
        per_file=tuple(per_file), checks=checks, checkpatch_note=check_note, max_line_length=width,
        round_trip_tree=round_trip, send_command=send_command(folder),
        replaced=replacing, state_file=state_file, editme=editme,
        declared_base=base_commit)


def _changes_since(tree: GitKernelTree, topic_dir: Path,
                   previous: VersionRecord | None, selection: CommitRange,
                   version: int, notify: Notify):
    """(previous range, per-patch changes, "Changes in vN:" text)."""
    if previous is None:
        return None, (), ""
    old_base, old_tip, rebuilt_from = recover_commits(tree, topic_dir, previous)
    if rebuilt_from is not None:
        notify(f"v{previous.version}'s commits are gone from the repository: "
               f"rebuilt them from its patch files in {rebuilt_from}")
    previous_range = (old_base, old_tip)
    changes = parse_range_diff(
        range_diff(tree, previous_range, (selection.base, selection.tip)),
        previous.subjects, selection.subjects)
    text = changes_block(version, previous, changes, old_base, selection.base,
                         len(selection.commits))
    return previous_range, changes, text


def _base_note(tree: GitKernelTree, selection: CommitRange, notify: Notify) -> str:
    """The cover letter's note on a base others cannot fetch ("" if public)."""
    if not is_local_import(tree, selection.base):
        return ""
    base_version = version_text(makefile_version(tree.at(selection.base)))
    if base_version:
        return base_note(base_version)
    notify(f"the base {selection.base[:12]} is in no public tree and its "
           "Makefile gives no version: say in the cover letter what it "
           "corresponds to")
    return ""


def _earlier_base(root: Path, topic: str | None, branch: str | None,
                  tree: GitKernelTree | None = None) -> tuple[str, str] | None:
    """Where the latest written version of --branch's series started."""
    name = topic or (slug(branch) if branch else None)
    if name is None:
        return None
    path = root / name / STATE_FILE
    if not path.is_file() and branch and tree is not None:
        found = series_index.lookup(repo_key(tree), branch)
        path = found[0] if found else path
    if not path.is_file():
        return None
    state = load_state(path.parent, name)
    latest = state.latest() if state is not None else None
    if latest is None:
        return None
    return latest.base, f"where v{latest.version} started ({path})"


def _kept_changes(topic_dir: Path, current: VersionRecord | None, version: int,
                  seeded: str, notify: Notify) -> str:
    """The "Changes in vN:" list for a rerun of vN: the author's, once he
    edited it (no EDITME left), else the one seeded afresh."""
    if current is None or not seeded or not current.files:
        return seeded
    first = topic_dir / current.folder / current.files[0]
    if not first.is_file():
        return seeded
    edited = changes_of(read_mail(first), version)
    if edited is None or EDITME in edited:
        return seeded
    notify(f"kept the edited `Changes in v{version}:` list of {first} (delete "
           "it there to seed it again from git range-diff)")
    return edited


# --- sent versions, and the series found again by branch --------------------

def repo_key(tree: GitKernelTree) -> str:
    """The repository, as every worktree of it names it: its common git folder."""
    top = tree.top
    common = run(["git", "-C", top, "rev-parse", "--git-common-dir"]).stdout.strip()
    return str((Path(top) / common).resolve())


def _adopt(tree: GitKernelTree, branch: str, topic: str, topic_dir: Path,
           notify: Notify) -> SeriesState | None:
    """The series of *branch* kept in another folder (series_index), its
    versions pointing there, so that this folder continues it."""
    for path in series_index.lookup(repo_key(tree), branch):
        if path.parent.resolve() == topic_dir.resolve():
            continue
        other = load_state(path.parent, topic)
        if other is None or not other.versions:
            continue
        versions = tuple(replace(v, folder=str(path.parent.resolve() / v.folder))
                         for v in other.versions)
        latest = max(versions, key=lambda v: v.version)
        notify(f"branch {branch}'s series is in {path} (change-id "
               f"{other.change_id}, v{latest.version}"
               f"{' sent' if latest.sent else ''}): continuing it here")
        return SeriesState(topic, other.change_id, versions)
    return None


def mbox_message_ids(path: Path) -> set[str]:
    """The Message-Ids of the mails in an mbox file (without brackets)."""
    path = Path(path)
    if not path.is_file():
        raise BadArgument(f"--sent-mbox {path}: no such file (give an mbox, "
                          "e.g. a lore thread saved with b4 mbox or your sent mail)")
    ids = set()
    box = mailbox.mbox(str(path), create=False)
    try:
        for message in box:
            value = " ".join(str(message.get("Message-Id", "")).split())
            if value:
                ids.add(value.strip("<>"))
    except (OSError, UnicodeError) as exc:
        raise BadArgument(f"--sent-mbox {path} cannot be read as an mbox "
                          f"({exc})") from None
    finally:
        box.close()
    return ids


def _files_message_ids(topic_dir: Path, record: VersionRecord) -> dict:
    folder = topic_dir / record.folder
    return {name: read_mail(folder / name).message_id for name in record.files
            if (folder / name).is_file()}


def recognise_sent(state: SeriesState, topic_dir: Path, mbox: Path,
                   notify: Notify) -> tuple[SeriesState, list[VersionRecord]]:
    """Mark sent each version whose letter's Message-Id is in *mbox*."""
    ids = mbox_message_ids(mbox)
    marked = []
    for record in state.versions:
        if record.sent or not record.message_id or record.message_id not in ids:
            continue
        record = replace(record, sent=now_iso(), sent_how=f"found in {mbox}",
                         message_ids=_files_message_ids(topic_dir, record))
        state = state.with_version(record)
        marked.append(record)
        notify(f"v{record.version}'s Message-Id <{record.message_id}> is in "
               f"{mbox}: marked it sent")
    if marked:
        save_state(topic_dir, state)
    elif not ids:
        notify(f"{mbox} holds no mail with a Message-Id")
    return state, marked


@dataclass(frozen=True)
class SentResult:
    topic: str
    state_file: Path
    marked: tuple[VersionRecord, ...]    # newly marked
    already: tuple[VersionRecord, ...]   # marked before
    editme: tuple[int, ...]              # versions sent with EDITME left


def mark_sent(options: FormatOptions, notify: Notify = _quiet) -> SentResult:
    """`format --sent [-v N] [--sent-mbox FILE]`: record that a version was
    mailed (its files' Message-Ids and the time), so it is never rewritten."""
    tree = open_git_tree(options.tree)
    root = output_root(options, tree)
    if options.topic is not None:
        topic, branch = topic_for(None, options.topic), options.branch
    else:
        selection = _select(options, tree, root)
        topic, branch = topic_for(selection), selection.branch
    topic_dir = root / topic
    state = load_state(topic_dir, topic) if topic_dir.is_dir() else None
    if state is None and branch:
        for path in series_index.lookup(repo_key(tree), branch):
            topic_dir, state = path.parent, load_state(path.parent, topic)
            break
    if state is None or not state.versions:
        raise PreviousVersionMissing(
            f"no version of {topic} is recorded in {root / topic} (series.json): "
            "write it with patchgen format first, or pass -o/--topic")
    if options.sent_mbox is not None:
        state, marked = recognise_sent(state, topic_dir, options.sent_mbox, notify)
        already: tuple[VersionRecord, ...] = ()
        if not marked:
            raise PreviousVersionMissing(
                f"no version of {topic} has its cover letter's Message-Id in "
                f"{options.sent_mbox}: nothing marked sent")
    else:
        record = state.get(options.version) if options.version else state.latest()
        if record is None:
            raise PreviousVersionMissing(
                f"{topic} has no v{options.version} in {topic_dir / STATE_FILE}")
        if record.sent:
            marked, already = [], (record,)
        else:
            record = replace(record, sent=now_iso(), sent_how="--sent",
                             message_ids=_files_message_ids(topic_dir, record))
            state = state.with_version(record)
            save_state(topic_dir, state)
            marked, already = [record], ()
    if branch:
        series_index.remember(repo_key(tree), branch, topic_dir / STATE_FILE,
                              state.change_id)
    editme = []
    for record in marked:
        first = topic_dir / record.folder / record.files[0]
        if first.is_file() and EDITME in (changes_of(read_mail(first),
                                                     record.version) or ""):
            editme.append(record.version)
            notify(f"v{record.version} went out with its `Changes in "
                   f"v{record.version}:` list still saying {EDITME}")
    return SentResult(topic, topic_dir / STATE_FILE, tuple(marked), tuple(already),
                      tuple(editme))


def _count(tree: GitKernelTree, older: str, newer: str) -> int:
    return int(run(["git", "-C", tree.repo.working_tree_dir, "rev-list", "--count",
                    f"{older}..{newer}"]).stdout.strip() or 0)


def recover_stale_folders(topic_dir: Path) -> None:
    """What a format that was killed left in *topic_dir*: its partial
    folder goes; a version folder it had moved aside comes back, unless a
    newer one took its place (then the old one goes)."""
    for entry in sorted(topic_dir.glob(".v*")):
        if not is_stale(entry):
            continue
        match = re.match(r"^\.v(\d+)\.old-", entry.name)
        if match and not (topic_dir / f"v{match.group(1)}").exists():
            entry.rename(topic_dir / f"v{match.group(1)}")
        else:
            shutil.rmtree(entry, ignore_errors=True)


def _remove_if_empty(topic_dir: Path, created_root: Path | None) -> None:
    for folder in (topic_dir, created_root):
        if folder is None:
            continue
        try:
            folder.rmdir()
        except OSError:
            pass


def commit_paths(tree: GitKernelTree, sha: str) -> list[str]:
    """The files one commit changes, relative to the kernel tree."""
    out = run(["git", "-C", tree.repo.working_tree_dir, "diff-tree",
               "--no-commit-id", "--name-only", "-r", "--no-renames", sha]).stdout
    prefix = tree.prefix
    return [p[len(prefix):] if prefix and p.startswith(prefix) else p
            for p in out.splitlines() if p]


def _recipients(options: FormatOptions, tree: GitKernelTree,
                selection: CommitRange, patches: list[Path], cover: Path | None
                ) -> tuple[Recipients, list[tuple[str, Recipients]]]:
    """(everyone, per file name): each patch's own recipients, the cover
    letter's the union of them all."""
    scripts_root = Path(options.scripts_from) if options.scripts_from else tree.root
    tip = tree.at(selection.tip)
    maintainers = None
    source = ""
    if options.scripts_from is None and tip.exists("MAINTAINERS"):
        maintainers = tip.read("MAINTAINERS").decode("utf-8", "replace")
        source = f"MAINTAINERS at {selection.tip[:12]}"
    elif options.scripts_from is not None and (scripts_root / "MAINTAINERS").is_file():
        maintainers = (scripts_root / "MAINTAINERS").read_text(
            encoding="utf-8", errors="replace")
        source = str(scripts_root / "MAINTAINERS")
    config_to, config_cc = config_recipients(tree.top)
    identity = tree.identity()
    sender = identity[1] if identity else None
    per_file = []
    for commit, patch in zip(selection.commits, patches):
        found = find_recipients(scripts_root, [patch], commit_paths(tree, commit.sha),
                                maintainers, source)
        per_file.append((patch.name, patch_recipients(
            found, commit.message, sender, (*config_to, *options.to),
            (*config_cc, *options.cc))))
    everyone = union([r for _, r in per_file]).lists_as_to()
    per_file = [(name, found.lists_as_to()) for name, found in per_file]
    if cover is not None:
        per_file.insert(0, (cover.name, everyone))
    return everyone, per_file


def _checkpatch(options: FormatOptions, tree: GitKernelTree,
                selection: CommitRange, patches: list[Path]):
    version = makefile_version(tree.at(selection.base))
    width = options.max_line_length
    if width is None and version is not None and version[:2] < NARROW_BEFORE:
        width = 80
    if not options.checkpatch:
        return None, "checkpatch: skipped (--no-checkpatch)", width
    scripts_root = Path(options.scripts_from) if options.scripts_from else tree.root
    if checkpatch_script(scripts_root) is None:
        return None, (f"checkpatch: not run, {scripts_root} has no "
                      "scripts/checkpatch.pl (pass --scripts-from a kernel tree "
                      "that has it)"), width
    try:
        # Run in the kernel tree, so that checkpatch looks up the commit ids
        # the messages cite in that tree's history.
        checks = tuple(run_checkpatch(scripts_root, patch, strict=options.strict,
                                      max_line_length=width,
                                      cwd=tree.top)
                       for patch in patches)
    except PatchgenError as exc:
        return None, f"checkpatch: could not run ({exc}); the series is written", width
    return checks, None, width
