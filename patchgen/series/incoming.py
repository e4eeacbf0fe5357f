"""A series as it arrives: mails read from a folder, an mbox or a git range.

`patchgen check SERIES` takes a folder of .patch files (`git format-patch
-o`), an mbox file (what b4 or a mail client saves), or a revision range
of the tree (`A..B`, or a branch: what it adds to HEAD).  Each becomes a
tuple of Mail values, in order, parsed the way `git am` reads them: the
headers, the commit message up to the `---` line, the notes and diffstat,
then the diff.  Nothing here judges a mail; check_mail.py does.

A file that is not a patch at all still becomes a Mail (with `problem`
set), so that a folder with one stray file gives one finding rather than
an error; a SERIES with no patch in it at all is unusable input.
"""

import email
import email.utils
import re
from dataclasses import dataclass, replace
from email import policy
from pathlib import Path

from patchgen.infra.errors import NotASeries, SeriesNotFound
from patchgen.infra.runner import run, run_git, text_bytes
from patchgen.infra.scratch import scratch_folder
from patchgen.engine.sources import commit_id

FOLDER, MBOX, RANGE = "folder", "mbox", "range"
# The mails of a folder: git format-patch -o writes .patch, b4 send -o .eml.
FOLDER_SUFFIXES = (".patch", ".eml")
STDIN = "-"
REPLY = "a reply in the thread"

_BRACKET = re.compile(r"^\s*\[([^\]]*)\]\s*")
_VERSION = re.compile(r"^[vV](\d+)$")
_NUMBER = re.compile(r"^(\d+)/(\d+)$")
_BASE_COMMIT = re.compile(r"^base-commit: ([0-9a-f]{7,40})\s*$", re.M)
_IN_BODY_HEADER = re.compile(r"^(From|Subject|Date): ?(.*)$")


@dataclass(frozen=True)
class SubjectTags:
    """What the `[...]` prefix of a subject says."""

    bracket: str | None      # "PATCH v2 1/4", "RFC PATCH", or None
    is_patch: bool           # the prefix names PATCH
    version: int             # 1 when no vN is given
    number: int | None       # M of M/T
    total: int | None        # T of M/T
    summary: str             # what follows the prefix: the commit subject


def parse_subject(subject: str) -> SubjectTags:
    rest = subject.strip()
    tokens: list[str] = []
    brackets = []
    while True:
        match = _BRACKET.match(rest)
        if not match:
            break
        brackets.append(match.group(1).strip())
        tokens += match.group(1).split()
        rest = rest[match.end():]
    version, number, total = 1, None, None
    for token in tokens:
        if found := _VERSION.match(token):
            version = int(found.group(1))
        elif found := _NUMBER.match(token):
            number, total = (int(x) for x in found.groups())
    return SubjectTags(" ".join(brackets) if brackets else None,
                       any(t.upper() == "PATCH" for t in tokens),
                       version, number, total, rest.strip())


@dataclass(frozen=True)
class Mail:
    """One message of a series, split the way `git am` splits it."""

    position: int              # 1-based, in input order
    source: str                # file name, "message N of FILE", or a commit id
    raw: bytes
    subject: str               # the Subject header, unfolded
    tags: SubjectTags
    author_name: str           # From (an in-body From: wins, as in git am)
    author_email: str
    message_id: str | None
    in_reply_to: str | None
    message: str               # commit message body: after the subject, before ---
    notes: str                 # between --- and the diff: notes, diffstat
    diff: str                  # from the first diff header, without the signature
    base_commit: str | None
    transfer_problem: str | None  # e.g. format=flowed, which mangles whitespace
    problem: str | None        # why this is not a patch mail at all, else None
    subject_problem: str | None = None  # a Subject that decodes to more than one line

    @property
    def is_cover(self) -> bool:
        return self.problem is None and not self.diff and self.tags.number == 0

    @property
    def is_patch(self) -> bool:
        return self.problem is None and bool(self.diff)

    @property
    def label(self) -> str:
        """`2/4` as numbered in its subject, else `#position`."""
        if self.tags.number is not None and self.tags.total is not None:
            return f"{self.tags.number}/{self.tags.total}"
        return f"#{self.position}"

    @property
    def author(self) -> str:
        return f"{self.author_name} <{self.author_email}>"

    def message_lines(self) -> list[str]:
        return self.message.split("\n")


