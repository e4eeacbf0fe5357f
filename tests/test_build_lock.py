"""The machine-wide kernel build lock says whom a waiting run waits for
(two real processes, a real flock)."""

import os
import subprocess
import sys

from conftest import ROOT

HOLD = """
import sys, time
from patchgen.infra.cache import kernel_build_lock
with kernel_build_lock("the base of linux-4.14.67"):
    print("held", flush=True)
    time.sleep(float(sys.argv[1]))
    open(sys.argv[2], "w").write("released")
"""

WAIT = """
import os, sys
from patchgen.infra.cache import kernel_build_lock
with kernel_build_lock("a second build"):
    # Only after the holder let go.
    print("got it" if os.path.exists(sys.argv[1]) else "too early", flush=True)
"""


def test_a_waiting_build_names_the_holder_and_then_runs(tmp_path):
    env = dict(os.environ, PATCHGEN_CACHE=str(tmp_path / "cache"),
               PYTHONPATH=str(ROOT))
    marker = str(tmp_path / "released")
    holder = subprocess.Popen([sys.executable, "-c", HOLD, "2", marker], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        waiter = subprocess.run([sys.executable, "-c", WAIT, marker], env=env,
                                capture_output=True, text=True, timeout=60)
    finally:
        holder.wait(timeout=60)
    assert waiter.returncode == 0, waiter.stderr
    assert waiter.stdout.strip() == "got it"
    assert f"held by pid {holder.pid}: the base of linux-4.14.67" \
        in waiter.stderr
    # Released: the lock file no longer names anyone, and a third run
    # takes it without a word.
    assert (tmp_path / "cache/locks/kernel-build.lock").read_text() == ""
    third = subprocess.run([sys.executable, "-c", WAIT, marker], env=env,
                           capture_output=True, text=True, timeout=60)
    assert third.stderr == "" and third.stdout.strip() == "got it"
