"""Who a series goes to: the tree's get_maintainer.pl, else MAINTAINERS.

In order of preference:

1. the tree's own scripts/get_maintainer.pl with --nogit --nogit-fallback
   --norolestats (it reads MAINTAINERS, not git history), run twice as b4
   does: maintainers (--nor --nol) become To:, reviewers and lists (--nom)
   Cc:;
2. the tree's MAINTAINERS file, parsed here: the sections whose F:/N:
   patterns match a file the series touches (X: excludes), M: to To:,
   R: and L: to Cc:; the catch-all section's maintainer (THE REST) is left
   out, as get_maintainer.pl leaves him out.  K: (keywords matched in the
   patch's text) is not used, so get_maintainer.pl can name a few more;
3. none: the result says so, and why.

Each patch gets its own (patch_recipients): the above on that patch's
files, plus the people its trailers name (Cc:, Suggested-by:,
Reported-by:, ...; never the sender), plus the user's git config
format.to/format.cc and sendemail.to/sendemail.cc; the cover letter gets
the union (union()).  A mail that would have nobody in To: is sent To:
its mailing lists instead (lists_as_to()).  format writes them as To:/Cc: headers, so that a
plain `git send-email DIR` needs no flags.

Nobody is added on a rule's behalf: Cc: stable@vger.kernel.org belongs in
a patch's tag block, where a rule that targets stable puts it (git
send-email then copies it).
"""

import re
from dataclasses import dataclass
from pathlib import Path

from patchgen.infra.runner import run

GET_MAINTAINER = "scripts/get_maintainer.pl"
BASE_OPTIONS = ("--nogit", "--nogit-fallback", "--norolestats")
CATCH_ALL = "THE REST"
ADDRESS = re.compile(r"[^\s<>()]+@[^\s<>()]+")


@dataclass(frozen=True)
class Recipients:
    to: tuple[str, ...]
    cc: tuple[str, ...]
    source: str                 # where they came from, for the user
    commands: tuple[str, ...] = ()  # what was run, to rerun by hand

    @property
    def empty(self) -> bool:
        return not self.to and not self.cc

    def without(self, addresses) -> "Recipients":
        """Without *addresses* (the sender: nobody mails himself)."""
        drop = {_address(a) for a in addresses}
        return Recipients(tuple(a for a in self.to if _address(a) not in drop),
                          tuple(a for a in self.cc if _address(a) not in drop),
                          self.source, self.commands)

    def lists_as_to(self) -> "Recipients":
        """With nobody in To: (a section with no M:, as MEMORY MANAGEMENT
        in v4.14), the mailing lists (the bare addresses of Cc:) become
        To:, so that no mail goes out with an empty To: header."""
        if self.to:
            return self
        lists = tuple(a for a in self.cc if "<" not in a)
        return Recipients(lists, tuple(a for a in self.cc if a not in lists),
                          self.source, self.commands)

    def to_dict(self) -> dict:
        return {"to": list(self.to), "cc": list(self.cc)}

    def plus(self, to=(), cc=()) -> "Recipients":
        """With the user's own --to/--cc added (no address twice)."""
        new_to = _unique([*self.to, *to])
        seen = {_address(a) for a in new_to}
        new_cc = [a for a in _unique([*self.cc, *cc]) if _address(a) not in seen]
        return Recipients(tuple(new_to), tuple(new_cc), self.source, self.commands)


def _person(entry: str) -> str:
    """"Name <addr>" without what follows it ("(SCHED_DEADLINE)" roles)."""
    return entry[:entry.index(">") + 1] if ">" in entry else entry.strip()


def _address(entry: str) -> str:
    found = ADDRESS.search(entry)
    return (found.group(0) if found else entry).lower()


def _unique(entries) -> list[str]:
    seen, out = set(), []
    for entry in entries:
        key = _address(entry)
        if entry and key not in seen:
            seen.add(key)
            out.append(entry)
    return out


def from_get_maintainer(tree_root: Path, patch_files: list[Path]) -> Recipients:
    script = Path(tree_root) / GET_MAINTAINER
    files = [str(Path(p).resolve()) for p in patch_files]
    to_argv = ["perl", script, *BASE_OPTIONS, "--nor", "--nol", *files]
    cc_argv = ["perl", script, *BASE_OPTIONS, "--nom", *files]
    to_run = run(to_argv, cwd=tree_root, timeout=300)
    cc_run = run(cc_argv, cwd=tree_root, timeout=300)
    to = _unique(line.strip() for line in to_run.stdout.splitlines())
    to_keys = {_address(a) for a in to}
    cc = [a for a in _unique(line.strip() for line in cc_run.stdout.splitlines())
          if _address(a) not in to_keys]
    return Recipients(tuple(to), tuple(cc),
                      f"{script} --nogit --nogit-fallback --norolestats",
                      (f"cd {tree_root} && {to_run.command}",
                       f"cd {tree_root} && {cc_run.command}"))


# --- MAINTAINERS, parsed --------------------------------------------------

@dataclass(frozen=True)
class Section:
    title: str
    maintainers: tuple[str, ...]
    reviewers: tuple[str, ...]
    lists: tuple[str, ...]
    files: tuple[str, ...]        # F: patterns
    excludes: tuple[str, ...]     # X: patterns
    regexes: tuple[str, ...]      # N: regular expressions on file names


