"""Every benchmark script still starts: `--help` in a fresh process.

The benchmarks are not run in CI (they take real trees and minutes), so
an API move (as get_rule's, into engine/registry.py) breaks them silently
unless something imports them."""

import subprocess
import sys

import pytest

from conftest import ROOT

SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))


def test_there_are_benchmarks():
    assert len(SCRIPTS) >= 8


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_the_benchmark_starts(script):
    result = subprocess.run([sys.executable, str(script), "--help"],
                            capture_output=True, text=True, timeout=120,
                            cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage:" in result.stdout
