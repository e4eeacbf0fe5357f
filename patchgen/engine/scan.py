"""Scan: run a rule over a tree, read-only, and return its Report."""

from pathlib import Path

from patchgen.engine.rule import Report
from patchgen.engine.registry import get_rule
from patchgen.engine.sources import open_worktree


def scan_tree(path: str | Path, rule_id: str) -> Report:
    """Scan the files on disk below *path* (a git tree or not)."""
    rule = get_rule(rule_id)
    return rule.scan(open_worktree(path))
