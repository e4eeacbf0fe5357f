"""Golden files: the series format writes for every fixture era.

For each bundled fixture whose apply makes a series, `patchgen format`
writes v1 and the files must equal tests/golden/format/<fixture>/ after
normalisation (formatkit.normalise: the From <sha> line, Message-Id
timestamps, the git and patchgen version, the change-id).  A fixture that
gets no series must have no golden folder.

To refresh on purpose, after reviewing the change:

    PATCHGEN_UPDATE_GOLDEN=1 python3 -m pytest -q tests/test_format_golden.py

Never under CI: there a missing or different golden file fails.
"""

import difflib
import os
import warnings
from pathlib import Path

import pytest

from formatkit import (applied_fixture, fix_dates, normalise, run_cli,
                       series_fixtures)

GOLDEN = Path(__file__).parent / "golden" / "format"
UPDATE = os.environ.get("PATCHGEN_UPDATE_GOLDEN") == "1"


def written_files(folder: Path) -> dict[str, str]:
    return {p.name: normalise(p.read_text(encoding="utf-8"))
            for p in sorted(folder.iterdir())}


def golden_files(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("fixture", series_fixtures())
def test_series_matches_golden_files(fixture, tmp_path, capsys, monkeypatch):
    if UPDATE and os.environ.get("CI") == "true":
        pytest.fail("PATCHGEN_UPDATE_GOLDEN is set under CI: golden files are "
                    "refreshed by hand, never in CI")
    fix_dates(monkeypatch)
    tree = applied_fixture(fixture, tmp_path / fixture)
    golden = GOLDEN / fixture
    if tree is None:
        assert not golden.exists(), (
            f"apply makes no series for {fixture}, but {golden} exists: remove it")
        return
    code, out, err = run_cli(capsys, "format", "--tree", tree, "-o",
                             tmp_path / "series", "--no-checkpatch")
    assert code == 0, err
    actual = written_files(tmp_path / "series" / "hwpoison-put-last" / "v1")
    if UPDATE:
        golden.mkdir(parents=True, exist_ok=True)
        for old in golden.iterdir():
            old.unlink()
        for name, text in actual.items():
            (golden / name).write_text(text, encoding="utf-8")
        warnings.warn(f"refreshed {len(actual)} golden files in {golden}: "
                      "review them with git diff before committing")
        return
    assert golden.is_dir(), (
        f"no golden files for fixture {fixture}: create them with "
        "PATCHGEN_UPDATE_GOLDEN=1 python3 -m pytest -q tests/test_format_golden.py "
        "and review them")
    expected = golden_files(golden)
    assert sorted(actual) == sorted(expected), "the series has other files"
    for name in expected:
        if actual[name] != expected[name]:
            diff = "".join(difflib.unified_diff(
                expected[name].splitlines(keepends=True),
                actual[name].splitlines(keepends=True),
                f"golden/{name}", f"written/{name}"))
            pytest.fail(f"{fixture}: {name} differs from its golden file:\n{diff}")


def test_normalise_keeps_what_matters():
    """Normalising hides run-to-run noise only, not the content."""
    one = ("From 1111111111111111111111111111111111111111 Mon Sep 17 00:00:00 2001\n"
           "Message-Id: <cover.1795631536.git.a@b>\n"
           "Subject: [PATCH 0/2] mm: x\n\nbody\n"
           "change-id: 20261125-topic-0123456789ab\n-- \n2.39.5\n")
    two = one.replace("1111", "2222").replace("1795631536", "1700000000") \
        .replace("0123456789ab", "ba9876543210").replace("2.39.5", "2.45.0")
    assert normalise(one) == normalise(two)
    assert normalise(one) != normalise(one.replace("mm: x", "mm: y"))
    assert normalise(one) != normalise(one.replace("body", "other body"))
