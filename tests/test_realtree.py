"""The real Debian linux-source-6.1 tree (E5): scan finds upstream's
mechanisms in their real places, apply changes nothing and says why."""

import json

import pytest

from patchgen.cli import main
from patchgen.infra.runner import run

pytestmark = pytest.mark.realtree


def line_of(path, text):
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
        if text in line:
            return number
    raise AssertionError(f"{text!r} not found in {path}")


def test_scan_finds_the_e5_mechanisms_where_they_are(linux61, capsys):
    assert main(["scan", "--tree", str(linux61), "--json", "--rule",
                 "hwpoison-put-last"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "not-affected"
    assert report["facts"] == {"call site": "E5", "free path": "E5"}
    version = [l.split("=")[1].strip() for l in
               (linux61 / "Makefile").read_text().splitlines()[1:4]]
    assert report["kernel_version"] == ".".join(version)
    by_kind = {}
    for finding in report["findings"]:
        by_kind.setdefault(finding["kind"], []).append(finding)
    call = by_kind["call-site"]
    assert [(f["path"], f["function"], f["line"]) for f in call] == [
        ("mm/migrate.c", "migrate_folio_done",
         line_of(linux61 / "mm/migrate.c", "if (reason != MR_MEMORY_FAILURE)"))]
    assert "folio_put(src)" in call[0]["message"]
    mechanism = by_kind["mechanism"][0]
    assert (mechanism["path"], mechanism["function"], mechanism["line"]) == (
        "mm/memory-failure.c", "page_handle_poison",
        line_of(linux61 / "mm/memory-failure.c", "static bool page_handle_poison("))
    free = by_kind["free-path"][0]
    assert free["action"] == "done"
    hook = line_of(linux61 / "mm/page_alloc.c", "PageHWPoison(page)) && !order")
    assert f"line {hook}" in free["message"]
    assert "page_handle_poison()" in report["summary"]


def test_apply_changes_nothing_and_says_why(linux61, capsys):
    branches = run(["git", "-C", linux61, "branch", "--list"]).stdout
    status = run(["git", "-C", linux61, "status", "--porcelain"]).stdout
    assert main(["apply", "--tree", str(linux61), "--rule", "hwpoison-put-last"]) == 0
    out = capsys.readouterr().out
    assert "verdict: not-affected" in out and "nothing was created" in out
    assert run(["git", "-C", linux61, "branch", "--list"]).stdout == branches
    assert run(["git", "-C", linux61, "status", "--porcelain"]).stdout == status
