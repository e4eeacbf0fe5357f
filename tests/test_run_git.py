"""The one git helper: every git command of patchgen goes through the
runner (its log and timeout), and none of the old private helpers is left."""

import logging
import re
import subprocess
from pathlib import Path

import pytest

from patchgen.infra.errors import CommandFailed, CommandTimeout
from patchgen.infra.runner import run_git

PACKAGE = Path(__file__).resolve().parent.parent / "patchgen"


def test_run_git_logs_the_command_and_keeps_the_exit_code(tmp_path, caplog):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    with caplog.at_level(logging.DEBUG, logger="patchgen.run"):
        result = run_git(tmp_path, "rev-parse", "--git-dir")
    assert result.stdout.strip() == ".git"
    assert any(f"git -C {tmp_path} rev-parse --git-dir" in r.getMessage()
               for r in caplog.records)
    assert run_git(tmp_path, "rev-parse", "--verify", "-q", "HEAD",
                   check=False).returncode == 1
    with pytest.raises(CommandFailed, match="git rev-parse failed with exit code 1"):
        run_git(tmp_path, "rev-parse", "--verify", "-q", "HEAD")


def test_run_git_has_a_timeout(tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    with pytest.raises(CommandTimeout):
        # An alias that sleeps: a git command that outlives its timeout.
        run_git(tmp_path, "-c", "alias.wait=!sleep 30", "wait", timeout=1)


def test_no_private_git_helper_is_left():
    found = [f"{p.relative_to(PACKAGE.parent)}:{n}"
             for p in sorted(PACKAGE.rglob("*.py"))
             for n, line in enumerate(p.read_text().splitlines(), 1)
             if re.match(r"\s*def _git\(", line)]
    assert found == []
