"""patchgen verify: build a tree, boot it, run the soft-offline test.

    tree -> build (build.py) -> initramfs (initramfs.py) -> boot (boot.py)
         -> verdict (verdict.py)

With a series, the base and the tip are built one after the other in the
same source folder and the same O= folder, so the tip's build is
incremental.  That folder is a git worktree of the user's repository in
the cache (made once, reused): verify never checks anything out in the
user's own working tree, and never moves a branch.

Every run gets a folder in the cache (runs/<date>-<time>/) with the build
logs, the serial logs, the booted bzImage and the verdicts as JSON.
"""

import fcntl
import hashlib
import json
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from patchgen.boot import (DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, QEMU,
                           BootResult, boot, check_kvm, qemu_argv)
from patchgen.build import (DEFAULT_BUILD_TIMEOUT, BuildResult, Progress,
                            build_kernel, check_kernel_tree)
from patchgen.cache import cache_dir
from patchgen.errors import (CommandFailed, NotAGitTree, SeriesProblem,
                             ToolMissing, UnknownRevision)
from patchgen.gitenv import FIXED_IDENTITY
from patchgen.initramfs import (DEFAULT_STRESS, Initramfs, find_busybox,
                                make_initramfs)
from patchgen.runner import run
from patchgen.verdict import Verdict, parse_serial_log

ProgressFn = Callable[[Progress], None]


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
    memory_mb: int = DEFAULT_MEMORY_MB


