"""Every bad input of `patchgen format`: one sentence, its own exit code,
no traceback, and nothing half-written left in the output folder."""

from pathlib import Path

import pytest

import patchgen.series.format
from formatkit import applied_fixture, fix_dates, git, run_cli
from patchgen.infra import errors

TOPIC = "hwpoison-put-last"


def assert_one_sentence(code: int, out: str, err: str, expected: int) -> str:
    assert code == expected, (code, err)
    assert out == ""
    lines = [l for l in err.strip().splitlines()
             if not l.startswith("patchgen: note: ")]
    assert len(lines) == 1, err
    assert lines[0].startswith("patchgen: error: ")
    assert "Traceback" not in err
    sentence = lines[0][len("patchgen: error: "):]
    assert sentence.count(". ") == 0, "one sentence"
    assert sentence[0].isalpha() or sentence[0] in "'-/"
    return sentence


def nothing_written(out_dir: Path) -> None:
    if not out_dir.exists():
        return
    leftovers = [p for p in out_dir.rglob("*")]
    assert leftovers == [], leftovers


@pytest.fixture
def e3(tmp_path, monkeypatch):
    fix_dates(monkeypatch)
    return applied_fixture("e3-v4.14", tmp_path / "e3")


def fmt(capsys, tree, out, *extra):
    return run_cli(capsys, "format", "--tree", tree, "-o", out, "--no-checkpatch",
                   *extra)


def test_no_commits_in_range(e3, tmp_path, capsys):
    out = tmp_path / "series"
    sentence = assert_one_sentence(*fmt(capsys, e3, out, "--range", "master..master"),
                                   errors.EmptyRange.exit_code)
    assert "no commits" in sentence
    nothing_written(out)


def test_base_not_an_ancestor(e3, tmp_path, capsys):
    out = tmp_path / "series"
    git(e3, "checkout", "-q", "-b", "elsewhere", "master")
    git(e3, "commit", "-q", "--allow-empty", "-m", "elsewhere")
    git(e3, "checkout", "-q", "master")
    sentence = assert_one_sentence(*fmt(capsys, e3, out, "--range",
                                        f"elsewhere..{TOPIC}"),
                                   errors.BaseNotAncestor.exit_code)
    assert "not an ancestor" in sentence
    nothing_written(out)