@dataclass(frozen=True)
class SetAside:
    """A mail of the input that is not part of the series checked: a reply
    in the thread, or a patch of another version."""

    source: str
    subject: str
    reason: str


@dataclass(frozen=True)
class ReplyTrailer:
    """A trailer (Reviewed-by: ...) written in a reply of the thread."""

    trailer: str               # "Reviewed-by: A U Thor <a@example.org>"
    reply_from: str            # who wrote the reply
    reply_source: str          # "message 5 of 7 in thread.mbox"
    position: int | None       # the mail of the series it answers (a
                               # position of `mails`), None: not found
    carried_from: int | None = None  # given on this older version of the
                                     # same patch (same diff), as b4 carries it


@dataclass(frozen=True)
class IncomingSeries:
    kind: str                      # FOLDER, MBOX or RANGE
    origin: str                    # what the user named
    mails: tuple[Mail, ...]
    range_base: str | None = None  # for a range: the commit it starts from
    set_aside: tuple[SetAside, ...] = ()
    trailers: tuple[ReplyTrailer, ...] = ()
    versions: tuple[int, ...] = ()  # the versions of the series in the input
    version: int | None = None      # the one read, when there were several

    @property
    def patches(self) -> tuple[Mail, ...]:
        return tuple(m for m in self.mails if m.is_patch)

    @property
    def covers(self) -> tuple[Mail, ...]:
        return tuple(m for m in self.mails if m.is_cover)


# --- one mail ---------------------------------------------------------------

def _text_of(message) -> tuple[str, str | None]:
    """The text of a mail (all text parts, decoded) and a transfer problem."""
    problem = None
    parts = list(message.walk()) if message.is_multipart() else [message]
    texts = []
    for part in parts:
        if part.is_multipart():
            continue
        maintype = part.get_content_maintype()
        subtype = part.get_content_subtype()
        if maintype != "text" and subtype not in ("x-patch", "x-diff"):
            continue
        try:
            text = part.get_content()
        except (LookupError, ValueError, AssertionError):
            payload = part.get_payload(decode=True) or b""
            text = payload.decode("utf-8", "replace")
        if isinstance(text, bytes):
            text = text.decode("utf-8", "replace")
        if (part.get_param("format") or "").lower() == "flowed":
            problem = ("sent as format=flowed, which rewraps lines and "
                       "strips trailing spaces: send with git send-email")
        texts.append(text)
    if message.is_multipart():
        problem = problem or "a multipart mail (attachment): send the patch inline"
    text = "\n".join(texts).replace("\r\n", "\n")
    return text, problem


def _split_body(text: str) -> tuple[dict, str, str, str]:
    """In-body headers, commit message, notes (below ---), diff."""
    lines = text.split("\n")
    in_body: dict[str, str] = {}
    start = 0
    # In-body headers (From:, Subject:, Date:) open the body, then a blank line.
    while start < len(lines) and lines[start].strip() == "":
        start += 1
    probe = start
    while probe < len(lines) and (match := _IN_BODY_HEADER.match(lines[probe])):
        in_body[match.group(1).lower()] = match.group(2).strip()
        probe += 1
    if in_body and probe < len(lines) and lines[probe].strip() == "":
        start = probe + 1
    else:
        in_body = {}
    lines = lines[start:]
    # The commit message ends at the first `---` line (or a diff header).
    cut = len(lines)
    for index, line in enumerate(lines):
        if line.rstrip() == "---" or line.startswith(("--- ", "diff -", "Index: ")):
            cut = index
            break
    message = "\n".join(lines[:cut]).strip("\n")
    rest = lines[cut + 1:] if cut < len(lines) and lines[cut].rstrip() == "---" \
        else lines[cut:]
    diff_at = None
    for index, line in enumerate(rest):
        if line.startswith("diff --git ") or line.startswith("Index: ") or (
                line.startswith("--- ") and index + 1 < len(rest)
                and rest[index + 1].startswith("+++ ")):
            diff_at = index
            break
    if diff_at is None:
        return in_body, message, "\n".join(rest), ""
    notes = "\n".join(rest[:diff_at])
    diff_lines = rest[diff_at:]
    # The signature git format-patch ends with: "-- " and the git version.
    for index in range(len(diff_lines) - 1, -1, -1):
        if diff_lines[index] == "-- ":
            diff_lines = diff_lines[:index]
            break
    diff = "\n".join(diff_lines).rstrip("\n")
    return in_body, message, notes, diff + "\n" if diff else ""


