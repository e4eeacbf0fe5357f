"""Helpers shared by the format tests: applied fixture trees, running the
CLI, normalising generated files for golden comparison."""

import re
import subprocess

import pytest
from pathlib import Path

from patchgen.engine.apply import apply_rule
from patchgen.cli import main
from patchgen.infra.errors import RuleRefused
from patchgen.engine.fixtures import fixture_names, materialize

# The rule these tests run (there is no default rule: name it)
HWPOISON = "hwpoison-put-last"

# Commits made in tests get these dates, so their ids do not change from
# run to run (the fixture import has fixed ones already).
FIXED_DATES = {"GIT_AUTHOR_DATE": "2016-04-07T09:00:00+00:00",
               "GIT_COMMITTER_DATE": "2016-04-07T09:00:00+00:00"}


def fix_dates(monkeypatch) -> None:
    """Fixed commit dates, and no global or system git config: the files
    format writes must not depend on the machine's settings."""
    for key, value in FIXED_DATES.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", "/dev/null")
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")


def git(repo, *args, check=True, **kwargs) -> str:
    result = subprocess.run(["git", "-C", str(repo), *args], capture_output=True,
                            text=True, check=False, **kwargs)
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout


def applied_fixture(name: str, dest: Path):
    """The fixture *name* as a git repo with the rule's branch, or None
    when apply makes no series for it (not affected, refused, ...)."""
    tree = materialize(name, dest)
    try:
        result = apply_rule(tree, HWPOISON)
    except RuleRefused:
        return None
    return tree if result.series is not None else None


def series_fixtures() -> list[str]:
    """The fixture eras apply makes a series for (scan says "rewrite")."""
    import tempfile
    from patchgen.engine.rule import REWRITE
    from patchgen.engine.registry import get_rule
    from patchgen.engine.sources import open_worktree
    names = []
    with tempfile.TemporaryDirectory() as scratch:
        for name in fixture_names():
            tree = materialize(name, Path(scratch) / name, git=False)
            if get_rule(HWPOISON).scan(open_worktree(tree)).verdict == REWRITE:
                names.append(name)
    return names


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def patch_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".patch")
                  and "0000-cover-letter" not in p.name)


def cover_file(folder: Path) -> Path | None:
    found = [p for p in folder.iterdir() if p.name.endswith("0000-cover-letter.patch")]
    return found[0] if found else None


# --- golden normalisation ---------------------------------------------------

FROM_LINE = re.compile(r"^From [0-9a-f]{40} Mon Sep 17 00:00:00 2001$", re.M)
MESSAGE_ID = re.compile(r"<((?:[0-9a-f]{40})|cover)\.\d+\.git\.")
SIGNATURE = re.compile(r"^-- \n.*$", re.M)
PATCHGEN_VERSION = re.compile(r"patchgen\s+\d+\.\d+\.\d+([^\s,]*)")
CHANGE_ID = re.compile(r"^change-id: \d{8}-(.*)-[0-9a-f]{12}$", re.M)


def normalise(text: str) -> str:
    """What may differ between two runs that made the same series: the
    From <sha> line, Message-Id timestamps, the git version signature, the
    patchgen version and the change-id's date and random part."""
    text = FROM_LINE.sub("From 0000000000000000000000000000000000000000 "
                         "Mon Sep 17 00:00:00 2001", text)
    text = MESSAGE_ID.sub(r"<\1.TIMESTAMP.git.", text)
    text = SIGNATURE.sub("-- \nGIT-VERSION", text)
    text = PATCHGEN_VERSION.sub("patchgen VERSION", text)
    return CHANGE_ID.sub(r"change-id: DATE-\1-RANDOM", text)


@pytest.fixture
def e3(tmp_path, monkeypatch):
    fix_dates(monkeypatch)
    tree = applied_fixture("e3-v4.14", tmp_path / "e3")
    assert tree is not None
    return tree