def test_identity_unset(tmp_path, capsys, monkeypatch):
    fix_dates(monkeypatch)
    tree = applied_fixture("e3-v4.14", tmp_path / "e3")
    # Now take the identity away, here and in every config git would read.
    git(tree, "config", "--unset", "user.name")
    git(tree, "config", "--unset", "user.email")
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("EMAIL", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL",
                 "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    out = tmp_path / "series"
    sentence = assert_one_sentence(*fmt(capsys, tree, out),
                                   errors.FormatIdentityUnset.exit_code)
    assert "user.name" in sentence
    nothing_written(out)


def test_dirty_tree_is_allowed_and_said(e3, tmp_path, capsys):
    (e3 / "mm" / "migrate.c").write_text("dirty\n")
    code, out, err = fmt(capsys, e3, tmp_path / "series")
    assert code == 0
    assert "uncommitted changes" in err and "reads commits only" in err


def test_existing_folder_patchgen_did_not_write(e3, tmp_path, capsys):
    out = tmp_path / "series"
    theirs = out / TOPIC / "v1"
    theirs.mkdir(parents=True)
    (theirs / "notes.txt").write_text("mine\n")
    sentence = assert_one_sentence(*fmt(capsys, e3, out),
                                   errors.OutputExists.exit_code)
    assert "did not write it" in sentence
    assert sorted(p.name for p in (out / TOPIC).iterdir()) == ["v1"]
    assert (theirs / "notes.txt").read_text() == "mine\n"


def test_output_is_a_file(e3, tmp_path, capsys):
    out = tmp_path / "series"
    out.write_text("not a folder\n")
    sentence = assert_one_sentence(*fmt(capsys, e3, out),
                                   errors.OutputExists.exit_code)
    assert "not a folder" in sentence
    assert out.read_text() == "not a folder\n"


def test_missing_template_variable(e3, tmp_path, capsys):
    template = tmp_path / "cover.j2"
    template.write_text("Subject {{ subsystem_name }}\n\nText.\n")
    out = tmp_path / "series"
    sentence = assert_one_sentence(*fmt(capsys, e3, out, "--cover-template", template),
                                   errors.CoverTemplateError.exit_code)
    assert "subsystem_name" in sentence and "kernel_version" in sentence
    nothing_written(out)


def test_merge_in_range(e3, tmp_path, capsys):
    git(e3, "checkout", "-q", "-b", "side", "master")
    git(e3, "commit", "-q", "--allow-empty", "-m", "side")
    git(e3, "checkout", "-q", "-b", "merged", TOPIC)
    git(e3, "merge", "-q", "--no-edit", "side")
    git(e3, "checkout", "-q", "master")
    out = tmp_path / "series"
    sentence = assert_one_sentence(*fmt(capsys, e3, out, "--range", "master..merged"),
                                   errors.UnpostableCommit.exit_code)
    assert "merge commit" in sentence
    nothing_written(out)


def test_empty_commit_in_range(e3, tmp_path, capsys):
    git(e3, "checkout", "-q", "-b", "with-empty", TOPIC)
    git(e3, "commit", "-q", "--allow-empty", "-m", "nothing here")
    git(e3, "checkout", "-q", "master")
    out = tmp_path / "series"
    sentence = assert_one_sentence(*fmt(capsys, e3, out, "--range",
                                        "master..with-empty"),
                                   errors.UnpostableCommit.exit_code)
    assert "changes no file" in sentence
    nothing_written(out)


def test_branch_base_unknown(e3, tmp_path, capsys):
    out = tmp_path / "series"
    git(e3, "checkout", "-q", "-b", "plain", "master")
    git(e3, "commit", "-q", "--allow-empty", "-m", "x")
    git(e3, "checkout", "-q", "master")
    sentence = assert_one_sentence(*fmt(capsys, e3, out, "--branch", "plain"),
                                   errors.NoBase.exit_code)
    assert "--base" in sentence
    nothing_written(out)


def test_version_two_without_version_one(e3, tmp_path, capsys):
    out = tmp_path / "series"
    sentence = assert_one_sentence(*fmt(capsys, e3, out, "-v", "2"),
                                   errors.PreviousVersionMissing.exit_code)
    assert "earlier version" in sentence
    nothing_written(out)


@pytest.mark.parametrize("args", [("--range", "master...hwpoison-put-last"),
                                  ("--range", "master.."),
                                  ("--topic", "../escape")])
def test_malformed_option(e3, tmp_path, capsys, args):
    out = tmp_path / "series"
    assert_one_sentence(*fmt(capsys, e3, out, *args), errors.BadArgument.exit_code)
    nothing_written(out)


def test_default_output_inside_the_tree(e3, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(e3)
    code, out, err = run_cli(capsys, "format", "--tree", ".", "--no-checkpatch")
    sentence = assert_one_sentence(code, out, err, errors.BadArgument.exit_code)
    assert "working tree" in sentence
    assert not (e3 / "series").exists()
    assert git(e3, "status", "--porcelain") == ""


def test_unknown_branch(e3, tmp_path, capsys):
    out = tmp_path / "series"
    assert_one_sentence(*fmt(capsys, e3, out, "--branch", "no-such-branch"),
                        errors.UnknownRevision.exit_code)
    nothing_written(out)


def test_version_zero_is_a_usage_error(e3, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        fmt(capsys, e3, tmp_path / "series", "-v", "0")
    assert exit_.value.code == 2
    assert "versions start at 1" in capsys.readouterr().err


def test_failure_after_writing_started_leaves_nothing(e3, tmp_path, capsys,
                                                      monkeypatch):
    """A failure once files are being written (here: the round trip, made to
    fail by fault injection, since real git gives no such case) removes the
    temporary folder, and the earlier version stays as it was."""
    out = tmp_path / "series"
    assert fmt(capsys, e3, out)[0] == 0
    v1 = {p.name: p.read_bytes() for p in (out / TOPIC / "v1").iterdir()}
    state = (out / TOPIC / "series.json").read_bytes()
    monkeypatch.setattr(patchgen.series.format, "tree_of", lambda tree, rev: "0" * 40)
    sentence = assert_one_sentence(*fmt(capsys, e3, out, "-v", "1"),
                                   errors.RoundTripFailed.exit_code)
    assert "left as it was" in sentence
    assert sorted(p.name for p in (out / TOPIC).iterdir()) == ["series.json", "v1"]
    assert {p.name: p.read_bytes() for p in (out / TOPIC / "v1").iterdir()} == v1
    assert (out / TOPIC / "series.json").read_bytes() == state


def test_exit_codes_are_distinct_and_in_the_format_band():
    format_errors = [errors.EmptyRange, errors.BaseNotAncestor,
                     errors.FormatIdentityUnset, errors.OutputExists,
                     errors.CoverTemplateError, errors.UnpostableCommit,
                     errors.NoBase, errors.PreviousVersionMissing,
                     errors.BadArgument, errors.RoundTripFailed]
    codes = [e.exit_code for e in format_errors]
    assert len(set(codes)) == len(codes)
    assert all(20 <= c <= 29 for c in codes)
    every = [c for c in vars(errors).values()
             if isinstance(c, type) and issubclass(c, errors.PatchgenError)
             and c not in (errors.PatchgenError, errors.UserError,
                           errors.EnvironmentProblem)]
    leaf_codes = {}
    for cls in every:
        if cls.exit_code in leaf_codes and not (
                issubclass(cls, leaf_codes[cls.exit_code])
                or issubclass(leaf_codes[cls.exit_code], cls)):
            pytest.fail(f"{cls.__name__} and {leaf_codes[cls.exit_code].__name__} "
                        f"share exit code {cls.exit_code}")
        leaf_codes.setdefault(cls.exit_code, cls)


@pytest.mark.parametrize("recipient, words", [
    ("\x80", "not ASCII"),                       # found by test_cli_fuzz
    ("Jörg <jörg@exämple.org>", "xn-- form"),
    ("a@example.org\nBcc: b@example.org", "line break"),
])
def test_a_recipient_no_header_can_carry(e3, tmp_path, capsys, recipient,
                                         words):
    out = tmp_path / "series"
    sentence = assert_one_sentence(*fmt(capsys, e3, out, "--to", recipient),
                                   errors.BadArgument.exit_code)
    assert words in sentence
    nothing_written(out)


def test_a_name_that_is_not_ascii_is_fine(e3, tmp_path, capsys):
    out = tmp_path / "series"
    code, _, err = fmt(capsys, e3, out, "--to", "Jörg Rödel <joro@example.org>")
    assert code == 0, err
    first = sorted(out.rglob("0001-*.patch"))[0].read_text()
    assert "=?utf-8?" in first and "<joro@example.org>" in first


def test_an_argument_with_a_nul_byte(capsys):
    from patchgen.cli import main
    assert main(["format", "--tree", "\x00"]) == 2   # found by test_cli_fuzz
    assert "NUL byte" in capsys.readouterr().err