@dataclass(frozen=True)
class Outcome:
    """One kernel built, booted and judged."""

    label: str                  # "tree", "base" or "tip"
    revision: str | None        # the commit built, when there is one
    build: BuildResult
    boot: BootResult
    verdict: Verdict

    def to_dict(self) -> dict:
        return {
            "label": self.label,
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
class Report:
    tree: Path
    run_dir: Path
    outcomes: tuple
    series: str | None = None

    @property
    def judged(self) -> Outcome:
        """The outcome the exit status follows: the tip of a series."""
        return self.outcomes[-1]

    @property
    def exit_code(self) -> int:
        return self.judged.verdict.exit_code

    def to_dict(self) -> dict:
        return {"tree": str(self.tree), "series": self.series,
                "run_dir": str(self.run_dir),
                "verdict": self.judged.verdict.label,
                "exit_code": self.exit_code,
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
                     on_boot: Callable[[list], None] | None = None) -> Outcome:
    """One kernel from source to verdict."""
    if label == "tree":
        what = f"the kernel in {tree}"
    else:
        what = f"the series' {label} ({(revision or '')[:12]})"

    def labelled(event: Progress) -> None:
        if progress:
            progress(replace(event, stage=f"{label} {event.stage}"))

    # Keep the kernel that is booted: a later build in the same O= folder
    # (the tip of a series, another run) overwrites the folder's bzImage.
    build = build_kernel(tree, run_dir / f"{label}-build.log",
                         jobs=options.jobs, timeout=options.build_timeout,
                         progress=labelled, what=what,
                         copy_to=run_dir / f"{label}-bzImage")
    kernel = build.bzimage
    if on_boot:
        on_boot(qemu_argv(kernel, initramfs.path, kvm=options.kvm,
                          memory_mb=options.memory_mb))
    labelled(Progress("boot", "QEMU", str(kernel), 0, 0.0))
    booted = boot(kernel, initramfs.path, run_dir / f"{label}-serial.log",
                  kvm=options.kvm, timeout=options.boot_timeout,
                  memory_mb=options.memory_mb)
    verdict = parse_serial_log(booted.output, timed_out=booted.timed_out,
                               timeout=booted.timeout)
    outcome = Outcome(label, revision, build, booted, verdict)
    (run_dir / f"{label}-verdict.json").write_text(
        json.dumps(outcome.to_dict(), indent=2) + "\n")
    return outcome


def verify(options: VerifyOptions, progress: ProgressFn | None = None,
           on_boot: Callable[[list], None] | None = None,
           initramfs: Initramfs | None = None) -> Report:
    """Build, boot and judge the tree (or a series' base and tip)."""
    tree = check_kernel_tree(options.tree)
    preflight(options)
    series = resolve_series(tree, options) if options.series else None
    initramfs = initramfs or make_initramfs(options.stress)
    run_dir = new_run_dir()
    if series is None:
        revision = _head_of(tree)
        outcome = build_boot_judge(tree, "tree", revision, initramfs, run_dir,
                                   options, progress, on_boot)
        report = Report(tree, run_dir, (outcome,))
    else:
        report = _verify_series(tree, series, options, initramfs, run_dir,
                                progress, on_boot)
    (run_dir / "report.json").write_text(
        json.dumps(report.to_dict(), indent=2) + "\n")
    return report


# --- series ---------------------------------------------------------------

def _git(tree: Path, *args, timeout: float = 600, check: bool = True,
         env=None):
    return run(["git", "-C", tree, *args], timeout=timeout, check=check,
               env=env)


def _is_git_top(tree: Path) -> bool:
    """True when *tree* is the top of a git working tree (not merely a
    folder inside some other repository)."""
    result = _git(tree, "rev-parse", "--show-toplevel", check=False)
    return (result.returncode == 0
            and Path(result.stdout.strip()).resolve() == tree.resolve())


def _head_of(tree: Path) -> str | None:
    """The commit checked out in *tree*, if it is a git tree; for the
    record only (uncommitted changes are built too)."""
    if not _is_git_top(tree):
        return None
    result = _git(tree, "rev-parse", "--verify", "-q", "HEAD^{commit}",
                  check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def _commit_of(tree: Path, rev: str, what: str) -> str:
    result = _git(tree, "rev-parse", "--verify", "-q", f"{rev}^{{commit}}",
                  check=False)
    if result.returncode != 0:
        raise UnknownRevision(f"{what} {rev!r} is not a commit in {tree}: "
                              "give a branch, tag or commit id that exists "
                              "there")
    return result.stdout.strip()


def series_worktree_path(tree: Path) -> Path:
    """The cache worktree used for *tree*'s series (one per repository
    path, so that every series of a tree shares one O= folder)."""
    key = hashlib.sha256(str(tree.resolve()).encode()).hexdigest()[:12]
    return cache_dir("worktrees") / f"{tree.name}-{key}"


@contextmanager
def _locked(path: Path):
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _ensure_worktree(tree: Path, path: Path, start: str) -> None:
    if (path / ".git").exists():
        probe = _git(path, "rev-parse", "--show-toplevel", check=False)
        if probe.returncode == 0:
            return
        shutil.rmtree(path)
    _git(tree, "worktree", "prune")
    _git(tree, "worktree", "add", "--detach", "--force", path, start,
         timeout=1800)


def _checkout(worktree: Path, commit: str) -> None:
    # git only rewrites the files that differ, so their mtimes change and
    # make rebuilds only what depends on them.
    _git(worktree, "am", "--abort", check=False)
    _git(worktree, "checkout", "--detach", "--force", "-q", commit,
         timeout=1800)


def _series_patches(folder: Path) -> list[Path]:
    patches = sorted(p.resolve() for p in folder.iterdir()
                     if p.suffix in (".patch", ".diff", ".eml")
                     and not p.name.startswith("0000-"))
    if not patches:
        raise SeriesProblem(f"{folder} holds no .patch files: give a folder "
                            "made by git format-patch, or a branch")
    return patches


def _apply_patches(worktree: Path, patches: list[Path]) -> str:
    result = _git(worktree, "am", "--quiet", *patches, check=False,
                  env=FIXED_IDENTITY)
    if result.returncode != 0:
        text = (result.stdout + result.stderr).strip().splitlines()
        _git(worktree, "am", "--abort", check=False)
        why = next((line for line in text if "error" in line.lower()
                    or "patch failed" in line.lower()), text[0] if text else "")
        raise SeriesProblem(f"the series does not apply to its base: {why}")
    return _commit_of(worktree, "HEAD", "the applied series")


@dataclass(frozen=True)
class Series:
    """What --series names: a base commit, and either a tip commit or
    patches to apply on the base."""

    name: str
    base: str
    tip: str | None
    patches: tuple


def resolve_series(tree: Path, options: VerifyOptions) -> Series:
    """Check --series/--base before anything is built."""
    if not _is_git_top(tree):
        raise NotAGitTree(f"{tree} is not a git repository, so --series has "
                          "nothing to check out: verify the tree without "
                          "--series, or make it a git repository")
    series_dir = Path(options.series)
    if series_dir.is_dir():
        patches = _series_patches(series_dir)
        base = _commit_of(tree, options.base or "HEAD", "the base")
        tip = None
    else:
        patches = []
        tip = _commit_of(tree, options.series, "the series branch")
        if options.base:
            base = _commit_of(tree, options.base, "the base")
        else:
            merge = _git(tree, "merge-base", "HEAD", tip, check=False)
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
    return Series(options.series, base, tip, tuple(patches))


def _verify_series(tree: Path, series: Series, options: VerifyOptions,
                   initramfs: Initramfs, run_dir: Path, progress,
                   on_boot) -> Report:
    worktree = series_worktree_path(tree)
    with _locked(worktree):
        _ensure_worktree(tree, worktree, series.base)
        _checkout(worktree, series.base)
        first = build_boot_judge(worktree, "base", series.base, initramfs,
                                 run_dir, options, progress, on_boot)
        if series.patches:
            tip = _apply_patches(worktree, list(series.patches))
        else:
            tip = series.tip
            _checkout(worktree, tip)
        second = build_boot_judge(worktree, "tip", tip, initramfs, run_dir,
                                  options, progress, on_boot)
    return Report(tree, run_dir, (first, second), series.name)
