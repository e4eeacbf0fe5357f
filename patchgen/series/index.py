"""Which series folder a branch's series lives in, kept outside any repository.

b4 keeps a series' change-id with the branch, in the user's repository (an
empty cover-letter commit, or branch.<name>.description).  patchgen writes
nothing into a user's repository, so a series is kept with its folder
(series/<topic>/series.json) and found again by branch through this index:
one JSON file in patchgen's state folder ($PATCHGEN_STATE, else
$XDG_STATE_HOME/patchgen, else ~/.local/state/patchgen: state, not cache,
so that pruning the cache never loses it).  Each entry names a repository
(its git common folder, so every worktree of it agrees), a branch and the
series.json that holds that branch's series.  `format -o ANOTHER` then
continues the same series (its change-id, its versions) instead of
starting again at v1.

The index is only a pointer: series.json stays the one record.  An entry
whose file is gone, or holds another change-id, is ignored and dropped.
"""

import json
import os
import tempfile
from pathlib import Path

INDEX_FILE = "series-index.json"
INDEX_FORMAT = 1


def state_dir() -> Path:
    root = os.environ.get("PATCHGEN_STATE")
    if not root:
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        root = str(Path(xdg) / "patchgen")
    return Path(root)


def index_path() -> Path:
    return state_dir() / INDEX_FILE


def _load() -> list[dict]:
    try:
        data = json.loads(index_path().read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
        return []
    return [e for e in data.get("series", []) if isinstance(e, dict)
            and {"repo", "branch", "state", "change_id"} <= set(e)]


def _save(entries: list[dict]) -> None:
    folder = state_dir()
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".series-index.", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"format": INDEX_FORMAT, "series": entries}, out, indent=2)
        out.write("\n")
    os.replace(tmp, index_path())


def _change_id_of(state_file: Path) -> str | None:
    try:
        return json.loads(Path(state_file).read_text(encoding="utf-8")).get("change_id")
    except (OSError, ValueError, AttributeError):
        return None


def lookup(repo: str, branch: str) -> list[Path]:
    """The series.json files recorded for *branch* of *repo*, newest first,
    that still exist and hold the change-id recorded with them."""
    found = []
    for entry in reversed(_load()):
        if entry["repo"] == repo and entry["branch"] == branch:
            path = Path(entry["state"])
            if _change_id_of(path) == entry["change_id"]:
                found.append(path)
    return found


def remember(repo: str, branch: str, state_file: Path, change_id: str) -> None:
    """Record that *branch*'s series is in *state_file* (kept last: newest).
    An index that cannot be written only loses the lookup, never a series."""
    state_file = Path(state_file).resolve()
    entries = [e for e in _load()
               if not (e["repo"] == repo and e["branch"] == branch
                       and Path(e["state"]) == state_file)
               and _change_id_of(Path(e["state"])) == e["change_id"]]
    entries.append({"repo": repo, "branch": branch, "state": str(state_file),
                    "change_id": change_id})
    try:
        _save(entries)
    except OSError:
        pass