def parse_maintainers(text: str) -> list[Section]:
    """The sections of a MAINTAINERS file (its preamble has no tag lines)."""
    sections: list[Section] = []
    title = None
    fields: dict[str, list[str]] = {}

    def flush():
        if title is not None and fields:
            sections.append(Section(
                title, tuple(fields.get("M", ())), tuple(fields.get("R", ())),
                tuple(fields.get("L", ())), tuple(fields.get("F", ())),
                tuple(fields.get("X", ())), tuple(fields.get("N", ()))))

    for line in text.splitlines():
        tag = re.match(r"^([A-Z]):\s*(.*?)\s*$", line)
        if tag:
            if title is not None:
                fields.setdefault(tag.group(1), []).append(tag.group(2))
        elif line.strip():
            if fields or title is None:
                flush()
                fields = {}
            title = line.strip()
        else:
            flush()
            title, fields = None, {}
    flush()
    return sections


def pattern_matches(pattern: str, path: str, is_dir=lambda p: False) -> bool:
    """MAINTAINERS F:/X: semantics.

    A pattern ending in "/" (or naming a directory) covers everything
    below it; otherwise "*" and "?" are wildcards and the pattern must
    reach exactly as deep as the file (drivers/net/* does not cover
    drivers/net/wireless/foo.c).
    """
    if not pattern.endswith("/") and is_dir(pattern):
        pattern += "/"
    regex = ""
    for char in pattern:
        regex += {"*": ".*", "?": "."}.get(char, re.escape(char))
    if not re.match(regex, path):
        return False
    return pattern.endswith("/") or path.count("/") == pattern.count("/")


def from_maintainers(text: str, paths: list[str], source: str,
                     is_dir=lambda p: False) -> Recipients:
    to: list[str] = []
    cc: list[str] = []
    for section in parse_maintainers(text):
        covered = False
        for path in paths:
            if any(pattern_matches(x, path, is_dir) for x in section.excludes):
                continue
            if any(pattern_matches(f, path, is_dir) for f in section.files) or \
                    any(re.search(n, path, re.X) for n in section.regexes if _valid(n)):
                covered = True
                break
        if not covered:
            continue
        if section.title != CATCH_ALL:
            to += [_person(m) for m in section.maintainers]
        cc += [_person(r) for r in section.reviewers]
        cc += [found.group(0) for entry in section.lists
               if (found := ADDRESS.search(entry))]
    to = _unique(to)
    to_keys = {_address(a) for a in to}
    cc = [a for a in _unique(cc) if _address(a) not in to_keys]
    return Recipients(tuple(to), tuple(cc), source)


def _valid(regex: str) -> bool:
    try:
        re.compile(regex, re.X)
        return True
    except re.error:
        return False


def find_recipients(tree_root: Path, patch_files: list[Path], paths: list[str],
                    maintainers_text: str | None,
                    maintainers_source: str) -> Recipients:
    """get_maintainer.pl if *tree_root* has it, else MAINTAINERS, else none."""
    root = Path(tree_root)
    if (root / GET_MAINTAINER).is_file() and (root / "MAINTAINERS").is_file():
        return from_get_maintainer(root, patch_files)
    if maintainers_text is not None:
        return from_maintainers(maintainers_text, paths,
                                f"{maintainers_source}, parsed by patchgen "
                                f"(no {GET_MAINTAINER})",
                                is_dir=lambda p: (root / p).is_dir())
    return Recipients((), (), f"none: {root} has neither {GET_MAINTAINER} "
                      "nor MAINTAINERS")


# --- per patch: trailers, the user's git config, the union ----------------

# Trailers whose people are copied, as b4 and git send-email copy them.
TRAILER = re.compile(r"^(Cc|[A-Z][A-Za-z]*(?:-[A-Za-z]+)*-by):[ \t]*(.+?)\s*$",
                     re.M)
CONFIG_KEYS = (("format.to", "to"), ("format.cc", "cc"),
               ("sendemail.to", "to"), ("sendemail.cc", "cc"))


def trailer_addresses(message: str) -> list[str]:
    """The people a commit message's trailers name ("Name <addr>"), without
    comments ("# 4.14") and without the trailers that name no address."""
    found = []
    for match in TRAILER.finditer(message):
        value = match.group(2).split("#", 1)[0].strip()
        if ADDRESS.search(value):
            found.append(_person(value))
    return _unique(found)


def config_recipients(git_top: str | Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(to, cc) from the user's format.to/cc and sendemail.to/cc (all
    values, every config level), as git format-patch and git send-email
    would add them."""
    to: list[str] = []
    cc: list[str] = []
    for key, kind in CONFIG_KEYS:
        result = run(["git", "-C", str(git_top), "config", "--get-all", key],
                     check=False)
        values = [v.strip() for v in result.stdout.splitlines() if v.strip()]
        (to if kind == "to" else cc).extend(values)
    return tuple(_unique(to)), tuple(_unique(cc))


def union(recipients: list[Recipients], source: str | None = None) -> Recipients:
    """Everyone of *recipients*: To: wins over Cc: for one address."""
    to = _unique(a for r in recipients for a in r.to)
    keys = {_address(a) for a in to}
    cc = [a for a in _unique(a for r in recipients for a in r.cc)
          if _address(a) not in keys]
    sources = source or "; ".join(_unique(r.source for r in recipients if r.source))
    commands = tuple(_unique(c for r in recipients for c in r.commands))
    return Recipients(tuple(to), tuple(cc), sources, commands)


def patch_recipients(found: Recipients, message: str, sender: str | None,
                     extra_to=(), extra_cc=()) -> Recipients:
    """One patch's: what the tree says, then its trailers' people (Cc:),
    then the user's own additions; never the sender."""
    with_trailers = found.plus((), trailer_addresses(message))
    full = with_trailers.plus(extra_to, extra_cc)
    return full.without([sender]) if sender else full
