"""patchgen verify: build a tree, boot it, run the rule's guest test.

    tree -> build (kbuild.py) -> initramfs (initramfs.py) -> boot (boot.py)
         -> verdict (verdict.py)

The test is the rule's verify recipe (Rule.verify: the guest program, its
kernel configs, what the verdict reads); recipes.py says which rule's.

With a series, the base and the tip are built one after the other in the
same source folder and the same O= folder, so the tip's build is
incremental.  That folder is the private clone `patchgen check --build`
uses (workspace.py: made once in the cache, reused, locked): verify never
checks anything out in the user's own working tree, never moves a branch,
and adds no worktree, ref or object to the user's repository.  A folder of
patches or an mbox is read as check reads it (incoming.py) and applied
there with `git am`.

Every run gets a folder in the cache (runs/<date>-<time>/) with the build
logs, the serial logs, the booted bzImage and the verdicts as JSON.
"""

import json
import shutil
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterator

import git

from patchgen.vm.boot import (DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, QEMU,
                           BootResult, boot, check_kvm, qemu_argv)
from patchgen.vm.kbuild import (DEFAULT_BUILD_TIMEOUT, BuildResult, GuestConfig,
                            Progress, build_kernel, check_kernel_tree,
                            configured_in_place, load_config,
                            refuse_in_place)
from patchgen.infra.cache import cache_dir, workdir_for
from patchgen.infra.errors import (BuildFailed, CommandFailed, NotAGitTree, NotASeries,
                             SeriesProblem, ToolMissing, UnknownRevision)
from patchgen.series.incoming import Mail, read_series
from patchgen.vm.initramfs import (DEFAULT_STRESS, Initramfs, find_busybox,
                                make_initramfs)
from patchgen.infra.runner import run, run_git
from patchgen.engine.sources import GitKernelTree, commit_id
from patchgen.engine.registry import get_rule
from patchgen.vm.generated import Generated, generate, user_identity
from patchgen.vm.recipes import choose
from patchgen.vm.verdict import Verdict, parse_serial_log
from patchgen.kernel.workspace import (Workspace, first_that_does_not_apply,
                                persistent_workspace)

ProgressFn = Callable[[Progress], None]
# Boots a built kernel another way than boot.boot (lava_run.lava_run_boot):
# (kernel, initramfs, run_dir, label, options) -> (BootResult, Verdict).
BootFn = Callable[..., tuple]


@dataclass(frozen=True)
class VerifyOptions:
    """What the user asked for, as a frozen value (argparse stays in cli)."""

    tree: Path
    series: str | None = None
    base: str | None = None
    kvm: bool = False
    stress: int = DEFAULT_STRESS
    boot_timeout: float = DEFAULT_TIMEOUT
    build_timeout: float = DEFAULT_BUILD_TIMEOUT
    jobs: int | None = None
    memory_mb: int | None = None        # default: the config's, else 256
    # --config NAME|FILE, or both of --matrix: each is built and booted;
    # "all": every config of the recipe.
    configs: tuple = ("default",)
    rule: str | None = None             # --rule: whose verify recipe
    # A rule whose apply makes the series, per tree, in the tree's private
    # clone (a matrix's `series = { rule = ... }`; generated.py).
    generate: str | None = None


@dataclass(frozen=True)
class FailedBuild:
    """A kernel of the run that did not build: what KCIDB reports for it."""

    label: str
    revision: str | None
    config: str
    log: Path
    seconds: float
    errors: tuple


@dataclass(frozen=True)
class Outcome:
    """One kernel built, booted and judged."""

    label: str                  # "tree", "base" or "tip"
    revision: str | None        # the commit built, when there is one
    build: BuildResult
    boot: BootResult
    verdict: Verdict
    config: str = "default"

    @property
    def name(self) -> str:
        """The label with the config, for file names and tables."""
        return (self.label if self.config == "default"
                else f"{self.label}-{self.config}")

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "config": self.config,
            "missing_optional_symbols": list(self.build.missing_optional),
            "revision": self.revision,
            "build": {"tree": str(self.build.tree),
                      "build_dir": str(self.build.build_dir),
                      "log": str(self.build.log),
                      "seconds": round(self.build.seconds, 1),
                      "steps": self.build.steps},
            "boot": {"command": self.boot.command,
                     "serial_log": str(self.boot.serial_log),
                     "seconds": round(self.boot.seconds, 1),
                     "timed_out": self.boot.timed_out},
            **self.verdict.to_dict(),
        }


