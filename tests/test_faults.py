"""The fault suite: apply, format and check killed at every external step.

Each run of the real CLI (a child process) is held at one step with
PATCHGEN_FAULT_PAUSE=N (runner._fault_point: the N-th command has started
and patchgen waits for it), then signalled: SIGINT to the process alone,
SIGTERM, or SIGKILL.  After each kill:

  - no new ref but a complete branch, and no lock file in the user's .git;
  - no file of patchgen's in the user's .git or working tree (git status
    --ignored unchanged), no leftover partial folder in the series folder;
  - `git fsck` clean;
  - the next run works, and leaves no scratch of the killed one behind.

The slow test walks every step (PATCHGEN_FAULT_ALL=1) or the first and
last of each kind of step, by three signals; the quick one a few steps
that write.  Both print their counts (steps x signals, all clean).
"""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from patchgen.engine.fixtures import materialize

ROOT = Path(__file__).resolve().parent.parent
BRANCH = "hwpoison-put-last"
SIGNALS = {"SIGINT": signal.SIGINT, "SIGTERM": signal.SIGTERM,
           "SIGKILL": signal.SIGKILL}
EXPECTED_STATUS = {"SIGINT": 130, "SIGTERM": 143, "SIGKILL": -9}


def git(repo, *args, check=True) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                          text=True)
    if check and proc.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {proc.stderr}")
    return proc.stdout