def _header(message, name: str):
    """A header of *message*, parsed, or as written when Python's header
    parser fails on it (a hostile From: can raise IndexError in the
    address parser): one bad header must not end the review."""
    try:
        return message.get(name)
    except Exception:       # the stdlib parser's own errors, whatever they are
        for key, value in message.raw_items():
            if key.lower() == name.lower():
                return " ".join(str(value).split())
        return None


def parse_mail(raw: bytes, position: int, source: str) -> Mail:
    """Parse one message; a text that is not a patch mail gets `problem`."""
    message = email.message_from_bytes(raw, policy=policy.default)
    subject, subject_problem = _one_line(str(_header(message, "Subject") or "").strip())
    from_header = str(_header(message, "From") or "").strip()
    text, transfer_problem = _text_of(message)
    in_body, body, notes, diff = _split_body(text)
    if "subject" in in_body:
        subject = in_body["subject"]
    author = in_body.get("from") or from_header
    name, address = email.utils.parseaddr(author)
    problem = None
    if not subject or not from_header:
        problem = ("not a patch: no mail headers (From:, Subject:) were found"
                   + ("" if diff else " and it holds no diff"))
    elif not diff and parse_subject(subject).number != 0:
        problem = "not a patch: the mail holds no diff"
    # The commit message's first paragraph continues the subject in git am;
    # what we keep as `message` is the body below it.
    base = _BASE_COMMIT.search(text)
    return Mail(
        position=position, source=source, raw=raw, subject=subject,
        tags=parse_subject(subject), author_name=name.strip(),
        author_email=address.strip(),
        message_id=_angle(_header(message, "Message-Id")),
        in_reply_to=_angle(_header(message, "In-Reply-To")),
        message=body, notes=notes, diff=diff,
        base_commit=base.group(1) if base else None,
        transfer_problem=transfer_problem, problem=problem,
        subject_problem=subject_problem)


def _one_line(subject: str) -> tuple[str, str | None]:
    """A Subject whose encoded words (RFC 2047) decode to a line break or
    another control character is one line here, and said so: git am would
    cut it there."""
    if not any(ord(c) < 32 and c != "\t" or ord(c) == 127 for c in subject):
        return subject, None
    flat = " ".join("".join(c if ord(c) >= 32 and ord(c) != 127 else "\n"
                            for c in subject).split())
    return flat, (f"the Subject header decodes to control characters "
                  f"(a line break): {subject[:80]!r}")


def _angle(value) -> str | None:
    if value is None:
        return None
    value = str(value).strip()
    match = re.search(r"<[^>]+>", value)
    return match.group(0) if match else (value or None)


# --- a series -----------------------------------------------------------------

def _mails_from_mbox(path: Path, label: str) -> list[Mail]:
    """Split an mbox with git's own splitter (what git am uses)."""
    with scratch_folder("mbox") as out:
        result = run(["git", "mailsplit", f"-o{out}", str(path)], check=False)
        if result.returncode != 0:
            # Not an mbox: read the whole file as one mail, as a single
            # patch saved without its `From ` line is.
            return [parse_mail(path.read_bytes(), 1, label)]
        parts = sorted(Path(out).iterdir())
        total = len(parts)
        return [parse_mail(part.read_bytes(), index,
                           f"message {index} of {total} in {label}")
                for index, part in enumerate(parts, 1)]


def read_folder(folder: Path, suffixes: tuple[str, ...] = FOLDER_SUFFIXES,
                version: int | None = None) -> IncomingSeries:
    """The files of *folder* whose names end in one of *suffixes*, in name
    order (git format-patch numbers them)."""
    files = sorted(p for p in folder.iterdir()
                   if p.is_file() and p.suffix in suffixes)
    if not files:
        raise NotASeries(f"{folder} holds no {' or '.join(suffixes)} files",
                         "give a folder made by git format-patch -o, an mbox "
                         "file or a range")
    mails = [parse_mail(p.read_bytes(), index, p.name)
             for index, p in enumerate(files, 1)]
    return _usable(pick_series(FOLDER, str(folder), mails, version))


