"""Patch files as git format-patch writes them: read, replay, complete.

- replay(): apply patch files to a base commit the way `git am` would
  (git mailinfo + git apply --cached + commit-tree), in a private index
  file, so neither the user's index nor working tree is touched.  format
  uses it to prove its own output (same tree as the branch) and to rebuild
  an earlier version's commits from its folder when they are gone.
- read_mail(): the headers and body of a written patch or cover letter.
- fill_cover_letter(): put the subject and text into git's cover letter,
  which git writes with placeholders.
- add_below_separator(): per-version notes below a single patch's `---`.
- add_recipients(): To:/Cc: headers where git format-patch --to/--cc
  puts them (after Subject:), so that `git send-email DIR` needs no flags.
"""

import email
import email.header
import email.policy
import email.utils
import re
from dataclasses import dataclass
from pathlib import Path

from patchgen.infra.errors import BadArgument, CommandFailed
from patchgen.infra.scratch import scratch_folder
from patchgen.infra.runner import run_git
from patchgen.engine.sources import GitKernelTree

SUBJECT_PLACEHOLDER = "*** SUBJECT HERE ***"
BLURB_PLACEHOLDER = "*** BLURB HERE ***"
PREFIX = re.compile(r"^\[[^\]]*\]\s*")
HEADER_WIDTH = 78


@dataclass(frozen=True)
class OutgoingMail:
    subject: str            # without the [PATCH ...] prefix
    message_id: str | None  # without the angle brackets
    body: str               # everything after the headers


def read_mail(path: Path) -> OutgoingMail:
    text = Path(path).read_text(encoding="utf-8", errors="replace")
    # git's first line is an mbox "From <sha> ..." separator, not a header.
    if text.startswith("From "):
        text = text.split("\n", 1)[1]
    message = email.message_from_string(text, policy=email.policy.default)
    subject = " ".join(str(message.get("Subject", "")).split())
    message_id = str(message.get("Message-Id", "")).strip().strip("<>") or None
    head, _, body = text.partition("\n\n")
    return OutgoingMail(PREFIX.sub("", subject), message_id, body)


def replay(tree: GitKernelTree, base: str, patch_files: list[Path], *,
           commit: bool = True) -> str:
    """Apply *patch_files* in order on *base*, as `git am` would.

    Returns the last commit made (or, with commit=False, only the final
    tree id).  The commits are reachable from no ref: they exist for a
    range-diff and git gc removes them later.
    """
    parent = base
    tree_id = None
    # The index and the mails live in patchgen's scratch (never in the
    # user's .git, where a kill would leave them); a round trip alone also
    # writes its trees there, so the user's repository gains nothing.
    with scratch_folder("replay") as scratch:
        env = {"GIT_INDEX_FILE": str(scratch / "index")}
        if not commit:
            objects = Path(tree.repo.common_dir) / "objects"
            (scratch / "objects").mkdir()
            env.update(GIT_OBJECT_DIRECTORY=str(scratch / "objects"),
                       GIT_ALTERNATE_OBJECT_DIRECTORIES=str(objects.resolve()))
        run_git(tree.top, "read-tree", base, env=env, writes=True)
        for path in patch_files:
            msg, diff = Path(scratch) / "msg", Path(scratch) / "diff"
            info = run_git(tree.top, "mailinfo", msg, diff, env=env,
                           input=Path(path).read_text(encoding="utf-8",
                                                      errors="surrogateescape"), writes=True)
            result = run_git(tree.top, "apply", "--cached", diff, env=env, check=False, writes=True)
            if result.returncode != 0:
                why = result.stderr.strip().splitlines()[:1]
                raise CommandFailed(f"{Path(path).name} does not apply on "
                                    f"{base[:12]}" + (f": {why[0]}" if why else ""))
            tree_id = run_git(tree.top, "write-tree", env=env, writes=True).stdout.strip()
            if not commit:
                continue
            fields = dict(line.split(": ", 1) for line in
                          info.stdout.splitlines() if ": " in line)
            message = fields.get("Subject", "") + "\n\n" + \
                msg.read_text(encoding="utf-8", errors="replace").strip("\n") + "\n"
            who = {"GIT_AUTHOR_NAME": fields.get("Author", ""),
                   "GIT_AUTHOR_EMAIL": fields.get("Email", ""),
                   "GIT_AUTHOR_DATE": fields.get("Date", "")}
            parent = run_git(tree.top, "commit-tree", tree_id, "-p", parent, "-F", "-",
                             env={**who, **env}, input=message, writes=True).stdout.strip()
    if tree_id is None:
        raise CommandFailed("no patch files to replay")
    return parent if commit else tree_id


def tree_of(tree: GitKernelTree, rev: str) -> str:
    return run_git(tree.top, "rev-parse", f"{rev}^{{tree}}", writes=True).stdout.strip()


# --- completing what git format-patch wrote -------------------------------

def encode_subject(line: str) -> str:
    """A Subject: header for *line*: folded at spaces, RFC 2047 if not ASCII."""
    if not line.isascii():
        return "Subject: " + email.header.Header(
            line, "utf-8", header_name="Subject").encode(maxlinelen=HEADER_WIDTH)
    words = line.split(" ")
    out, current = [], "Subject:"
    for word in words:
        if len(current) + 1 + len(word) > HEADER_WIDTH and current.strip() not in ("Subject:", ""):
            out.append(current)
            current = ""
        current += " " + word
    out.append(current)
    return "\n".join(out)