@dataclass(frozen=True)
class VerifyReport:
    tree: Path
    run_dir: Path
    outcomes: tuple
    series: str | None = None
    rule: str | None = None             # whose verify recipe ran
    generated: Generated | None = None  # the series the rule made here

    @property
    def judged(self) -> Outcome:
        """The outcome the exit status follows: the tip of a series (the
        first failing one of its configs)."""
        last = [o for o in self.outcomes
                if o.label == self.outcomes[-1].label]
        return next((o for o in last if not o.verdict.passed), last[-1])

    @property
    def exit_code(self) -> int:
        return self.judged.verdict.exit_code

    def to_dict(self) -> dict:
        return {"tree": str(self.tree), "series": self.series,
                "rule": self.rule, "run_dir": str(self.run_dir),
                "configs": list(dict.fromkeys(o.config
                                              for o in self.outcomes)),
                "verdict": self.judged.verdict.label,
                "exit_code": self.exit_code,
                **({"generated": self.generated.to_dict()}
                   if self.generated else {}),
                "results": [o.to_dict() for o in self.outcomes]}


def preflight(options: VerifyOptions) -> None:
    """Fail before a long build when the boot could not happen anyway."""
    if shutil.which(QEMU) is None:
        raise ToolMissing(f"{QEMU} is not installed: install the Debian "
                          "package qemu-system-x86 and retry")
    find_busybox()
    if options.kvm:
        check_kvm()
    if shutil.which("make") is None:
        raise ToolMissing("make is not installed: install the Debian "
                          "package make and retry")


KEEP_RUNS = 30


