"""Versions of a series: the state kept between v1, v2, ... and what changed.

State lives in the series folder, next to the versions it describes:
series/<topic>/series.json holds the change-id (kept across versions, as
b4 keeps it) and, per version, the base, the tip, the commits and the
cover letter's Message-Id (what "Link to v1" points to).  Nothing is kept
in the kernel repository: no ref, no note, no branch description.

What changed between two versions comes from `git range-diff` of the two
ranges.  When the earlier version's commits are gone from the repository
(rebased away and pruned, or another clone), they are rebuilt from its
patch files on its base (patchfiles.replay), so the series folder alone is
enough.
"""

import datetime
import json
import os
import re
import secrets
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from patchgen.infra.errors import BadSeriesState, PreviousVersionMissing
from patchgen.series.patchfiles import replay
from patchgen.infra.runner import run
from patchgen.engine.sources import GitKernelTree

STATE_FILE = "series.json"
STATE_FORMAT = 1


@dataclass(frozen=True)
class VersionRecord:
    version: int
    folder: str                      # "v1", relative to the topic folder
    base: str
    tip: str
    commits: tuple[str, ...]
    subjects: tuple[str, ...]
    files: tuple[str, ...]           # file names, cover letter first
    message_id: str | None           # of the cover letter (or the one patch)
    written: str                     # ISO 8601, UTC
    # Per file name: {"to": [...], "cc": [...]}, as written into its headers.
    recipients: dict = field(default_factory=dict, compare=False)
    # Set when the user says the version was mailed (format --sent, or its
    # Message-Id found in --sent-mbox): a sent version is never rewritten.
    sent: str | None = None          # ISO 8601, UTC
    sent_how: str | None = None      # "--sent", "found in FILE"
    message_ids: dict = field(default_factory=dict, compare=False)  # file -> id

    def to_dict(self) -> dict:
        data = asdict(self)
        data["commits"], data["subjects"], data["files"] = (
            list(self.commits), list(self.subjects), list(self.files))
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "VersionRecord":
        # The state names files inside its series folder, never elsewhere:
        # a tampered "folder": "../../.." must not reach outside it.
        for name in [data["folder"], *data["files"]]:
            if not _plain_name(name):
                raise ValueError(f"{name!r} is not a file name in the series folder")
        return cls(int(data["version"]), data["folder"], data["base"], data["tip"],
                   tuple(data["commits"]), tuple(data["subjects"]),
                   tuple(data["files"]), data.get("message_id"), data["written"],
                   dict(data.get("recipients") or {}), data.get("sent"),
                   data.get("sent_how"), dict(data.get("message_ids") or {}))


@dataclass(frozen=True)
class SeriesState:
    topic: str
    change_id: str
    versions: tuple[VersionRecord, ...] = field(default=())

    def get(self, version: int) -> VersionRecord | None:
        return next((v for v in self.versions if v.version == version), None)

    def latest(self) -> VersionRecord | None:
        return max(self.versions, key=lambda v: v.version, default=None)

    def previous(self, version: int) -> VersionRecord | None:
        """The newest recorded version below *version*."""
        older = [v for v in self.versions if v.version < version]
        return max(older, key=lambda v: v.version, default=None)

    def latest_sent(self) -> VersionRecord | None:
        return max((v for v in self.versions if v.sent), key=lambda v: v.version,
                   default=None)

    def with_version(self, record: VersionRecord) -> "SeriesState":
        others = [v for v in self.versions if v.version != record.version]
        return SeriesState(self.topic, self.change_id,
                           tuple(sorted(others + [record], key=lambda v: v.version)))


def _plain_name(name) -> bool:
    """One path component: not empty, not . or .., no separator."""
    return (isinstance(name, str) and name not in ("", ".", "..")
            and "/" not in name and "\\" not in name and "\0" not in name)


def new_change_id(topic: str, today: datetime.date | None = None) -> str:
    """b4's shape: <date>-<topic>-<12 random hex digits>."""
    today = today or datetime.datetime.now(datetime.timezone.utc).date()
    slug = re.sub(r"[^a-z0-9]+", "-", topic.lower()).strip("-")[:40] or "series"
    return f"{today:%Y%m%d}-{slug}-{secrets.token_hex(6)}"


def load_state(topic_dir: Path, topic: str) -> SeriesState | None:
    path = Path(topic_dir) / STATE_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise ValueError(f"a JSON {type(data).__name__}, not an object")
        if data.get("format") != STATE_FORMAT:
            raise ValueError(f"format {data.get('format')!r}")
        return SeriesState(data["topic"], data["change_id"],
                           tuple(VersionRecord.from_dict(v) for v in data["versions"]))
    except OSError as exc:
        raise BadSeriesState(f"{path} cannot be read ({exc.strerror or exc}): "
                             "fix its permissions") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadSeriesState(
            f"{path} cannot be read ({exc}): restore it, or move the folder "
            f"{topic_dir} away to start the series {topic} afresh") from None


