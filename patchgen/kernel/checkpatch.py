"""The kernel tree's own scripts/checkpatch.pl, run on a patch file.

checkpatch.pl ships with every kernel tree and runs offline; `--no-tree`
lets it check any patch file whatever the tree it is run from.  Its
findings are parsed into typed values so callers can count and show them.
"""

import re
from dataclasses import dataclass
from pathlib import Path

from patchgen.infra.errors import CommandFailed, ToolMissing
from patchgen.infra.runner import run

# "WARNING:LONG_LINE: text" with --show-types, "WARNING: text" without.
HEADER = re.compile(r"^(ERROR|WARNING|CHECK):(?:([A-Z0-9_]+):)? ?(.*)$")
TOTAL = re.compile(r"^total: (\d+) errors, (\d+) warnings, (?:(\d+) checks, )?")
WHERE = re.compile(r"^#\d+: FILE: (\S+):(\d+):")


@dataclass(frozen=True)
class CheckpatchMessage:
    level: str            # "ERROR", "WARNING" or "CHECK"
    type: str | None      # e.g. "LONG_LINE" (with --show-types)
    text: str
    file: str | None
    line: int | None


@dataclass(frozen=True)
class CheckpatchResult:
    patch: str
    messages: tuple[CheckpatchMessage, ...]
    command: str

    def count(self, level: str) -> int:
        return sum(1 for m in self.messages if m.level == level)

    @property
    def errors(self) -> int:
        return self.count("ERROR")

    @property
    def warnings(self) -> int:
        return self.count("WARNING")

    @property
    def checks(self) -> int:
        return self.count("CHECK")

    def summary(self) -> str:
        return f"{self.errors} errors, {self.warnings} warnings, {self.checks} checks"


def checkpatch_script(tree_root: str | Path) -> Path | None:
    script = Path(tree_root) / "scripts" / "checkpatch.pl"
    return script if script.is_file() else None


def parse_output(patch: str, output: str, command: str) -> CheckpatchResult:
    """Parse checkpatch's report; its own `total:` line must agree."""
    messages = []
    lines = output.splitlines()
    for index, line in enumerate(lines):
        match = HEADER.match(line)
        if not match:
            continue
        file = where = None
        if index + 1 < len(lines):
            location = WHERE.match(lines[index + 1])
            if location:
                file, where = location.group(1), int(location.group(2))
        messages.append(CheckpatchMessage(match.group(1), match.group(2),
                                          match.group(3), file, where))
    result = CheckpatchResult(patch, tuple(messages), command)
    totals = [found for line in lines if (found := TOTAL.match(line))]
    if not totals:
        said = (output.strip().splitlines() or ["no output"])[0][:160]
        raise CommandFailed(f"{command.split()[1] if ' ' in command else command} "
                            f"printed no `total:` line ({said})")
    errors, warnings = int(totals[-1].group(1)), int(totals[-1].group(2))
    if (errors, warnings) != (result.errors, result.warnings):
        raise CommandFailed(f"could not read all of checkpatch's findings for "
                            f"{patch} ({errors} errors, {warnings} warnings "
                            f"reported, {result.summary()} parsed)")
    return result


def run_checkpatch(tree_root: str | Path, patch_file: str | Path, *,
                   strict: bool = False,
                   max_line_length: int | None = None,
                   script: str | Path | None = None,
                   cwd: str | Path | None = None) -> CheckpatchResult:
    """Run the tree's checkpatch.pl on *patch_file*.

    *max_line_length* overrides the tree's default (100 since v5.7; 80
    for code meant for older trees).  *script* runs another tree's
    checkpatch.pl (for a tree that ships none).  checkpatch.pl looks commit
    ids up with git in its working folder: *cwd* should be a checkout of
    the tree the patch is for, never some unrelated repository.
    """
    if script is None:
        script = checkpatch_script(tree_root)
        if script is None:
            raise ToolMissing(f"{tree_root} has no scripts/checkpatch.pl: use a "
                              "kernel tree that ships it")
    argv = ["perl", str(script), "--no-tree", "--show-types", "--no-color"]
    if max_line_length:
        argv.append(f"--max-line-length={max_line_length}")
    if strict:
        argv.append("--strict")
    argv.append(str(patch_file))
    result = run(argv, cwd=cwd, check=False, timeout=120)
    return parse_output(str(patch_file), result.stdout + result.stderr,
                        result.command)
