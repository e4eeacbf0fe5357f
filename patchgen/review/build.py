"""Bisectability: build the tree after each patch and compare warnings.

Two builders, chosen by what the tree is:

  Kbuild   a real kernel tree (Kconfig, scripts/Makefile.build): a config
           in a separate O= folder kept in the cache, `make <dir>/` for
           each folder the series touches a .c file in.  The first build
           of a run compiles those folders in full (their .c files are
           touched, so every warning is seen once); after each patch make
           recompiles only what the patch changed.
  gcc      a fixture tree (no Kbuild): `gcc -fsyntax-only` with the fixture
           flags on each .c file of those folders; a file that does not
           build at the base in one setting is left out in that setting.

The config is the one of the rule that made the series (Rule.check_build,
found through the commits' provenance line): tinyconfig plus the rule's
fragment, and with the rule's toggle symbol a second build with it off
(-D<toggle> and without for gcc).  A series no installed rule with
check_build made gets the generic build: defconfig plus the CONFIG_
symbols that the touched files' Makefile lines (and their folders' lines
in the parent Makefiles) name, so that each touched file is compiled if
Kconfig allows it; what is still not compiled is a note.

Warnings are compared by identity, file:line: message, never by count (a
warning that replaces another is new).  Line numbers move when a patch
adds lines above a warning, so the warnings known before a patch are
carried through that patch's diff (unidiff gives each line's old and new
number) before comparing.
"""

import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterable

import unidiff

from patchgen.engine.registry import all_rules
from patchgen.engine.rule import CheckBuild
from patchgen.infra.errors import CheckBuildSetupFailed
from patchgen.infra.provenance import GENERATED_BY
from patchgen.kernel.kconfig import (BASE_CONFIG, C_LOCALE, ConfigTargetFailed,
                                     add_fragment, build_dir_for, configure,
                                     missing_symbols, read_fragment)
from patchgen.infra.runner import describe, run
from patchgen.kernel.toolchain import make_variables, why

DIAGNOSTIC = re.compile(r"^(?P<path>[^\s:][^:]*):(?P<line>\d+):(?:\d+:)? "
                        r"(?P<level>warning|error|fatal error): (?P<text>.*)$")
KBUILD_COMPILE = re.compile(r"^  CC(?: \[M\])?\s+(\S+)\.o$")
MAKE_ERROR = re.compile(r"^make(?:\[\d+\])?: \*\*\* ")

# The fixture trees' bisectability build (their headers are written for it).
GCC_FLAGS = ["-fsyntax-only", "-nostdinc", "-std=gnu89", "-Wall", "-Werror",
             "-Wdeclaration-after-statement",
             "-Werror=implicit-function-declaration", "-D__KERNEL__", "-Iinclude"]
# The generic build of a series no rule gives settings for.
GENERIC_BASE = "defconfig"
QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'"})


@dataclass(frozen=True, order=True)
class Diagnostic:
    path: str
    line: int
    level: str          # "warning", "error" or "fatal error"
    text: str

    def identity(self) -> str:
        return f"{self.path}:{self.line}: {self.level}: {self.text}"


def parse_diagnostics(output: str, roots: Iterable[Path]) -> list[Diagnostic]:
    """gcc's `file:line:col: warning: text` lines, paths made relative to
    the kernel tree (Kbuild prints absolute paths in an O= build)."""
    prefixes = [str(r).rstrip("/") + "/" for r in roots]
    found = []
    for line in output.splitlines():
        match = DIAGNOSTIC.match(line.strip())
        if not match:
            continue
        path = match.group("path")
        for prefix in prefixes:
            if path.startswith(prefix):
                path = path[len(prefix):]
                break
        found.append(Diagnostic(os.path.normpath(path).removeprefix("./"),
                                int(match.group("line")), match.group("level"),
                                match.group("text").strip().translate(QUOTES)))
    return found


# --- carrying line numbers through a patch ---------------------------------------

