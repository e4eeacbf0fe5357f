"""patchgen cache: sizes as du counts them, and --prune, which removes
what was not used for N days but never a build whose lock a running
build holds (held here by util-linux flock(1), as build.py and
workspace.py hold them).  Runs in a cache folder of its own
($PATCHGEN_CACHE), never the user's."""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import need_tool
from formatkit import run_cli

OLD = time.time() - 40 * 86400


def make(path: Path, size: int = 5000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)


def age(top: Path, when: float = OLD) -> None:
    """Every file and folder below *top* (and it) last modified at *when*."""
    for folder, dirs, files in os.walk(top, topdown=False):
        for name in files + dirs:
            os.utime(os.path.join(folder, name), (when, when))
    os.utime(top, (when, when))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("PATCHGEN_CACHE", str(root))
    ws = root / "workspaces"
    # tree-a: an old checkout, an old build, an old build in use, a fresh build.
    for name in ("src/Makefile", "src/mm/migrate.c", "build-src-old/vmlinux",
                 "build-src-busy/vmlinux", "build-src-new/vmlinux"):
        make(ws / "tree-a" / name)
    for lock in ("workspace.lock", "build-src-old.lock", "build-src-busy.lock",
                 "build-src-new.lock"):
        (ws / "tree-a" / lock).touch()
    # tree-b: all old; tree-c: all old, its workspace in use (check --build).
    for tree in ("tree-b", "tree-c"):
        make(ws / tree / "src" / "Makefile")
        make(ws / tree / "build-src-1" / ".config")
        (ws / tree / "workspace.lock").touch()
    make(root / "runs" / "20260101-000000" / "serial.log")
    make(root / "runs" / "20261201-000000" / "serial.log")
    make(root / "trees" / "linux-source-6.1" / "Makefile")
    age(root)
    for fresh in (ws / "tree-a" / "build-src-new", ws / "tree-a" / "build-src-new.lock",
                  root / "runs" / "20261201-000000"):
        os.utime(fresh, None)
    return root


def held(lock: Path):
    """flock(1) holding *lock* until it is killed; returns the process."""
    need_tool("flock")
    # Its own process group: flock's shell and sleep hold the lock too, and
    # all of them go when the group is killed.
    process = subprocess.Popen(["flock", "-x", str(lock), "-c", "echo held; sleep 120"],
                               stdout=subprocess.PIPE, text=True,
                               start_new_session=True)
    assert process.stdout.readline().strip() == "held"
    return process


def du(path: Path) -> int:
    need_tool("du")
    out = subprocess.run(["du", "-s", "-B1", str(path)], capture_output=True,
                         text=True, check=True).stdout
    return int(out.split()[0])


def test_show_sizes_as_du_counts_them(cache, capsys):
    from patchgen.infra.cache_usage import disk_size, usage
    found = usage()
    assert [e.path.name for e in found.folders] == ["runs", "trees", "workspaces"]
    for entry in found.folders + found.workspaces:
        assert entry.size == du(entry.path), entry.path
        # What prune frees (and usage() without du) is counted as du counts.
        assert disk_size(entry.path) == du(entry.path), entry.path
    code, stdout, stderr = run_cli(capsys, "cache")
    assert code == 0, stderr
    assert f"cache: {cache} (" in stdout
    assert "tree-a/build-src-old  build, 40 days ago" in stdout
    assert "tree-a/build-src-new  build, 0 days ago" in stdout
    assert "measuring" in stderr                     # progress on stderr


def test_prune_keeps_what_is_in_use(cache, capsys):
    ws = cache / "workspaces"
    busy = held(ws / "tree-a" / "build-src-busy.lock")
    workspace_in_use = held(ws / "tree-c" / "workspace.lock")
    try:
        before = {p for p in cache.rglob("*")}
        code, stdout, _ = run_cli(capsys, "cache", "--prune", "--days", "30",
                                  "--dry-run")
        assert code == 0
        assert {p for p in cache.rglob("*")} == before     # nothing removed
        assert "would remove build" in stdout

        code, stdout, stderr = run_cli(capsys, "cache", "--prune", "--days", "30")
        assert code == 0, stderr
    finally:
        for process in (busy, workspace_in_use):
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    # Old and free: gone.
    assert not (ws / "tree-a" / "build-src-old").exists()
    assert not (ws / "tree-a" / "build-src-old.lock").exists()
    assert not (ws / "tree-b").exists()
    assert not (cache / "runs" / "20260101-000000").exists()
    # In use (its lock held), fresh, or a real tree: kept.
    assert (ws / "tree-a" / "build-src-busy" / "vmlinux").is_file()
    assert (ws / "tree-a" / "build-src-new" / "vmlinux").is_file()
    assert (ws / "tree-a" / "src" / "Makefile").is_file()   # a build of it is kept
    assert (ws / "tree-c" / "src" / "Makefile").is_file()
    assert (ws / "tree-c" / "build-src-1" / ".config").is_file()
    assert (cache / "runs" / "20261201-000000").is_dir()
    assert (cache / "trees" / "linux-source-6.1" / "Makefile").is_file()
    assert "kept build" in stdout and "in use (its lock is held)" in stdout
    assert "freed " in stdout

    # With the locks released, the old busy build goes on the next prune.
    code, stdout, _ = run_cli(capsys, "cache", "--prune", "--days", "30")
    assert not (ws / "tree-a" / "build-src-busy").exists()
    assert not (ws / "tree-c").exists()
    assert (ws / "tree-a" / "build-src-new").is_dir()