def new_run_dir() -> Path:
    """A new folder for this run's logs; the oldest beyond KEEP_RUNS go."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    root = cache_dir("runs")
    old = sorted((p for p in root.iterdir() if p.is_dir()),
                 key=lambda p: p.stat().st_mtime)
    for stale in old[:max(0, len(old) - KEEP_RUNS + 1)]:
        shutil.rmtree(stale, ignore_errors=True)
    for n in range(1000):
        path = root / (f"{stamp}" + (f"-{n}" if n else ""))
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise CommandFailed(f"cannot make a run folder in {root}")


def build_boot_judge(tree: Path, label: str, revision: str | None,
                     initramfs: Initramfs, run_dir: Path,
                     options: VerifyOptions,
                     progress: ProgressFn | None = None,
                     on_boot: Callable[[list], None] | None = None,
                     workdir: Path | None = None,
                     config: GuestConfig | None = None,
                     boot_with: BootFn | None = None) -> Outcome:
    """One kernel from source to verdict; its O= folder is in *workdir*
    (default: the cache folder of *tree*).  *config* is one of the rule's
    (kbuild.load_config), and with it the recipe the verdict reads."""
    if config is None:
        raise TypeError("build_boot_judge needs the config (kbuild.load_config)")
    if label == "tree":
        what = f"the kernel in {tree}"
    else:
        what = f"the series' {label} ({(revision or '')[:12]})"
    name = label if config.name == "default" else f"{label}-{config.name}"
    if config.name != "default":
        what += f" with config {config.name}"

    def labelled(event: Progress) -> None:
        if progress:
            progress(replace(event, stage=f"{name} {event.stage}"))

    # Keep the kernel that is booted: a later build in the same O= folder
    # (the tip of a series, another run) overwrites the folder's bzImage.
    log = run_dir / f"{name}-build.log"
    start = time.monotonic()
    try:
        build = build_kernel(tree, log,
                             fragment=config.fragment, optional=config.optional,
                             jobs=options.jobs, timeout=options.build_timeout,
                             progress=labelled, what=what,
                             copy_to=run_dir / f"{name}-bzImage",
                             workdir=workdir)
    except BuildFailed as failure:
        failure.failed = FailedBuild(label, revision, config.name, log,
                                     time.monotonic() - start, failure.errors)
        raise
    kernel = build.bzimage
    memory = options.memory_mb or config.memory_mb or DEFAULT_MEMORY_MB
    if on_boot:
        on_boot(qemu_argv(kernel, initramfs.path, kvm=options.kvm,
                          memory_mb=memory,
                          extra_kernel_args=config.kernel_args,
                          smp=config.smp))
    labelled(Progress("boot", "QEMU", str(kernel), 0, 0.0))
    if boot_with is not None:
        booted, verdict = boot_with(kernel, initramfs, run_dir, name, options,
                                    config)
    else:
        booted = boot(kernel, initramfs.path, run_dir / f"{name}-serial.log",
                      kvm=options.kvm, timeout=options.boot_timeout,
                      memory_mb=memory, extra_kernel_args=config.kernel_args,
                      smp=config.smp)
        verdict = parse_serial_log(booted.output, timed_out=booted.timed_out,
                                   timeout=booted.timeout, recipe=config.recipe)
    outcome = Outcome(label, revision, build, booted, verdict, config.name)
    (run_dir / f"{name}-verdict.json").write_text(
        json.dumps(outcome.to_dict(), indent=2) + "\n")
    return outcome


def verify(options: VerifyOptions, progress: ProgressFn | None = None,
           on_boot: Callable[[list], None] | None = None,
           initramfs: Initramfs | None = None,
           boot_with: BootFn | None = None) -> VerifyReport:
    """Build, boot and judge the tree (or a series' base and tip), once
    per config asked for; *boot_with* boots instead of qemu here (LAVA)."""
    tree = check_kernel_tree(options.tree)
    series = (resolve_series(tree, options)
              if options.series or options.generate else None)
    rule, recipe = choose(options.rule or options.generate,
                          series_messages(tree, series))
    names = (tuple(recipe.configs) if tuple(options.configs) == (ALL_CONFIGS,)
             else options.configs)
    configs = [load_config(recipe, c) for c in names]
    preflight(options)
    initramfs_for = {c.name: initramfs or make_initramfs(
        recipe.program, options.stress, extra_args=c.guest_args)
        for c in configs}
    run_dir = new_run_dir()

    def judge_all(root, label, revision, workdir=None):
        return [build_boot_judge(root, label, revision, initramfs_for[c.name],
                                 run_dir, options, progress, on_boot,
                                 workdir=workdir, config=c, boot_with=boot_with)
                for c in configs]

    if series is None:
        revision = _head_of(tree)
        if configured_in_place(tree) and revision is not None:
            outcomes = _verify_private_copy(tree, revision, judge_all)
        else:
            refuse_in_place(tree)
            outcomes = judge_all(tree, "tree", revision)
        report = VerifyReport(tree, run_dir, tuple(outcomes), rule=rule)
    else:
        report = replace(_verify_series(tree, series, judge_all, run_dir,
                                        progress),
                         rule=rule)
    (run_dir / "report.json").write_text(
        json.dumps(report.to_dict(), indent=2) + "\n")
    return report


# The progress event that says what the rule made (the printers show its
# target as it is).
SERIES_STAGE = "series"


def generated_text(generated: Generated) -> str:
    if generated.tip is None:
        return (f"rule {generated.rule}: {generated.verdict}, no series: "
                f"verifying the base only ({generated.reason})")
    return (f"rule {generated.rule}: {generated.patches} patches on "
            f"{generated.base[:12]} ("
            + ("made before on this base, reused" if generated.reused
               else "made now")
            + ")")


# --config all: every config of the rule's recipe.
ALL_CONFIGS = "all"


# --- series ---------------------------------------------------------------

def series_messages(tree: Path, series: "SeriesUnderTest | None") -> list[str]:
    """The commit messages of the series (for their provenance lines)."""
    if series is None or series.rule:
        return []
    if series.tip is None:
        return [mail.message for mail in series.mails]
    log = run_git(tree, "log", "--format=%B%x00", f"{series.base}..{series.tip}",
                  check=False)
    return log.stdout.split("\0") if log.returncode == 0 else []


def _is_git_top(tree: Path) -> bool:
    """True when *tree* is the top of a git working tree (not merely a
    folder inside some other repository)."""
    result = run_git(tree, "rev-parse", "--show-toplevel", check=False)
    return (result.returncode == 0
            and Path(result.stdout.strip()).resolve() == tree.resolve())


def _head_of(tree: Path) -> str | None:
    """The commit checked out in *tree*, if it is a git tree; for the
    record only (uncommitted changes are built too)."""
    return commit_id(tree, "HEAD") if _is_git_top(tree) else None


def _commit_of(tree: Path, rev: str, what: str) -> str:
    found = commit_id(tree, rev)
    if found is None:
        raise UnknownRevision(f"{what} {rev!r} is not a commit in {tree}: "
                              "give a branch, tag or commit id that exists "
                              "there")
    return found


# A folder's patches: what git format-patch writes, and saved mails.
SERIES_SUFFIXES = (".patch", ".diff", ".eml")


@dataclass(frozen=True)
class SeriesUnderTest:
    """What --series names: a base commit, and either a tip commit or
    mails to apply on the base."""

    name: str
    base: str
    tip: str | None
    mails: tuple[Mail, ...]
    # The rule that makes the series in the private clone (generated.py);
    # the tip is known once it has.
    rule: str | None = None
    identity: tuple[str, str] | None = None


def _series_mails(spec: str) -> tuple[Mail, ...]:
    """The patches of a folder or an mbox, read as `patchgen check` reads
    them; a file that is not a patch stops the run before any build."""
    try:
        incoming = read_series(spec, None, folder_suffixes=SERIES_SUFFIXES)
    except NotASeries as exc:
        raise SeriesProblem(f"{exc.problem}: give a folder made by git "
                            "format-patch, an mbox file, or a branch") from None
    for mail in incoming.mails:
        if mail.problem is not None:
            raise SeriesProblem(f"{spec}: {mail.source} is {mail.problem}; "
                                "remove it, or give the folder git "
                                "format-patch made")
    if not incoming.patches:
        raise SeriesProblem(f"{spec} holds only a cover letter: give a folder "
                            "made by git format-patch, an mbox file, or a "
                            "branch")
    return incoming.patches


def resolve_series(tree: Path, options: VerifyOptions) -> SeriesUnderTest:
    """Check --series/--base before anything is built."""
    if not _is_git_top(tree):
        raise NotAGitTree(f"{tree} is not a git repository, so --series has "
                          "nothing to check out: verify the tree without "
                          "--series, or make it a git repository")
    if options.generate:
        get_rule(options.generate)
        base = _commit_of(tree, options.base or "HEAD", "the base")
        return SeriesUnderTest(f"made by rule {options.generate}", base,
                               None, (), options.generate,
                               user_identity(tree))
    assert options.series is not None
    if Path(options.series).exists():
        mails = _series_mails(options.series)
        base = _commit_of(tree, options.base or "HEAD", "the base")
        tip = None
    else:
        mails = ()
        tip = _commit_of(tree, options.series, "the series branch")
        if options.base:
            base = _commit_of(tree, options.base, "the base")
        else:
            merge = run_git(tree, "merge-base", "HEAD", tip, check=False)
            if merge.returncode != 0:
                raise SeriesProblem(f"{options.series} shares no history with "
                                    f"the checked-out HEAD of {tree}: give "
                                    "--base")
            base = merge.stdout.strip()
        if base == tip:
            raise SeriesProblem(
                f"{options.series} has no commits on top of its base "
                f"{base[:12]} (the merge base with HEAD): give --base, or "
                "check out the branch the series was made from")
    if mails:
        repo = git.Repo(tree)
        try:
            stuck = first_that_does_not_apply(GitKernelTree(tree, repo, ""), base,
                                              mails)
        finally:
            repo.close()
        if stuck is not None:
            mail, error = stuck
            raise SeriesProblem(f"the series does not apply to its base "
                                f"{base[:12]}: {mail.source}: {error} "
                                "(nothing was built)")
    return SeriesUnderTest(options.series, base, tip, mails)


@contextmanager
def series_workspace(tree: Path, series: SeriesUnderTest) -> Iterator[Workspace]:
    """The private checkout of *tree* in the cache (workspace.py, the one
    `patchgen check --build` uses), locked and at the series' base.  Made
    once per repository and reused, so every series of a tree is built in
    one source folder and one O= folder."""
    repo = git.Repo(tree)
    try:
        with persistent_workspace(GitKernelTree(tree, repo, ""), series.base,
                                  workdir_for(tree)) as workspace:
            yield workspace
    finally:
        repo.close()


def series_steps(workspace: Workspace, series: SeriesUnderTest
                 ) -> Iterator[tuple[str, str]]:
    """("base", commit), then ("tip", commit): the checkout is at each while
    the caller builds it.  The tip is made in the same folder only once the
    base is done, so only the files the series changes get new times."""
    yield "base", series.base
    if series.rule and series.tip is None:
        return          # the rule changes nothing in this tree
    if series.tip is not None:
        workspace.checkout(series.tip)
        yield "tip", series.tip
        return
    with tempfile.TemporaryDirectory(prefix="patchgen-mails-") as folder:
        for mail in series.mails:
            mail_file = Path(folder) / f"{mail.position:04d}.patch"
            mail_file.write_bytes(mail.raw)
            outcome = workspace.am(mail_file)
            if not outcome.applied:
                raise SeriesProblem(f"the series does not apply to its base: "
                                    f"{mail.source}: {outcome.error}")
    yield "tip", workspace.head()


# The uncommitted changes a private copy takes from the user's tree: every
# tracked file but the in-tree build output (workspace.py) the copy drops.
_NOT_BUILD_OUTPUT = [":(top)", *(f":(top,exclude,glob){p}" for p in
                                 (".config", "include/config/**",
                                  "include/generated/**",
                                  "arch/*/include/generated/**"))]


def _verify_private_copy(tree: Path, revision: str, judge_all) -> list:
    """A git tree configured in place (a committed .config, or an in-tree
    build): make cannot build it out of tree, and deleting what is there
    could delete the user's tracked files.  Build instead the private
    clone (the one --series and check --build use) at HEAD, with the
    user's uncommitted changes to tracked files applied there."""
    diff = run_git(tree, "diff", "--binary", "--no-color", "--no-ext-diff",
                   "HEAD", "--", *_NOT_BUILD_OUTPUT).stdout
    series = SeriesUnderTest("HEAD", revision, None, ())
    with series_workspace(tree, series) as workspace:
        if diff.strip():
            applied = run(["git", "-C", workspace.top, "apply", "--binary",
                           "--whitespace=nowarn", "-"], input=diff,
                          check=False, timeout=600)
            if applied.returncode != 0:
                raise SeriesProblem(
                    f"the uncommitted changes in {tree} do not apply to a "
                    f"clean copy of its HEAD ({applied.stderr.strip()}): "
                    "commit them, or verify a clean checkout")
        return judge_all(workspace.kernel_root, "tree", revision,
                         workdir_for(tree))


def _verify_series(tree: Path, series: SeriesUnderTest, judge_all,
                   run_dir: Path, progress: ProgressFn | None = None
                   ) -> VerifyReport:
    outcomes: list = []
    generated = None
    with series_workspace(tree, series) as workspace:
        if series.rule:
            assert series.identity is not None
            generated = generate(workspace, series.rule, series.base,
                                 series.identity)
            series = replace(series, tip=generated.tip)
            if progress:
                progress(Progress(SERIES_STAGE, "", generated_text(generated),
                                  0, 0.0))
        for label, commit in series_steps(workspace, series):
            try:
                outcomes += judge_all(workspace.kernel_root, label, commit,
                                      workdir_for(tree))
            except BuildFailed as failure:
                # What was judged before stays reportable (KCIDB: the
                # base's build and tests next to the tip's failed build).
                failure.outcomes = tuple(outcomes)
                failure.generated = generated
                raise
    return VerifyReport(tree, run_dir, tuple(outcomes), series.name,
                        generated=generated)