class LineMap:
    """Where a line of the tree before a patch is after it (or None)."""

    def __init__(self, patch_set: unidiff.PatchSet):
        self.files = {}
        for patched in patch_set:
            source = patched.source_file.removeprefix("a/")
            target = patched.target_file.removeprefix("b/")
            self.files[source] = (None if patched.is_removed_file else target, patched)

    def touched(self) -> set[str]:
        paths = set()
        for source, (target, _) in self.files.items():
            paths.add(source)
            if target:
                paths.add(target)
        return paths - {"/dev/null", "dev/null"}

    def map(self, path: str, line: int) -> tuple[str, int] | None:
        if path not in self.files:
            return path, line
        target, patched = self.files[path]
        if target is None:
            return None
        shift = 0
        for hunk in patched:
            start, length = hunk.source_start, hunk.source_length
            if length == 0:
                # A pure insertion after line `start`.
                if line <= start:
                    break
                shift += hunk.target_length
                continue
            if line < start:
                break
            if line < start + length:
                for diff_line in hunk:
                    if diff_line.source_line_no == line:
                        # A context line has both numbers.
                        return (target, diff_line.target_line_no) if diff_line.is_context \
                            else None  # type: ignore[return-value]
                return None
            shift += hunk.target_length - hunk.source_length
        return target, line + shift


def carry(known: dict[str, set[Diagnostic]], line_map: LineMap
          ) -> tuple[dict[str, set[Diagnostic]], list[Diagnostic]]:
    """The known warnings in the new line numbers, and those whose line the
    patch removed or rewrote."""
    moved: dict[str, set[Diagnostic]] = {}
    dropped: list[Diagnostic] = []
    for path, diagnostics in known.items():
        for diagnostic in diagnostics:
            where = line_map.map(diagnostic.path, diagnostic.line)
            if where is None:
                dropped.append(diagnostic)
                continue
            moved.setdefault(where[0], set()).add(
                Diagnostic(where[0], where[1], diagnostic.level, diagnostic.text))
    return moved, sorted(dropped)


# --- one build --------------------------------------------------------------------

@dataclass(frozen=True)
class RawBuild:
    ok: bool
    output: str
    compiled: frozenset[str]          # .c files compiled in this build
    diagnostics: tuple[Diagnostic, ...]
    command: str
    seconds: float
    failure: tuple[str, ...] = ()     # what make said when no compiler error shows


@dataclass(frozen=True)
class BuildStep:
    """A build after one patch (or of the base), judged."""

    ok: bool
    compiled: tuple[str, ...]
    new: tuple[Diagnostic, ...]        # warnings not there before
    gone: tuple[Diagnostic, ...]       # warnings the patch removed
    errors: tuple[str, ...]            # first errors, when not ok
    command: str
    seconds: float


class GccSyntaxBuilder:
    """`gcc -fsyntax-only` per .c file: the fixture trees' build."""

    name = "gcc -fsyntax-only"

    def __init__(self, root: Path, folders: Iterable[str],
                 toggle: str | None = None):
        self.root = root
        self.folders = sorted(set(folders))
        # Without -D, and with -D<toggle> when the rule gives one.
        self.settings: tuple[tuple[str, ...], ...] = \
            ((),) + (((f"-D{toggle}",),) if toggle else ())
        self.excluded: set[tuple[str, tuple]] = set()
        self.notes: list[str] = []

    def sources(self) -> list[str]:
        found = []
        for folder in self.folders:
            directory = self.root / folder
            if directory.is_dir():
                found += [f"{folder}/{p.name}" if folder else p.name
                          for p in sorted(directory.glob("*.c"))]
        return found

    def build(self, changed: set[str] | None) -> RawBuild:
        """Compile the files in *changed* (all when None or a header changed)."""
        start = time.monotonic()
        sources = self.sources()
        if changed is not None and all(p.endswith(".c") for p in changed):
            sources = [s for s in sources if s in changed]
        outputs, diagnostics, ok, commands = [], [], True, []
        for source in sources:
            for setting in self.settings:
                if (source, setting) in self.excluded:
                    continue
                argv = ["gcc", *GCC_FLAGS, *setting, source]
                result = run(argv, cwd=self.root, env=C_LOCALE, check=False, timeout=300)
                commands.append(describe(argv, self.root))
                text = result.stdout + result.stderr
                outputs.append(text)
                found = parse_diagnostics(text, [self.root])
                diagnostics += found
                if result.returncode != 0:
                    if changed is None:
                        # The base: this file does not build in this setting.
                        self.excluded.add((source, setting))
                        self.notes.append(f"{source} with {' '.join(setting) or 'no -D'} "
                                          "does not build at the base either: left out")
                        diagnostics = [d for d in diagnostics if d not in found]
                    else:
                        ok = False
        return RawBuild(ok, "\n".join(outputs), frozenset(sources),
                        tuple(diagnostics), commands[0] if commands else "",
                        time.monotonic() - start)