def save_state(topic_dir: Path, state: SeriesState) -> Path:
    """Write series.json atomically (a reader sees the old or the new file)."""
    path = Path(topic_dir) / STATE_FILE
    data = {"format": STATE_FORMAT, "topic": state.topic,
            "change_id": state.change_id,
            "versions": [v.to_dict() for v in state.versions]}
    fd, tmp = tempfile.mkstemp(prefix=".series.json.", dir=topic_dir)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
        out.write("\n")
    os.replace(tmp, path)
    return path


def now_iso() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(
        microsecond=0).isoformat()


# --- the earlier version's commits ----------------------------------------

def _exists(tree: GitKernelTree, sha: str) -> bool:
    return run(["git", "-C", tree.repo.working_tree_dir, "cat-file", "-e",
                f"{sha}^{{commit}}"], check=False).returncode == 0


def recover_commits(tree: GitKernelTree, topic_dir: Path,
                    record: VersionRecord) -> tuple[str, str, Path | None]:
    """(base, tip, rebuilt_from) of an earlier version: its own commits, or
    commits rebuilt from its patch files (then rebuilt_from is its folder)."""
    if _exists(tree, record.base) and _exists(tree, record.tip):
        return record.base, record.tip, None
    if not _exists(tree, record.base):
        raise PreviousVersionMissing(
            f"v{record.version}'s base {record.base[:12]} is not in this "
            "repository, so the new version cannot be compared with it: "
            "fetch that commit first")
    folder = Path(topic_dir) / record.folder
    patches = [folder / name for name in record.files
               if not name.endswith("0000-cover-letter.patch")]
    missing = [p for p in patches if not p.is_file()]
    if missing:
        raise PreviousVersionMissing(
            f"v{record.version}'s commits are gone from the repository and its "
            f"patch {missing[0]} is missing too: restore the folder {folder}")
    tip = replay(tree, record.base, patches)
    return record.base, tip, folder


# --- what changed: git range-diff -----------------------------------------

HEADER = re.compile(r"^\s*(\d+|-):\s+(?:[0-9a-f]+|-+)\s+([=!<>])\s+(\d+|-):\s+"
                    r"(?:[0-9a-f]+|-+)\s+(.*)$")
SECTION = re.compile(r"^@@ (.*?)(?::\s.*)?$")
# range-diff shows each commit as a pseudo-patch whose sections start with
# " ## Commit message ##" or " ## path ##", behind the outer diff marker.
FILE_HEADER = re.compile(r"^[ +-] ?## (.+) ##$")


@dataclass(frozen=True)
class PatchChange:
    kind: str                   # "same", "changed", "new", "dropped"
    old_number: int | None
    new_number: int | None
    subject: str                # the new subject (the old one if dropped)
    old_subject: str | None
    parts: tuple[str, ...] = ()  # "subject", "commit message", "author", paths

    def to_dict(self) -> dict:
        return asdict(self)


def _part_name(section: str) -> str:
    return {"Metadata": "author", "Commit message": "commit message"}.get(
        section, section)


def parse_range_diff(output: str, old_subjects: tuple[str, ...],
                     new_subjects: tuple[str, ...]) -> tuple[PatchChange, ...]:
    """Per-patch changes from `git range-diff --no-color` output."""
    entries: list[dict] = []
    current: dict | None = None
    section = None
    for line in output.splitlines():
        match = HEADER.match(line)
        if match:
            old, marker, new = match.group(1), match.group(2), match.group(3)
            current = {"old": None if old == "-" else int(old),
                       "new": None if new == "-" else int(new),
                       "marker": marker, "parts": []}
            entries.append(current)
            section = None
            continue
        if current is None or not line.startswith("    "):
            continue
        inner = line[4:]
        hunk = SECTION.match(inner)
        if hunk:
            section = _part_name(hunk.group(1).strip())
            continue
        header = FILE_HEADER.match(inner)
        if header:
            section = _part_name(header.group(1))
            if inner[0] in "+-" and section not in current["parts"]:
                current["parts"].append(section)
            continue
        if inner[:1] in ("+", "-") and section and section not in current["parts"]:
            current["parts"].append(section)
    changes = []
    for entry in entries:
        old, new = entry["old"], entry["new"]
        old_subject = old_subjects[old - 1] if old else None
        new_subject = new_subjects[new - 1] if new else None
        parts = list(entry["parts"])
        if old_subject and new_subject and old_subject != new_subject:
            parts.insert(0, "subject")
        kind = {"=": "same", "!": "changed", ">": "new", "<": "dropped"}[entry["marker"]]
        if kind == "changed" and not parts:
            parts = ["whitespace"]
        changes.append(PatchChange(kind, old, new, new_subject or old_subject or "",
                                   old_subject, tuple(parts)))
    return tuple(changes)


def range_diff(tree: GitKernelTree, old: tuple[str, str],
               new: tuple[str, str]) -> str:
    result = run(["git", "-C", tree.repo.working_tree_dir, "range-diff",
                  "--no-color", f"{old[0]}..{old[1]}", f"{new[0]}..{new[1]}"],
                 timeout=600)
    return result.stdout
