"""The cover letter's words: subject, what and why, changes, base note.

Where the text comes from, first match wins:

1. --cover-template FILE (a Jinja2 template of the user's);
2. from v2 on, the previous version's cover letter as written (so hand
   edits made before sending are kept), without the parts format makes
   afresh each time (the newest "Changes in vN:" and the base note);
3. the rule's cover template, when every commit was made by one rule;
4. templates/format/cover.msg.j2, built from the commit messages.

Every template is rendered with StrictUndefined: a value the template
uses and format does not give is an error that names it, never a
placeholder in a mail.  The first line of a rendered template is the
subject, the rest the text.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import jinja2

from patchgen.infra.errors import CoverTemplateError
from patchgen.series.patchfiles import OutgoingMail
from patchgen.infra.provenance import GENERATED_BY_PREFIX
from patchgen.infra.prose import TAG, WIDTH, wrap_paragraph
from patchgen.infra.templates import environment
from patchgen.series.versions import PatchChange, VersionRecord

GENERIC_TEMPLATE = "format/cover.msg.j2"
CHANGES_TEMPLATE = "format/changes.msg.j2"
BASE_NOTE_TEMPLATE = "format/base-note.msg.j2"

# The marker of a machine-seeded "Changes in vN:" list (b4 uses the same
# word): format and check warn while a letter still holds it.
EDITME = "EDITME"

# How format recognises, in a cover letter it wrote, the parts it remakes.
CHANGES_HEAD = re.compile(r"^Changes in v(\d+):")
BASE_NOTE_HEAD = "The base-commit below"
SHORTLOG_HEAD = re.compile(r"^\S.* \(\d+\):$")


@dataclass(frozen=True)
class CoverText:
    subject: str
    text: str               # what and why: kept from version to version
    changelog: str          # earlier "Changes in vK:" blocks, newest first
    source: str             # where the text came from, for the user


def _render(template: jinja2.Template, name: str, context: dict) -> str:
    try:
        return template.render(**context)
    except jinja2.UndefinedError as exc:
        raise CoverTemplateError(
            f"the cover letter template {name} uses a value format does not "
            f"give ({exc.message}): use only {', '.join(sorted(context))}") from None
    except jinja2.TemplateError as exc:
        raise CoverTemplateError(f"the cover letter template {name} failed: "
                                 f"{exc}") from None


def render_named(name: str, context: dict) -> str:
    try:
        template = environment().get_template(name)
    except jinja2.TemplateError as exc:
        raise CoverTemplateError(f"the template {name} cannot be loaded: {exc}") from None
    return _render(template, name, context)


def render_file(path: Path, context: dict) -> str:
    try:
        source = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise CoverTemplateError(f"cannot read the cover letter template {path} "
                                 f"({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise CoverTemplateError(f"the cover letter template {path} is not UTF-8 "
                                 f"text (byte {exc.object[exc.start]:#04x} at "
                                 f"offset {exc.start}): save it as UTF-8") from None
    try:
        template = environment().from_string(source)
    except jinja2.TemplateError as exc:
        raise CoverTemplateError(f"the cover letter template {path} cannot be "
                                 f"loaded: {exc}") from None
    return _render(template, str(path), context)


LIST_ITEM = re.compile(r"^([-*]|\d+[.)]) ")


def wrap_text(text: str, width: int = WIDTH) -> str:
    """Wrap a cover letter's paragraphs to *width* columns.

    Like prose.wrap_message for commit messages, except that the indented
    lines below a list item continue it (prose would keep them verbatim,
    leaving a short line wherever a template value made the item longer).
    Tag lines and other indented lines stay as they are.
    """
    out: list[str] = []
    for paragraph in re.split(r"\n[ \t]*\n", text.strip("\n")):
        items: list[tuple[str, list[str]]] = []
        for line in paragraph.split("\n"):
            indented = line.startswith((" ", "\t"))
            if LIST_ITEM.match(line):
                items.append(("item", [line]))
            elif indented and items and items[-1][0] == "item":
                items[-1][1].append(line)
            elif indented or TAG.match(line):
                items.append(("verbatim", [line]))
            elif items and items[-1][0] == "prose":
                items[-1][1].append(line)
            else:
                items.append(("prose", [line]))
        for kind, lines in items:
            if kind == "verbatim" or (kind == "item" and "://" in lines[0]):
                # A link is never broken off its item (a mail client could
                # no longer follow it).
                out.extend(line.rstrip() for line in lines)
            else:
                out.extend(wrap_paragraph(lines, width))
        out.append("")
    return "\n".join(out).strip("\n")


def split_rendered(rendered: str, name: str) -> tuple[str, str]:
    subject, _, text = rendered.strip("\n").partition("\n")
    subject = subject.strip()
    if not subject:
        raise CoverTemplateError(f"the cover letter template {name} gives no "
                                 "subject (its first line is empty)")
    return subject, wrap_text(text)


def from_template(name: str | Path, context: dict, *, user_file: bool,
                  source: str) -> CoverText:
    rendered = render_file(Path(name), context) if user_file \
        else render_named(str(name), context)
    subject, text = split_rendered(rendered, str(name))
    return CoverText(subject, text, "", source)


def _paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n[ \t]*\n", text.strip("\n")) if p.strip()]


def from_previous(mail: OutgoingMail, version: int) -> CoverText:
    """The text of an earlier cover letter, minus what format remakes."""
    lines = mail.body.split("\n")
    end = len(lines)
    for index, line in enumerate(lines):
        if SHORTLOG_HEAD.match(line) and index + 1 < len(lines) \
                and lines[index + 1].startswith("  "):
            end = index
            break
    kept, changelog = [], []
    for paragraph in _paragraphs("\n".join(lines[:end])):
        if CHANGES_HEAD.match(paragraph):
            changelog.append(paragraph)
        elif not paragraph.startswith(BASE_NOTE_HEAD):
            kept.append(paragraph)
    return CoverText(mail.subject, "\n\n".join(kept), "\n\n".join(changelog),
                     f"v{version}'s cover letter")


def changelog_of_patch(mail: OutgoingMail) -> str:
    """"Changes in vK:" blocks below the `---` of a single patch."""
    notes = mail.body.partition("\n---\n")[2].split("\ndiff --git ")[0]
    return "\n\n".join(p for p in _paragraphs(notes) if CHANGES_HEAD.match(p))


def changes_block(version: int, previous: VersionRecord,
                  changes: tuple[PatchChange, ...], old_base: str,
                  new_base: str, count: int) -> str:
    context = {
        "version": version,
        "previous": {"version": previous.version,
                     "message_id": previous.message_id,
                     "count": len(previous.commits)},
        "changes": [c.to_dict() for c in changes if c.kind != "same"],
        "rebased": old_base != new_base,
        "old_base": old_base[:12],
        "new_base": new_base[:12],
        "count": count,
        "editme": EDITME,
    }
    block = wrap_text(render_named(CHANGES_TEMPLATE, context))
    if not CHANGES_HEAD.match(block):
        raise CoverTemplateError(f"{CHANGES_TEMPLATE} must start with "
                                 f"\"Changes in v{version}:\"")
    return block


def changes_of(mail: OutgoingMail, version: int) -> str | None:
    """The "Changes in v<version>:" list of a letter (or of a single patch,
    below its `---`), as the author left it; None if it has none."""
    head = f"Changes in v{version}:"
    return next((p for p in _paragraphs(mail.body) if p.startswith(head)), None)


def base_note(base_version: str) -> str:
    note = wrap_text(render_named(BASE_NOTE_TEMPLATE,
                                  {"base_version": base_version}))
    if not note.startswith(BASE_NOTE_HEAD):
        raise CoverTemplateError(f"{BASE_NOTE_TEMPLATE} must start with "
                                 f"\"{BASE_NOTE_HEAD}\"")
    return note


def compose(text: str, *blocks: str) -> str:
    """The cover letter's body: the text, then each non-empty block."""
    parts = [text.strip("\n")] + [b.strip("\n") for b in blocks if b and b.strip()]
    return "\n\n".join(p for p in parts if p) + "\n"


# --- what the generic template is given ---------------------------------

def summary_paragraph(body: str) -> str:
    """The first paragraph of a commit body that is prose, not tags."""
    for paragraph in _paragraphs(body):
        first = paragraph.lstrip().split("\n", 1)[0]
        if re.match(r"^[A-Za-z-]+: ", first) and all(
                re.match(r"^[A-Za-z-]+: ", l) for l in paragraph.split("\n")):
            continue
        if paragraph.startswith(GENERATED_BY_PREFIX):
            continue
        return " ".join(paragraph.split())
    return ""


def subsystem_prefix(subjects: list[str]) -> str | None:
    """"mm" for "mm/migrate: x" and "mm: vmscan: y"; None if they differ."""
    heads = []
    for subject in subjects:
        if ": " not in subject:
            return None
        heads.append(re.split(r"[:/ ]", subject, maxsplit=1)[0])
    return heads[0] if heads and all(h == heads[0] for h in heads) else None