class KbuildBuilder:
    """`make O=<folder> <dir>/` in a real kernel tree."""

    name = "make"

    def __init__(self, root: Path, build_dir: Path, folders: Iterable[str],
                 fragment: str, jobs: int | None = None, base: str = BASE_CONFIG):
        self.root = root
        self.build_dir = build_dir
        self.folders = sorted(set(folders))
        self.fragment = fragment
        self.base = base
        self.jobs = jobs or os.cpu_count() or 2
        self.notes: list[str] = []

    def _make(self, *targets, timeout=3600):
        argv = ["make", "-C", self.root, f"O={self.build_dir}", f"-j{self.jobs}",
                *make_variables(self.root), *targets]
        return run(argv, env=C_LOCALE, check=False, timeout=timeout), describe(argv)

    def configure(self) -> None:
        """Configure the O= folder once per fragment; a symbol Kconfig
        dropped becomes a note (the build goes on without it)."""
        marker = self.build_dir / "patchgen-fragment"
        config = self.build_dir / ".config"
        # tinyconfig's marker is the fragment alone, as it always was.
        stamp = (self.fragment if self.base == BASE_CONFIG
                 else f"# base: {self.base}\n{self.fragment}")
        if config.exists() and marker.exists() and marker.read_text() == stamp:
            # Configured by an earlier run: its dropped symbols still count.
            missing = missing_symbols(config.read_text(errors="replace"), self.fragment)
        else:
            self.build_dir.mkdir(parents=True, exist_ok=True)
            marker.unlink(missing_ok=True)
            try:
                missing = configure(self.root, self.build_dir, self.fragment,
                                    base=self.base)
            except ConfigTargetFailed as failure:
                result = failure.result
                raise CheckBuildSetupFailed(
                    f"{failure.command} failed: "
                    f"{(result.stderr or result.stdout).strip()[-300:]}") from None
        if missing:
            self.notes.append("not set after olddefconfig (missing dependencies?): "
                              + ", ".join(missing))
        added = why(make_variables(self.root))
        if added:
            self.notes.append(added.removeprefix("# patchgen: ").strip())
        marker.write_text(stamp)

    def build(self, changed: set[str] | None) -> RawBuild:
        start = time.monotonic()
        if changed is None:
            # The first build of a run compiles the folders in full, so that
            # every warning they have is seen once.
            now = time.time()
            for folder in self.folders:
                for source in (self.root / folder).glob("*.c"):
                    os.utime(source, (now, now))
        targets = [f"{folder}/" for folder in self.folders]
        result, command = self._make(*targets)
        output = result.stdout + "\n" + result.stderr
        compiled = frozenset(m.group(1) + ".c" for m in map(KBUILD_COMPILE.match,
                                                            output.splitlines()) if m)
        diagnostics = parse_diagnostics(output, [self.root, self.build_dir])
        failure = tuple(line.strip() for line in output.splitlines()
                        if MAKE_ERROR.match(line.strip()))[:3]
        return RawBuild(result.returncode == 0, output, compiled, tuple(diagnostics),
                        command, time.monotonic() - start, failure)

    def not_built(self, sources: Iterable[str]) -> list[str]:
        """Touched .c files the configuration does not compile."""
        return sorted(s for s in sources if s.endswith(".c") and
                      not (self.build_dir / (s[:-2] + ".o")).exists())


def off_tag(symbol: str) -> str:
    """What a diagnostic of the second build is tagged with."""
    return f" [with {symbol} off]"


def symbol_off(fragment: str, symbol: str,
               dependents: Iterable[str] = ()) -> str | None:
    """*fragment* with *symbol* turned off (and the *dependents* that need
    it dropped), or None when the fragment does not turn it on: a series
    that adds a `#ifndef` stub for the symbol must compile that way too."""
    on = re.compile(rf"^{re.escape(symbol)}=y[ \t]*$", re.M)
    if not on.search(fragment):
        return None
    for dependent in dependents:
        fragment = re.sub(rf"^{re.escape(dependent)}=[ym][ \t]*\n?", "",
                          fragment, flags=re.M)
    return on.sub(f"# {symbol} is not set", fragment)