MIME_HEADERS = ("MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n"
                "Content-Transfer-Encoding: 8bit")


def fill_cover_letter(path: Path, subject: str, text: str,
                      footer: list[str]) -> None:
    """Replace git's placeholders in the cover letter at *path*.

    *footer* lines go after the `base-commit:` line git wrote.
    """
    content = path.read_text(encoding="utf-8", errors="surrogateescape")
    head, sep, body = content.partition("\n\n")
    subject_lines = [i for i, line in enumerate(head.split("\n"))
                     if line.startswith("Subject:")]
    if not sep or not subject_lines or SUBJECT_PLACEHOLDER not in head \
            or BLURB_PLACEHOLDER not in body:
        raise CommandFailed(f"{path.name} is not the cover letter git "
                            "format-patch writes (its placeholders are missing)")
    header_lines = head.split("\n")
    start = subject_lines[0]
    end = start + 1
    while end < len(header_lines) and header_lines[end].startswith((" ", "\t")):
        end += 1
    old_subject = " ".join(line.strip() for line in header_lines[start:end])
    prefix = old_subject[len("Subject:"):].strip().replace(SUBJECT_PLACEHOLDER, "").strip()
    new_subject = encode_subject(f"{prefix} {subject}")
    header_lines[start:end] = new_subject.split("\n")
    if not text.isascii() and not any(l.lower().startswith("content-type:")
                                       for l in header_lines):
        header_lines.insert(start + len(new_subject.split("\n")), MIME_HEADERS)
    body = body.replace(BLURB_PLACEHOLDER, text.strip("\n"), 1)
    if footer:
        body = _after_base_commit(body, footer)
    result = "\n".join(header_lines) + "\n\n" + body
    for placeholder in (SUBJECT_PLACEHOLDER, BLURB_PLACEHOLDER):
        if placeholder in result:
            raise CommandFailed(f"{path.name} still holds {placeholder}")
    path.write_text(result, encoding="utf-8", errors="surrogateescape")


def _after_base_commit(body: str, footer: list[str]) -> str:
    lines = body.split("\n")
    for index in range(len(lines) - 1, -1, -1):
        if lines[index].startswith("base-commit: "):
            lines[index + 1:index + 1] = footer
            return "\n".join(lines)
    raise CommandFailed("git format-patch wrote no base-commit: line")


def add_below_separator(path: Path, notes: str, footer: list[str]) -> None:
    """Put *notes* just below the `---` of a single patch (git am drops them)."""
    content = path.read_text(encoding="utf-8", errors="surrogateescape")
    marker = "\n---\n"
    at = content.find(marker)
    if at < 0:
        raise CommandFailed(f"{path.name} has no `---` line")
    at += len(marker)
    if notes.strip():
        content = content[:at] + notes.strip("\n") + "\n\n" + content[at:]
    if footer:
        content = _after_base_commit(content, footer)
    path.write_text(content, encoding="utf-8", errors="surrogateescape")


def check_recipient(entry: str, where: str) -> None:
    """Refuse a recipient no mail header can carry: a line break (it
    would start a header of its own), or an address (not the name) that
    is not ASCII."""
    display, addr = email.utils.parseaddr(entry)
    if any(c in entry for c in "\r\n\0"):
        raise BadArgument(f"the recipient {entry!r} ({where}) has a line break "
                          "in it: give one address per --to/--cc")
    if not addr.isascii():
        raise BadArgument(f"the recipient {entry!r} ({where}) has an address "
                          "that is not ASCII: a mail header needs the address "
                          "in ASCII (an international domain in its xn-- "
                          "form); only the name may be any text")


def address_header(name: str, addresses) -> str:
    """A To:/Cc: header as git format-patch folds it: one address a line.
    A display name that is not ASCII is RFC 2047 encoded (the header
    itself must be ASCII)."""
    encoded = []
    for entry in addresses:
        check_recipient(entry, f"{name}:")
        display, addr = email.utils.parseaddr(entry)
        if entry.isascii() or not addr:
            encoded.append(entry)
        else:
            encoded.append(email.utils.formataddr((display, addr), charset="utf-8"))
    return f"{name}: " + ",\n    ".join(encoded)


def add_recipients(path: Path, to, cc) -> None:
    """Put To:/Cc: headers after the Subject: of the mail at *path*
    (replacing any it has).  The rest of the file is kept byte for byte,
    whatever its encoding (a diff may carry a Latin-1 source file)."""
    content = Path(path).read_text(encoding="utf-8", errors="surrogateescape")
    head, sep, body = content.partition("\n\n")
    lines = head.split("\n")
    kept: list[str] = []
    skipping = False
    for line in lines:
        if line.startswith((" ", "\t")) and skipping:
            continue
        skipping = line.lower().startswith(("to:", "cc:"))
        if not skipping:
            kept.append(line)
    at = next((i for i, line in enumerate(kept) if line.startswith("Subject:")), None)
    if at is None or not sep:
        raise CommandFailed(f"{Path(path).name} has no Subject: header")
    at += 1
    while at < len(kept) and kept[at].startswith((" ", "\t")):
        at += 1
    new = ([address_header("To", to)] if to else []) + \
        ([address_header("Cc", cc)] if cc else [])
    kept[at:at] = new
    Path(path).write_text("\n".join(kept) + "\n\n" + body, encoding="utf-8",
                          errors="surrogateescape")