def read_mbox(path: Path, version: int | None = None,
              origin: str | None = None) -> IncomingSeries:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SeriesNotFound(f"cannot read {path}: {exc.strerror}") from None
    if size == 0:
        raise NotASeries(f"{path} is empty", "give a folder of .patch files, "
                         "an mbox file or a range")
    mails = _mails_from_mbox(path, origin or path.name)
    return _usable(pick_series(MBOX, origin or str(path), mails, version))


# --- a thread: replies and versions ---------------------------------------------

_REPLY = re.compile(r"^\s*(re|aw|sv|antw)\s*:", re.I)
# Trailers a reviewer gives in a reply (what b4 collects), at the start of
# an unquoted line.
_TRAILER = re.compile(r"^(Reviewed-by|Acked-by|Tested-by|Reported-by|"
                      r"Suggested-by|Nacked-by|Reviewed-and-tested-by): *(\S.*)$",
                      re.I)


def is_reply(mail: Mail, ids: set[str]) -> bool:
    """A reply in the thread, not a mail of the series: its Subject says
    `Re:`, or it answers a mail of the input and carries no patch (and is
    no cover letter)."""
    if _REPLY.match(mail.subject or ""):
        return True
    return (not mail.is_patch and not mail.is_cover
            and mail.in_reply_to is not None and mail.in_reply_to in ids)


def _reply_trailers(reply: Mail) -> list[str]:
    found = []
    for line in reply.message.split("\n") + reply.notes.split("\n"):
        match = _TRAILER.match(line.strip()) if not line.startswith(">") else None
        if match:
            found.append(f"{match.group(1)}: {match.group(2).strip()}")
    return found


_HUNK = re.compile(r"^@@ -\d+(,\d+)? \+\d+(,\d+)? @@")


def _diff_key(diff: str) -> str:
    """What `git patch-id` compares: the changed lines, not where they are
    (hunk positions and index lines left out, whitespace squeezed)."""
    lines = []
    for line in diff.split("\n"):
        if line.startswith("index "):
            continue
        line = _HUNK.sub("@@", line)
        lines.append("".join(line.split()))
    return "\n".join(lines)


def pick_series(kind: str, origin: str, mails: list[Mail],
                version: int | None = None) -> IncomingSeries:
    """The series in what was read: replies set aside (their trailers kept),
    and of several versions the newest, or *version*; positions renumbered
    1..N over the mails kept, in input order."""
    ids = {m.message_id for m in mails if m.message_id}
    replies: list[Mail] = []
    rest: list[Mail] = []
    for mail in mails:
        (replies if is_reply(mail, ids) else rest).append(mail)
    versions = sorted({m.tags.version for m in rest
                       if m.problem is None and m.tags.is_patch})
    set_aside = [(m.position, SetAside(m.source, m.subject, REPLY))
                 for m in replies]
    chosen = version if version is not None else (versions[-1] if versions else None)
    if version is not None and version not in versions:
        have = ", ".join(f"v{v}" for v in versions) or "no numbered version"
        raise NotASeries(f"{origin} holds no v{version} of the series ({have})",
                         "give --version with one of those")
    kept, dropped = [], {}
    for mail in rest:
        tagged = mail.problem is None and mail.tags.is_patch
        if len(versions) > 1 and tagged and mail.tags.version != chosen:
            why = (f"v{mail.tags.version} of the series: checking v{chosen}"
                   + (" (the newest; --version N for another)"
                      if version is None else " (--version)"))
            set_aside.append((mail.position, SetAside(mail.source, mail.subject, why)))
            if mail.message_id:
                dropped[mail.message_id] = mail
            continue
        kept.append(mail)
    kept = [replace(m, position=index) for index, m in enumerate(kept, 1)]
    by_id = {m.message_id: m for m in kept if m.message_id}
    parent = {m.message_id: m.in_reply_to for m in mails if m.message_id}
    same_diff = {_diff_key(m.diff): m.position for m in kept if m.is_patch}
    trailers = []
    for reply in replies:
        target, seen = reply.in_reply_to, set()
        # A reply to a reply: climb the thread to the mail of the series.
        while (target and target not in by_id and target not in dropped
               and target not in seen):
            seen.add(target)
            target = parent.get(target)
        position, carried = None, None
        if target in by_id:
            position = by_id[target].position
        elif (target in dropped and dropped[target].is_patch
              and chosen is not None and dropped[target].tags.version < chosen):
            # On an older version: it still counts where the patch did not
            # change (b4 am does the same, by patch-id).
            position = same_diff.get(_diff_key(dropped[target].diff))
            carried = dropped[target].tags.version
        for trailer in _reply_trailers(reply):
            trailers.append(ReplyTrailer(trailer, reply.author, reply.source,
                                         position, carried))
    set_aside.sort(key=lambda pair: pair[0])
    return IncomingSeries(kind, origin, tuple(kept),
                          set_aside=tuple(aside for _, aside in set_aside),
                          trailers=tuple(trailers), versions=tuple(versions),
                          version=chosen if len(versions) > 1 else None)