class Scene:
    """A user's repository and a command to run on it, made afresh per run
    by copying a template (cp -a of a small fixture tree)."""

    def __init__(self, template: Path, work: Path, command: str):
        self.template, self.work, self.command = template, work, command
        self.tree = work / "linux"
        self.out = work / "series"
        self.cache = work / "cache"
        self.log = work / "steps.log"

    def reset(self) -> None:
        if self.work.exists():
            shutil.rmtree(self.work)
        self.work.mkdir(parents=True)
        shutil.copytree(self.template / "linux", self.tree, symlinks=True)
        if (self.template / "series").exists():
            shutil.copytree(self.template / "series", self.out, symlinks=True)

    def argv(self, again: bool = False) -> list[str]:
        if self.command == "apply":
            return ["apply", "--rule=hwpoison-put-last",
                    "--tree", str(self.tree)] + (["--force"] if again else [])
        if self.command == "format":
            return ["format", "--tree", str(self.tree), "-o", str(self.out),
                    "--no-checkpatch"]
        if self.command == "check-folder":
            return ["check", str(self.out / BRANCH / "v1"), "--tree", str(self.tree)]
        return ["check", BRANCH, "--tree", str(self.tree)]

    def env(self, pause: int | None = None) -> dict:
        env = dict(os.environ, PYTHONPATH=str(ROOT), PATCHGEN_CACHE=str(self.cache),
                   PATCHGEN_FAULT_LOG=str(self.log))
        env.pop("PATCHGEN_FAULT_PAUSE", None)
        if pause is not None:
            env["PATCHGEN_FAULT_PAUSE"] = str(pause)
        return env

    def start(self, pause: int | None = None, again: bool = False) -> subprocess.Popen:
        if self.log.exists():
            self.log.unlink()
        return subprocess.Popen([sys.executable, "-m", "patchgen",
                                 *self.argv(again)], env=self.env(pause),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def steps_logged(self) -> list[str]:
        """The steps of the last run, in order."""
        return [line.split("\t")[1] for line in self.log.read_text().splitlines()
                if "\t" in line]


_WHOLE: dict = {}


def whole_series_length(scene: Scene) -> int:
    """How many commits an apply that is not interrupted makes on the
    scene's tree (run once per template, in a copy of its own)."""
    key = str(scene.template)
    if key not in _WHOLE:
        copy = scene.work.parent / f"{scene.work.name}-whole"
        if copy.exists():
            shutil.rmtree(copy)
        shutil.copytree(scene.template / "linux", copy / "linux", symlinks=True)
        env = dict(scene.env(), PATCHGEN_CACHE=str(copy / "cache"),
                   PATCHGEN_FAULT_LOG=str(copy / "steps.log"))
        done = subprocess.run([sys.executable, "-m", "patchgen", "apply",
                               "--rule=hwpoison-put-last",
                               "--tree", str(copy / "linux")], env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        _WHOLE[key] = int(git(copy / "linux", "rev-list", "--count",
                              f"HEAD..{BRANCH}").strip())
        shutil.rmtree(copy)
    return _WHOLE[key]


def _user_state(tree: Path) -> dict:
    git_dir = tree / ".git"
    files = {str(p.relative_to(git_dir)) for p in git_dir.rglob("*")
             if p.is_file() and "objects" not in p.relative_to(git_dir).parts[:1]}
    return {"refs": git(tree, "for-each-ref", "--format=%(refname) %(objectname)"),
            "status": git(tree, "status", "--porcelain", "--ignored"),
            "head": git(tree, "rev-parse", "HEAD"),
            "files": files}


def _check_clean(scene: Scene, before: dict, what: str) -> None:
    tree = scene.tree
    git_dir = tree / ".git"
    locks = [str(p) for p in git_dir.rglob("*.lock")]
    assert not locks, f"{what}: locks left: {locks}"
    ours = [str(p) for p in git_dir.rglob("*patchgen*")]
    assert not ours, f"{what}: patchgen's files in .git: {ours}"
    temporary = [str(p) for p in (git_dir / "objects").rglob("tmp_*")]
    assert not temporary, f"{what}: temporary objects left: {temporary}"
    after = _user_state(tree)
    assert after["status"] == before["status"], f"{what}: working tree changed"
    assert after["head"] == before["head"], f"{what}: HEAD moved"
    if after["refs"] != before["refs"]:
        added = set(after["refs"].splitlines()) - set(before["refs"].splitlines())
        assert len(added) == 1 and next(iter(added)).startswith(
            f"refs/heads/{BRANCH} "), f"{what}: refs changed: {added}"
        # A branch may exist only if it is the whole series.
        count = git(tree, "rev-list", "--count", f"HEAD..{BRANCH}").strip()
        whole = whole_series_length(scene)
        assert count == str(whole), \
            f"{what}: a half-made branch ({count} of {whole} commits)"
    new_files = after["files"] - before["files"]
    allowed = {f"refs/heads/{BRANCH}", f"logs/refs/heads/{BRANCH}", "logs/HEAD",
               "ORIG_HEAD", "FETCH_HEAD"}
    assert not (new_files - allowed), f"{what}: new files in .git: {new_files - allowed}"
    fsck = subprocess.run(["git", "-C", str(tree), "fsck", "--no-dangling",
                           "--no-progress"], capture_output=True, text=True)
    assert fsck.returncode == 0 and "error" not in fsck.stderr, \
        f"{what}: git fsck: {fsck.stdout}{fsck.stderr}"
    if scene.out.exists():
        partial = [str(p) for p in scene.out.rglob(".v*")]
        # A killed process's partial folder may remain until the next run.
        assert all(".partial-p" in p or ".old-p" in p for p in partial), partial


def _check_next_run(scene: Scene, baseline: int, what: str) -> None:
    proc = scene.start(again=True)
    out, err = proc.communicate(timeout=300)
    expected = {baseline}
    if scene.command == "format":
        expected = {0}
    assert proc.returncode in expected, \
        f"{what}: the next run exited {proc.returncode}: {err.decode()}"
    assert b"Traceback" not in err, f"{what}: {err.decode()}"
    scratch = scene.cache / "scratch"
    left = list(scratch.iterdir()) if scratch.exists() else []
    assert not left, f"{what}: scratch left after the next run: {left}"
    if scene.out.exists():
        partial = list(scene.out.rglob(".v*"))
        assert not partial, f"{what}: partial folders after the next run: {partial}"


def _wait_for_orphans(scene: Scene, timeout: float = 30) -> None:
    """Wait until no process names the scene's folder on its command line
    (git commands a SIGKILLed patchgen started run on, as orphans)."""
    needle = str(scene.work).encode()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if needle in (entry / "cmdline").read_bytes():
                    busy = True
                    break
            except OSError:
                continue
        if not busy:
            return
        time.sleep(0.05)


def _kill_at(scene: Scene, step: int, name: str, signame: str, baseline: int) -> None:
    what = f"{scene.command} killed by {signame} at step {step} ({name})"
    scene.reset()
    before = _user_state(scene.tree)
    proc = scene.start(pause=step)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if scene.log.exists() and "paused" in scene.log.read_text():
            break
        if proc.poll() is not None:
            pytest.fail(f"{what}: finished before the step: {proc.stderr.read()}")
        time.sleep(0.02)
    else:
        proc.kill()
        pytest.fail(f"{what}: never reached the step")
    os.kill(proc.pid, SIGNALS[signame])
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail(f"{what}: still running 60 s after the signal (a hang)")
    text = err.decode("utf-8", "replace")
    assert "Traceback" not in text and "Exception ignored" not in text, f"{what}: {text}"
    assert proc.returncode in (EXPECTED_STATUS[signame], 0, baseline), \
        f"{what}: exit {proc.returncode}: {text}"
    if signame == "SIGKILL":
        # The command patchgen held there runs on without it; let it end.
        _wait_for_orphans(scene)
    _check_clean(scene, before, what)
    _check_next_run(scene, baseline, what)


def _points(names: list[str], every: bool) -> list[int]:
    """Which steps to kill at: all of them, or the first and the last of
    each kind (each git subcommand)."""
    if every:
        return list(range(1, len(names) + 1))
    chosen = set()
    for name in set(names):
        where = [i + 1 for i, n in enumerate(names) if n == name]
        chosen |= {where[0], where[-1]}
    return sorted(chosen)


@pytest.fixture(scope="module")
def templates(tmp_path_factory):
    """A fixture tree with and without the branch and a series folder."""
    base = tmp_path_factory.mktemp("fault-templates")
    plain = base / "plain"
    materialize("e3-v4.14", plain / "linux")
    applied = base / "applied"
    shutil.copytree(plain, applied, symlinks=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PATCHGEN_CACHE=str(base / "cache"))
    for argv in (["apply", "--rule=hwpoison-put-last", "--tree", applied / "linux"],
                 ["format", "--tree", applied / "linux", "-o", applied / "series",
                  "--no-checkpatch"]):
        subprocess.run([sys.executable, "-m", "patchgen", *map(str, argv)],
                       env=env, check=True, capture_output=True)
    return {"apply": plain, "format": applied, "check-folder": applied,
            "check-range": applied}


def _walk(templates, tmp_path, command, signames, select) -> tuple[int, int]:
    scene = Scene(templates[command], tmp_path / command, command)
    scene.reset()
    first = scene.start()
    first.communicate(timeout=300)
    baseline = first.returncode
    names = scene.steps_logged()
    points = select(names)
    for step in points:
        for signame in signames:
            _kill_at(scene, step, names[step - 1], signame, baseline)
    return len(points), len(signames)


COMMANDS = ["apply", "format", "check-folder", "check-range"]


@pytest.mark.parametrize("command", COMMANDS)
def test_killed_at_a_step_that_writes(templates, tmp_path, command):
    writers = ("update-ref", "hash-object", "commit-tree", "format-patch",
               "clone", "checkout", "am", "write-tree", "mailsplit")

    def select(names):
        picked = [i + 1 for i, n in enumerate(names) if n.split()[-1] in writers]
        return picked[:1] + picked[-1:]
    steps, signals = _walk(templates, tmp_path, command, list(SIGNALS), select)
    print(f"\n{command}: {steps} steps x {signals} signals, all clean")
    assert steps >= 1


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS)
def test_killed_at_every_step(templates, tmp_path, command):
    every = os.environ.get("PATCHGEN_FAULT_ALL") == "1"
    steps, signals = _walk(templates, tmp_path, command, list(SIGNALS),
                           lambda names: _points(names, every))
    print(f"\n{command}: {steps} steps x {signals} signals = "
          f"{steps * signals} kills, all clean")