class KbuildBothSettings:
    """Two KbuildBuilders run as one: the fragment as given, and the same
    with the rule's toggle symbol off, each in its own O= folder.  What only
    the second prints is tagged, so a warning or an error of the stub
    side is named as such; one both print counts once."""

    name = "make"

    def __init__(self, on: KbuildBuilder, off: KbuildBuilder, tag: str):
        self.on, self.off, self.tag = on, off, tag
        self.root, self.build_dir, self.folders = on.root, on.build_dir, on.folders
        self.notes = on.notes

    def configure(self) -> None:
        self.on.configure()
        self.off.configure()
        self.notes.extend(note + self.tag for note in self.off.notes
                          if note not in self.on.notes)

    def build(self, changed: set[str] | None) -> RawBuild:
        first, second = self.on.build(changed), self.off.build(changed)
        seen = set(first.diagnostics)
        extra = tuple(replace(d, text=d.text + self.tag)
                      for d in second.diagnostics if d not in seen)
        failure = first.failure or tuple(f + self.tag for f in second.failure)
        return RawBuild(first.ok and second.ok,
                        first.output + "\n" + second.output,
                        first.compiled | second.compiled,
                        first.diagnostics + extra, first.command,
                        first.seconds + second.seconds, failure)

    def not_built(self, sources: Iterable[str]) -> list[str]:
        return self.on.not_built(sources)


class Bisector:
    """Runs a builder at the base and after each patch; keeps the warnings
    known so far, in the current commit's line numbers."""

    def __init__(self, builder):
        self.builder = builder
        self.known: dict[str, set[Diagnostic]] = {}
        self.base_ok = True

    def _judge(self, raw: RawBuild, touched: set[str]) -> BuildStep:
        printed: dict[str, set[Diagnostic]] = {}
        for diagnostic in raw.diagnostics:
            printed.setdefault(diagnostic.path, set()).add(diagnostic)
        warnings = {d for d in raw.diagnostics if d.level == "warning"}
        known_now = set().union(*self.known.values()) if self.known else set()
        new = sorted(d for d in warnings if d not in known_now)
        errors = sorted({d for d in raw.diagnostics if d.level != "warning"})
        gone = []
        # What this build says replaces what was known about the files it
        # compiled and the files the patch changed; other files' warnings
        # (headers included by what was compiled) only add up.
        refreshed = set(raw.compiled) | touched
        for path in refreshed:
            now = {d for d in printed.get(path, set()) if d.level == "warning"}
            gone += sorted(self.known.get(path, set()) - now)
            if raw.ok:
                self.known[path] = now
        if raw.ok:
            for path, diagnostics in printed.items():
                if path not in refreshed:
                    self.known.setdefault(path, set()).update(
                        d for d in diagnostics if d.level == "warning")
        error_lines = [d.identity() for d in errors] or list(raw.failure)
        return BuildStep(raw.ok, tuple(sorted(raw.compiled)), tuple(new),
                         tuple(gone) if raw.ok else (), tuple(error_lines[:10]),
                         raw.command, raw.seconds)

    def base(self) -> BuildStep:
        raw = self.builder.build(None)
        self.base_ok = raw.ok
        step = self._judge(raw, set())
        # At the base nothing is new: it is what patches are compared with.
        return BuildStep(step.ok, step.compiled, (), (), step.errors, step.command,
                         step.seconds)

    def after(self, patch_set: unidiff.PatchSet) -> BuildStep:
        line_map = LineMap(patch_set)
        self.known, dropped = carry(self.known, line_map)
        touched = line_map.touched()
        step = self._judge(self.builder.build(touched), touched)
        if not step.ok:
            return step
        # A warning on a line the patch rewrote is the same warning if the
        # same file still has it; otherwise the patch removed it.
        new = list(step.new)
        gone = list(step.gone)
        for old in dropped:
            same = next((d for d in new if (d.path, d.level, d.text) ==
                         (old.path, old.level, old.text)), None)
            if same is not None:
                new.remove(same)
            else:
                gone.append(old)
        return replace(step, new=tuple(new), gone=tuple(sorted(gone)))


def is_kbuild_tree(root: Path) -> bool:
    return (root / "Kconfig").is_file() and (root / "scripts" / "Makefile.build").is_file()


def folders_of(paths: Iterable[str]) -> list[str]:
    """The folders of the .c files among *paths*."""
    return sorted({os.path.dirname(p) for p in paths if p.endswith(".c")})


# --- which settings ---------------------------------------------------------------

def series_rules(messages: Iterable[str]) -> list[str]:
    """The rule ids the commits' provenance lines name, in order."""
    found: list[str] = []
    for message in messages:
        for match in GENERATED_BY.finditer(message or ""):
            if match.group(2) not in found:
                found.append(match.group(2))
    return found


