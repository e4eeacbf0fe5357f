"""--tree defaults to the kernel tree the command runs in (every command);
-v is format's version number only, verbose output is --verbose."""

import pytest

from formatkit import run_cli
from formatkit import e3  # noqa: F401  (a fixture)
from patchgen.cli import build_parser
from patchgen.infra.errors import NotAGitTree

TOPIC = "hwpoison-put-last"



def test_every_command_takes_the_tree_it_runs_in(e3, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(e3 / "mm")             # a subfolder of the tree
    code, stdout, stderr = run_cli(capsys, "scan", "--json")
    assert code == 0, stderr
    assert str(e3) in stdout
    code, stdout, stderr = run_cli(capsys, "apply", "--rule=hwpoison-put-last", "--dry-run")
    assert code == 0, stderr
    code, stdout, stderr = run_cli(capsys, "format", "-o", tmp_path / "series",
                                   "--no-checkpatch")
    assert code == 0, stderr
    assert (tmp_path / "series" / TOPIC / "v1").is_dir()
    code, stdout, stderr = run_cli(capsys, "check", tmp_path / "series" / TOPIC / "v1",
                                   "-q")
    assert code == 0, stdout + stderr
    assert f"tree: {e3};" in stdout and "no check failed" in stdout


def test_a_kernel_tree_below_the_repository_top(tmp_path, capsys, monkeypatch):
    """A kernel tree in a subfolder of a repository: the nearest folder of
    the kernel's shape, not the repository's top."""
    from patchgen.cli import default_tree
    from patchgen.engine.fixtures import materialize
    import subprocess
    top = tmp_path / "repo"
    materialize("e3-v4.14", top / "linux", git=False)
    subprocess.run(["git", "init", "-q", str(top)], check=True)
    monkeypatch.chdir(top / "linux" / "mm")
    assert default_tree("format") == (top / "linux").resolve()
    monkeypatch.chdir(top)
    assert default_tree("format") == top.resolve()


def test_outside_git_says_give_tree(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    code, _, stderr = run_cli(capsys, "format", "-o", tmp_path / "s")
    assert code == NotAGitTree.exit_code
    assert "is in no git repository" in stderr and "--tree" in stderr
    assert "Traceback" not in stderr


def test_no_option_letter_means_two_things():
    parser = build_parser()
    args = parser.parse_args(["format", "-v", "3"])
    assert args.version == 3 and args.verbose is False
    args = parser.parse_args(["--verbose", "format", "--reroll-count", "2"])
    assert args.version == 2 and args.verbose is True
    with pytest.raises(SystemExit):
        parser.parse_args(["-v", "format"])
    # Within each command, every short option means one thing.
    for action in parser._subparsers._group_actions:
        for name, sub in action.choices.items():
            shorts = [o for a in sub._actions for o in a.option_strings
                      if len(o) == 2 and o != "-h"]
            assert len(shorts) == len(set(shorts)), name
