"""The defects that trying to break patchgen found (issue 10), each
reproduced with real git, real files and real hostile input: one sentence
and a distinct exit code, never a traceback, nothing of ours left behind."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BRANCH = "hwpoison-put-last"


def patchgen(*argv, cwd=None, env=None, input=None, timeout=300, stdout=None):
    """Run the real CLI in a child process: exit status, stdout, stderr."""
    full_env = dict(os.environ, PYTHONPATH=str(ROOT))
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-m", "patchgen", *map(str, argv)],
                          cwd=cwd, env=full_env, input=input, timeout=timeout,
                          stdout=stdout if stdout is not None else subprocess.PIPE,
                          stderr=subprocess.PIPE)
    out = proc.stdout.decode("utf-8", "replace") if proc.stdout else ""
    return proc.returncode, out, proc.stderr.decode("utf-8", "replace")


def git(repo, *args, env=None):
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(["git", "-C", str(repo), *args], check=True, env=full_env,
                          capture_output=True, text=True).stdout


def one_sentence(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith("patchgen: error: "), err
    return lines[0]


# --- 1: apply --force and a branch checked out in another worktree ----------

def test_force_refuses_a_branch_checked_out_in_another_worktree(fixture_tree, tmp_path):
    tree = fixture_tree("e3-v4.14")
    assert patchgen("apply", "--tree", tree)[0] == 0
    other = tmp_path / "other"
    git(tree, "worktree", "add", "-q", other, BRANCH)
    (other / "NOTES").write_text("work in the other worktree\n")
    git(other, "add", "NOTES")
    git(other, "commit", "-q", "-m", "mine")
    tip = git(other, "rev-parse", "HEAD").strip()
    code, out, err = patchgen("apply", "--tree", tree, "--force")
    assert code == 7, err
    line = one_sentence(err)
    assert str(other) in line and "worktree" in line
    assert git(tree, "rev-parse", f"refs/heads/{BRANCH}").strip() == tip
    assert git(other, "rev-parse", "HEAD").strip() == tip
