"""The `patchgen check` command line: the table, --json, exit codes."""

import json

from checkhelp import copy_series, edit, generated_series, patch_files
from conftest import need_tool
from patchgen.review.check import PATCH_CHECKS, SERIES_CHECKS
from patchgen.cli import main
from patchgen.infra.runner import run


def test_table_has_one_row_per_patch_and_check(fixture_tree, tmp_path, capsys, linux61):
    need_tool("gcc")
    tree, series = generated_series(fixture_tree, "e3-v4.14", tmp_path / "series")
    damaged = copy_series(series, tmp_path / "damaged")
    edit(patch_files(damaged)[1], "Signed-off-by: Fixture Author <fixture@example.org>\n", "")
    code = main(["check", str(damaged), "--tree", str(tree),
                 "--checkpatch", str(linux61 / "scripts" / "checkpatch.pl")])
    out = capsys.readouterr().out
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == f"patchgen check: {damaged} (folder, 7 patches + cover letter)"
    assert lines[1].startswith(f"tree: {tree}; base: base-commit ")
    rows = [line for line in lines[3:] if line.strip()][1:-1]
    signoff = [line for line in rows if "signoff" in line and "fail" in line]
    assert len(signoff) == 1
    assert signoff[0].split()[:2] == ["signoff", "fail"]
    # The patch label opens its group of rows: 2/7, then its checks.
    group = lines.index(next(line for line in lines if line.startswith("2/7 ")))
    assert lines[group].split()[:3] == ["2/7", "mail", "pass"]
    # Without --build: every check but build, per patch and per series.
    total = 7 * (len(PATCH_CHECKS) - 1) + len(SERIES_CHECKS) - 1
    assert lines[-1] == f"{total - 1} pass, 0 warn, 1 fail, 0 skipped: a check failed (exit 1)"
    # --quiet shows what is not a pass, and the summary.
    main(["check", str(damaged), "--tree", str(tree), "-q",
          "--checkpatch", str(linux61 / "scripts" / "checkpatch.pl")])
    quiet = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in quiet[4:-2]] == [["2/7", "signoff", "fail"]]


def test_json_has_patchworks_fields(fixture_tree, tmp_path, capsys, monkeypatch):
    need_tool("gcc")
    tree, series = generated_series(fixture_tree, "e3-v4.14", tmp_path / "series")
    cache = tmp_path / "cache"
    monkeypatch.setenv("PATCHGEN_CACHE", str(cache))
    code = main(["check", str(series), "--tree", str(tree), "--json", "--build"])
    document = json.loads(capsys.readouterr().out)
    # Without a kernel build, nothing outlives the run.
    assert not cache.exists() or [p for p in cache.rglob("*") if not p.is_dir()] == []
    # No checkpatch.pl in a fixture tree: said, as a warning, not a failure.
    assert code == 0 and document["exit_code"] == 0
    for result in document["results"]:
        assert result["state"] in ("success", "warning", "fail")
        assert result["context"] == "patchgen-" + result["check"]
        assert result["description"] and "\n" not in result["description"]
    warnings = {(r["label"], r["check"]) for r in document["results"]
                if r["state"] == "warning"}
    assert warnings == {(f"{n}/7", "checkpatch") for n in range(1, 8)}
    assert {r["label"] for r in document["results"] if r["check"] == "build"} == \
        {"1/7", "2/7", "3/7", "4/7", "5/7", "6/7", "7/7", "series"}
    assert document["summary"] == {"success": len(document["results"]) - 7,
                                   "warning": 7, "fail": 0, "skipped": 0}
    assert [m["kind"] for m in document["series"]["mails"]] == ["cover"] + ["patch"] * 7


def test_unusable_input_has_its_own_exit_codes(fixture_tree, tmp_path, capsys):
    tree = fixture_tree("e3-v4.14")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["check", str(empty), "--tree", str(tree)]) == 31
    assert "holds no .patch or .eml files" in capsys.readouterr().err
    assert main(["check", "no-such-branch", "--tree", str(tree)]) == 30
    assert main(["check", "HEAD", "--tree", str(tree)]) == 31   # nothing HEAD adds
    not_git = tmp_path / "plain"
    run(["cp", "-r", str(tree), str(not_git)])
    run(["rm", "-rf", str(not_git / ".git")])
    assert main(["check", str(empty), "--tree", str(not_git)]) == 3
    err = capsys.readouterr().err
    assert "is not in a git repository" in err and "Traceback" not in err
