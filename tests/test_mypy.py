"""mypy finds no error in the package (configured in pyproject.toml,
[tool.mypy]); mypy comes with the test extra, so CI runs this."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_mypy_finds_no_error():
    result = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental",
                             "--cache-dir", "/dev/null"],
                            cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert "No module named mypy" not in result.stderr, \
        "mypy is missing: pip install '.[test]' (the test extra brings it)"
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1].startswith("Success: no issues found"), \
        result.stdout
