"""History: what the tree's own commits call a folder ("drm/amdgpu: ...").

Kernel subjects start with the subsystem or driver they touch; a rule that
writes a patch for a folder takes the prefix the folder's history uses
most.  A tree without history (a tarball, one import commit) has none, and
the rule falls back to a prefix made from the path.
"""

from collections import Counter
from functools import lru_cache

from patchgen.infra.runner import run

# How many of a folder's newest commits are read.
HISTORY_DEPTH = 100


def _where(source) -> tuple[str, str, str] | None:
    """(git top, revision, path prefix) of *source*, or None (no git)."""
    while hasattr(source, "base") and not hasattr(source, "commit"):
        source = source.base          # an Overlay or a --only view
    commit = getattr(source, "commit", None)
    repo = getattr(source, "repo", None)
    if commit is not None and repo is not None:
        return str(repo.working_tree_dir), commit, getattr(source, "prefix", "")
    top = getattr(source, "git_top", None)
    root = getattr(source, "root", None)
    if top is None or root is None:
        return None
    prefix = str(root.resolve().relative_to(top.resolve()))
    return str(top), "HEAD", "" if prefix == "." else prefix + "/"


@lru_cache(maxsize=4096)
def _subjects(top: str, rev: str, path: str) -> tuple[str, ...]:
    result = run(["git", "-C", top, "log", f"-n{HISTORY_DEPTH}", "--no-merges",
                  "--format=%s", rev, "--", path], check=False, timeout=300)
    return tuple(result.stdout.splitlines()) if result.returncode == 0 else ()


def _prefix_of(subject: str) -> str | None:
    """ "net: stmmac: fix x: y" -> "net: stmmac"; "drm/amdgpu: fix" ->
    "drm/amdgpu"; a subject without such a prefix -> None."""
    pieces = subject.split(": ")
    words = []
    for piece in pieces[:-1]:
        if not piece or " " in piece or piece.startswith(("Revert", "Merge", "[")):
            break
        words.append(piece)
    head = ": ".join(words)
    return head if head and len(head) <= 40 else None


def subject_prefix(source, folder: str) -> str | None:
    """The most common "xxx" of the "xxx: ..." subjects of the commits that
    touched *folder* (at least two of them agree), or None."""
    where = _where(source)
    if where is None:
        return None
    top, rev, prefix = where
    counts: Counter[str] = Counter()
    for subject in _subjects(top, rev, prefix + folder.rstrip("/") + "/"):
        head = _prefix_of(subject)
        if head:
            counts[head] += 1
    if not counts:
        return None
    best, count = counts.most_common(1)[0]
    return best if count >= 2 else None
