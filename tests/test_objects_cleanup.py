"""A scratch folder's repositories lose their `git cat-file --batch`
readers with the folder: no reader process outlives what it reads."""

import subprocess

from patchgen.infra import objects
from patchgen.infra.scratch import scratch_folder


def test_scratch_folder_stops_the_readers_inside_it(tmp_path, monkeypatch):
    monkeypatch.setenv("PATCHGEN_CACHE", str(tmp_path / "cache"))
    outside = tmp_path / "outside"
    subprocess.run(["git", "init", "-q", str(outside)], check=True)
    kept = objects.reader(str(outside))
    with scratch_folder("check") as folder:
        repo = folder / "tree"
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        inside = objects.reader(str(repo))
        assert inside.get("HEAD") is None          # starts the process
        assert kept.get("HEAD") is None
        proc = inside.proc
        assert proc is not None and proc.poll() is None
    assert proc.poll() is not None                 # stopped with the folder
    assert str(repo) not in objects._readers
    assert kept.proc is not None and kept.proc.poll() is None
    objects.close_under(outside)
    assert kept.proc is None
