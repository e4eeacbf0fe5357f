"""format with the real Debian 6.1 tree: its checkpatch.pl on the series of
every fixture era, its get_maintainer.pl, and a git am round trip of a
series made on (a clone of) the real tree.

The cached tree is only read: series are made in a sparse, shared clone
in tmp_path (mm/, include/linux/, scripts/ and the top-level files
get_maintainer.pl looks for), never in its own checkout.
"""

import re
import subprocess
from pathlib import Path

import pytest

from formatkit import applied_fixture, fix_dates, git, patch_files, series_fixtures
from patchgen.series.format import FormatOptions, format_series
from patchgen.series.recipients import from_maintainers, trailer_addresses

pytestmark = pytest.mark.realtree

TOPIC = "hwpoison-put-last"
@pytest.mark.parametrize("fixture", series_fixtures())
def test_checkpatch_61_on_every_fixture_series(fixture, linux61, tmp_path, monkeypatch):
    """The hwpoison series, checked by the real 6.1 checkpatch.pl at 80
    columns, plain and --strict: no ERROR, no WARNING, no CHECK.  The
    messages name the mainline commits by release and subject only, so
    checkpatch has no commit id to look up wherever it runs."""
    fix_dates(monkeypatch)
    tree = applied_fixture(fixture, tmp_path / fixture)
    assert tree is not None, f"scan said rewrite but apply made no series for {fixture}"
    for strict in (False, True):
        result = format_series(FormatOptions(
            tree=tree, output=tmp_path / f"series-{strict}", scripts_from=linux61,
            strict=strict))
        assert result.checks is not None, result.checkpatch_note
        assert result.max_line_length == 80
        assert len(result.checks) == len(result.selection.commits)
        for check, patch in zip(result.checks, patch_files(result.folder)):
            assert Path(check.patch).name == patch.name
            findings = [f"{m.level}:{m.type}: {m.text}" for m in check.messages]
            assert (check.errors, check.warnings, check.checks) == (0, 0, 0), findings


@pytest.fixture
def sparse_clone(linux61, tmp_path):
    """A shared clone of the 6.1 tree with only what the test needs checked out."""
    clone = tmp_path / "linux"
    git(tmp_path, "clone", "-q", "--shared", "--no-checkout", str(linux61), str(clone))
    git(clone, "sparse-checkout", "set", "--no-cone", "/*", "!/*/", "/scripts/",
        "/mm/", "/include/linux/", "/Documentation/process/", "/arch/x86/Kconfig",
        "/drivers/Makefile", "/fs/Makefile", "/init/Makefile", "/ipc/Makefile",
        "/kernel/Makefile", "/lib/Makefile")
    git(clone, "checkout", "-q", "master")
    git(clone, "config", "user.name", "Test Developer")
    git(clone, "config", "user.email", "dev@example.org")
    return clone


def commit(repo: Path, subject: str, body: str, edits: dict, new=False):
    for path, text in edits.items():
        full = repo / path
        full.write_text((full.read_text() if full.exists() else "") + text)
        # Debian's .gitignore hides every file: a new one needs -f.
        git(repo, "add", "-f", path)
    git(repo, "commit", "-q", "-F", "-", input=f"{subject}\n\n{body}\n\n"
        "Signed-off-by: Test Developer <dev@example.org>\n")


def test_real_tree_series_round_trip(sparse_clone, tmp_path, monkeypatch):
    fix_dates(monkeypatch)
    repo = sparse_clone
    git(repo, "checkout", "-q", "-b", "test-series")
    commit(repo, "mm/migrate: say why folio_put() is skipped for soft offline",
           "A reader of migrate_folio_done() cannot tell from the code alone why\n"
           "the source folio keeps its reference for MR_MEMORY_FAILURE.",
           {"mm/migrate.c": "\n/* Test series: a note at the end of the file. */\n"})
    commit(repo, "mm: add a test-only file to the build tree",
           "The file is new, so it checks that a file Debian's .gitignore hides\n"
           "still travels through format-patch and git am.",
           {"mm/patchgen_test_note.c": "// SPDX-License-Identifier: GPL-2.0\n"
                                      "/* A file made by a patchgen test. */\n"})
    commit(repo, "mm.h: note where the soft offline helpers live",
           "Point readers of mm.h at mm/memory-failure.c.",
           {"include/linux/mm.h": "/* Soft offline lives in mm/memory-failure.c. */\n"})
    git(repo, "checkout", "-q", "master")

    result = format_series(FormatOptions(tree=repo, range_spec="master..test-series",
                                         output=tmp_path / "series"))
    files = patch_files(result.folder)
    assert len(files) == 3 and result.cover is not None

    # The tree's own get_maintainer.pl names the mm maintainers and list.
    assert "get_maintainer.pl" in result.recipients.source
    assert any("akpm@linux-foundation.org" in a for a in result.recipients.to)
    assert "linux-mm@kvack.org" in result.recipients.cc
    assert "stable@vger.kernel.org" not in result.recipients.to + result.recipients.cc

    # The tree's own checkpatch (its default line length, 100).
    assert result.max_line_length is None
    findings = {Path(c.patch).name: [(m.level, m.type) for m in c.messages]
                for c in result.checks}
    assert all(c.errors == 0 for c in result.checks), findings
    # A new file gets checkpatch's MAINTAINERS reminder, and only that.
    assert [c.warnings for c in result.checks] == [0, 1, 0], findings
    assert findings[files[1].name] == [("WARNING", "FILE_PATH_CHANGES")]

    # The clone's base is an import of Debian's tarball: say which release.
    cover = result.cover.read_text()
    assert "local import of Linux 6.1." in " ".join(cover.split())

    # git am of the files on the base rebuilds the branch's tree exactly.
    git(repo, "checkout", "-q", "-b", "am-check", "master")
    git(repo, "am", "-q", *[str(f) for f in files])
    assert git(repo, "rev-parse", "HEAD^{tree}") == \
        git(repo, "rev-parse", "test-series^{tree}")
    assert (repo / "mm" / "patchgen_test_note.c").is_file()
    assert result.round_trip_tree == git(repo, "rev-parse", "HEAD^{tree}").strip()


def test_parsed_maintainers_agree_with_get_maintainer(linux61, tmp_path, monkeypatch):
    """patchgen's MAINTAINERS parser (the fallback) names the same people
    and lists as the tree's get_maintainer.pl for the hwpoison series."""
    fix_dates(monkeypatch)
    tree = applied_fixture("e3-v4.14", tmp_path / "e3")
    result = format_series(FormatOptions(tree=tree, output=tmp_path / "series",
                                         scripts_from=linux61, checkpatch=False))
    assert "get_maintainer.pl" in result.recipients.source
    paths = git(tree, "diff", "--name-only", "master", TOPIC).split()
    parsed = from_maintainers((linux61 / "MAINTAINERS").read_text(), paths, "test",
                              is_dir=lambda p: (linux61 / p).is_dir())
    # The cover letter's Cc: adds the people the trailers name (Suggested-by:).
    trailers = set(trailer_addresses(git(tree, "log", "--format=%B", f"master..{TOPIC}")))
    trailers.discard("Fixture Author <fixture@example.org>")   # the sender
    assert set(parsed.to) == set(result.recipients.to)
    assert set(parsed.cc) | trailers == set(result.recipients.cc)
    assert result.recipients.to and result.recipients.cc
