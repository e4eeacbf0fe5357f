"""Every built-in rule passes its own snippets through `patchgen rule-test`
(issue 11: "both rules pass their snippet tests through rule-test")."""

import subprocess
import sys

import pytest

from patchgen.engine.registry import installed


@pytest.mark.parametrize("rule_id", sorted(r for r, item in installed().items()
                                           if item.origin == "built in"))
def test_rule_test_passes_for_a_built_in_rule(rule_id):
    done = subprocess.run([sys.executable, "-m", "patchgen", "rule-test", rule_id],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    count = int(last.split()[0])
    assert count >= 10 and last == f"{count} of {count} snippets pass"


def test_both_built_in_rules_are_there():
    assert {"hwpoison-put-last", "ifnullfree"} <= set(installed())