def check_build_for(messages: Iterable[str]) -> tuple[CheckBuild | None, str | None]:
    """The CheckBuild of the rule that made the series (its commits'
    provenance lines), and a note when that leaves a choice or none;
    (None, note) for the generic build."""
    named = series_rules(messages)
    if not named:
        return None, None
    rules = all_rules()
    unknown = [r for r in named if r not in rules]
    with_settings = [r for r in named if r in rules and rules[r].check_build]
    notes = []
    if unknown:
        notes.append(f"the series names rule{'s' if len(unknown) > 1 else ''} "
                     f"{', '.join(unknown)}, not installed here")
    if not with_settings:
        # A rule without settings is the generic build on purpose.
        return None, ("; ".join(notes) + ": the generic build (defconfig)"
                      if notes else None)
    if len(with_settings) > 1:
        notes.append(f"the series names rules {', '.join(with_settings)}: "
                     f"built with {with_settings[0]}'s settings")
    return rules[with_settings[0]].check_build, "; ".join(notes) or None


_MAKE_LINE = re.compile(r"^[ \t]*([A-Za-z0-9_.-]+?)-(?:\$\((CONFIG_[A-Za-z0-9_]+)\)|y|objs)"
                        r"[ \t]*[:+]?=(.*)$")


def _makefile_lines(folder: Path) -> list[tuple[str, str | None, list[str]]]:
    """(name, CONFIG_ symbol or None, objects) of each `name-$(CONFIG_X)
    += a.o b/` (or -y, -objs) line of a folder's Makefile and Kbuild,
    continuation lines joined."""
    lines = []
    for name in ("Kbuild", "Makefile"):
        path = folder / name
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.replace("\\\n", " ").splitlines():
            match = _MAKE_LINE.match(line)
            if match:
                lines.append((match.group(1), match.group(2), match.group(3).split()))
    return lines


def makefile_symbols(root: Path, paths: Iterable[str], limit: int = 8) -> list[str]:
    """The CONFIG_ symbols that make Kbuild compile each .c of *paths*:
    its Makefile line (through a composite object) and its folder's lines
    in the Makefiles above it, up to *limit* levels."""
    found: list[str] = []

    def add(symbol):
        if symbol and symbol not in found:
            found.append(symbol)

    for path in sorted(p for p in paths if p.endswith(".c")):
        folder, name = os.path.split(path)
        wanted = [name[:-2] + ".o"]
        for _ in range(limit):
            lines = _makefile_lines(root / folder)
            seen: set[str] = set()
            while wanted:
                target = wanted.pop()
                if target in seen:
                    continue
                seen.add(target)
                for owner, symbol, objects in lines:
                    if target in objects:
                        add(symbol)
                        if owner not in ("obj", "lib", "core", "subdir"):
                            wanted.append(owner + ".o")   # a composite object
            if not folder:
                break
            parent, base = os.path.split(folder)
            folder, wanted = parent, [base + "/"]
    return found


def generic_fragment(root: Path, paths: Iterable[str]) -> str:
    """The generic build's fragment: the symbols of makefile_symbols."""
    symbols = makefile_symbols(root, paths)
    lines = ["# patchgen check --build: the generic build (defconfig and",
             "# the symbols the touched files' Makefile lines name)",
             # A new warning is a finding against its patch, not a build
             # failure: defconfig may turn CONFIG_WERROR on.
             "# CONFIG_WERROR is not set"]
    return "\n".join(lines + [f"{s}=y" for s in symbols]) + "\n"


def kbuild_builder(root: Path, workdir: Path, folders: Iterable[str],
                   paths: Iterable[str], settings: CheckBuild | None,
                   extra: Path | None = None) -> "KbuildBuilder | KbuildBothSettings":
    """The (unconfigured) builder of a kernel tree for *settings* (a
    CheckBuild, or None for the generic build); *extra* is --config FILE,
    read after the fragment.  A CheckBuild without a fragment keeps the
    generic config, and its toggle."""
    folders = sorted(set(folders))
    if settings is not None and settings.fragment is not None:
        base, fragment = BASE_CONFIG, read_fragment(settings.fragment, extra)
    else:
        base = GENERIC_BASE
        fragment = add_fragment(generic_fragment(root, paths), extra)
    builder = KbuildBuilder(root, build_dir_for(workdir, root, fragment, base),
                            folders, fragment, base=base)
    toggle = settings.toggle if settings is not None else None
    off = (symbol_off(fragment, toggle, settings.toggle_dependents)
           if settings is not None and toggle else None)
    if toggle is None or off is None:
        return builder
    return KbuildBothSettings(builder, KbuildBuilder(
        root, build_dir_for(workdir, root, off, base), folders, off, base=base),
        off_tag(toggle))