def _usable(series: IncomingSeries) -> IncomingSeries:
    if not any(m.problem is None for m in series.mails):
        first = series.mails[0].problem if series.mails else "nothing in it"
        raise NotASeries(f"{series.origin} holds no patch ({first})",
                         "give a folder made by git format-patch, an mbox file "
                         "or a range of --tree")
    return series


def read_range(root: Path, spec: str) -> IncomingSeries:
    """`A..B`, or a branch: the commits it adds to HEAD, as mails."""
    if ".." in spec:
        start, _, end = spec.partition("..")
        start, end = start or "HEAD", end or "HEAD"
    else:
        start, end = "HEAD", spec
    ids = [commit_id(root, rev) for rev in (start, end)]
    if None in ids:
        raise SeriesNotFound(f"{spec!r} is not a file, a folder or a revision "
                             f"range of {root}: give .patch files, an mbox, "
                             "A..B or a branch")
    base = run_git(root, "merge-base", ids[0], ids[1], check=False).stdout.strip()
    if not base:
        raise NotASeries(f"{spec}: {start} and {end} have no common history")
    count = int(run_git(root, "rev-list", "--count", f"{base}..{ids[1]}").stdout)
    if count == 0:
        raise NotASeries(f"{spec} holds no commits (nothing in {end} that is not "
                         f"in {start})", "give A..B")
    # Read-only: format-patch writes the mails to stdout.  Options that a
    # user's format.* config could change are spelled out.
    result = run_git(root, "format-patch", "--stdout", "--numbered", "--no-signoff",
                     "--no-cover-letter", "--no-thread", "--no-attach",
                     f"--base={base}", f"{base}..{ids[1]}")
    with scratch_folder("range") as tmp:
        mbox = Path(tmp) / "series.mbox"
        mbox.write_bytes(text_bytes(result.stdout))
        mails = _mails_from_mbox(mbox, spec)
    return _usable(IncomingSeries(RANGE, spec, tuple(mails), range_base=base))


def read_stdin(stream, version: int | None = None) -> IncomingSeries:
    """SERIES `-`: an mbox (or one mail) on standard input."""
    data = stream.read()
    if not data:
        raise NotASeries("standard input is empty", "pipe an mbox or a mail "
                         "into it, or give a folder, a file or a range")
    with scratch_folder("stdin") as tmp:
        mbox = Path(tmp) / "stdin.mbox"
        mbox.write_bytes(data)
        return read_mbox(mbox, version, origin="stdin")


def read_series(spec: str, tree_root: Path | None,
                folder_suffixes: tuple[str, ...] = FOLDER_SUFFIXES,
                version: int | None = None, stdin=None) -> IncomingSeries:
    """Read SERIES: a folder, an mbox file, `-` (an mbox on *stdin*), or a
    range of the tree (none without *tree_root*).  A folder's mails are its
    files ending in one of *folder_suffixes*.  Replies in a thread are set
    aside; of several versions, the newest (or *version*) is read."""
    if spec == STDIN and stdin is not None:
        return read_stdin(stdin, version)
    path = Path(spec)
    if path.is_dir():
        return read_folder(path, folder_suffixes, version)
    if path.exists():
        return read_mbox(path, version)
    if tree_root is None:
        raise SeriesNotFound(f"{spec} does not exist: give a folder of .patch "
                             "files, an mbox file, or a range with --tree")
    return read_range(tree_root, spec)
