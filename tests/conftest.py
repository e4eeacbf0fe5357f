"""Shared test fixtures: fixture trees in git, the real 6.1 tree, tools.

A test that needs a real tool (gcc, perl, qemu, the Debian 6.1 tree) and
does not find it fails under CI=true and is skipped elsewhere.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from patchgen.engine.fixtures import materialize  # noqa: E402

IN_CI = os.environ.get("CI") == "true"


def pytest_configure(config):
    """patchgen's state folder (series_index.py) for the whole run, before
    any fixture, session-wide ones included (the fault suite's templates
    run format), so that no test writes the user's ~/.local/state; each
    test then gets its own (patchgen_state below)."""
    if "PATCHGEN_STATE" not in os.environ:
        folder = tempfile.mkdtemp(prefix="patchgen-state-session-")
        os.environ["PATCHGEN_STATE"] = folder
        config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))


def need(condition: bool, what: str) -> None:
    """Skip (locally) or fail (CI) when *what* is not available."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{what} is required in CI but missing: .ci/run must install it")
    pytest.skip(f"{what} not available")


def need_tool(name: str) -> str:
    path = shutil.which(name)
    need(path is not None, f"the program {name}")
    return path


@pytest.fixture
def fixture_tree(tmp_path):
    """Make a fixture tree as a git repo: fixture_tree("e3-v4.14")."""
    def make(name: str, **kwargs) -> Path:
        return materialize(name, tmp_path / name, **kwargs)
    return make


@pytest.fixture(scope="session")
def linux61():
    """The real Debian 6.1 tree as a git repo in the cache (read-only use)."""
    from patchgen.kernel.realtree import TARBALL, ensure_linux61
    need(TARBALL.exists(), "the Debian package linux-source-6.1")
    return ensure_linux61()


@pytest.fixture(autouse=True)
def patchgen_state(tmp_path_factory, monkeypatch):
    """patchgen's state folder (series_index.py) per test, never the
    user's ~/.local/state/patchgen."""
    folder = tmp_path_factory.mktemp("patchgen-state")
    monkeypatch.setenv("PATCHGEN_STATE", str(folder))
    return folder
