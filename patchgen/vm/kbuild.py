"""Build a kernel for a rule's guest test: tinyconfig + the rule's fragment.

The build runs out of tree (make O=...) in a folder of the cache keyed by
the tree's path and the config fragment, so a second run in the same tree
rebuilds only what changed.  The folder must stay where it is: the output
path is part of every compile command, and a copied folder rebuilds
everything.  Steps:

1. make tinyconfig, then the fragment appended, then make olddefconfig
   (kconfig.py, as `patchgen check --build` does);
2. every CONFIG_...=y of the fragment must still be =y: a symbol Kconfig
   dropped is an error here, named, since the test needs each one;

The fragments are the rule's (Rule.verify, a VerifyRecipe: its configs by
name, each a list of fragment files);
3. make -jN bzImage, streamed: progress lines, the full log saved, and on
   failure the compiler's first error lines instead of the whole log.
"""

import fcntl
import os
import shutil
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from patchgen.engine.rule import VerifyRecipe
from patchgen.infra.cache import kernel_build_lock, workdir_for
from patchgen.infra.errors import (BadBuildConfig, BuildFailed, CacheFull,
                             CommandTimeout, ConfigSymbolMissing,
                             NotAKernelTree)
from patchgen.kernel.toolchain import make_variables, why
from patchgen.kernel.kconfig import ConfigTargetFailed, build_dir_for, configure
from patchgen.infra.runner import describe, stream
from patchgen.kernel.workspace import in_tree_build_output

# --config NAME: the recipe's config of that name; a FILE is read after
# the recipe's "default" fragments.
DEFAULT_CONFIG = "default"
BZIMAGE = Path("arch/x86/boot/bzImage")
DEFAULT_BUILD_TIMEOUT = 3600

# Kbuild's quiet output: "  CC      mm/page_alloc.o".
_KBUILD_STEP = re.compile(r"^  ([A-Z][A-Z0-9_]*(?: \[[A-Z]\])?)\s+(\S.*)$")
_COMPILER_ERROR = re.compile(r"^\S+?:\d+(?::\d+)?: (?:fatal )?error: ")
_LINKER_ERROR = re.compile(r"undefined reference to|multiple definition of|"
                           r"^\S*ld(?:\.\S+)?: .*(?:error|cannot find)")
_MAKE_ERROR = re.compile(r"^make(?:\[\d+\])?: \*\*\* ")
# kconfig's own complaints: 'drivers/gpu/drm/Kconfig:192: can't open file
# "drivers/gpu/drm/amd/amdgpu/Kconfig"' (a tree with files missing).
_KCONFIG_ERROR = re.compile(r"^\S*Kconfig[^\s:]*:\d+: (?!warning)")
_CONTEXT = re.compile(r"^\s*(?:\d+\s*)?\|")   # gcc's source/caret lines


# What a fragment asks of the boot and of the guest test, as comments
# (Kconfig ignores them): "# patchgen-boot: smp=2 memory=512", "#
# patchgen-cmdline: ARGS", "# patchgen-guest: ARGS", "# patchgen-optional:
# CONFIG_A CONFIG_B" (symbols an era may lack: a note, not an error).
_DIRECTIVE = re.compile(r"^# patchgen-(boot|cmdline|guest|optional):(.*)$",
                        re.M)


@dataclass(frozen=True)
class GuestConfig:
    """One kernel configuration of verify and the boot that goes with it."""

    name: str
    fragment: str
    optional: tuple = ()
    kernel_args: tuple = ()
    guest_args: tuple = ()
    smp: int = 1
    memory_mb: int | None = None
    # The rule's VerifyRecipe the config is one of: the guest program and
    # what the verdict reads go with the config wherever it is booted.
    recipe: VerifyRecipe | None = field(default=None, compare=False, repr=False)


def default_fragments(recipe: VerifyRecipe) -> tuple[Path, ...]:
    """The fragment files of the recipe's "default" config."""
    return tuple(recipe.configs[DEFAULT_CONFIG].fragments)


def load_config(recipe: VerifyRecipe, spec: str | None = None) -> GuestConfig:
    """The config --config names: one of the *recipe*'s (a VerifyRecipe)
    by name, or a fragment FILE (read after its default fragments, its
    directives included)."""
    spec = spec or DEFAULT_CONFIG
    paths: tuple[Path, ...]
    if spec in recipe.configs:
        paths, name = tuple(recipe.configs[spec].fragments), spec
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise BadBuildConfig(
                f"--config {spec}: there is no such config ("
                + ", ".join(recipe.configs) + ") and no such file: give one of "
                "those names or a config fragment file")
        paths, name = (*default_fragments(recipe), path), path.name
    try:
        fragment = "".join(Path(p).read_text() for p in paths)
    except (OSError, UnicodeDecodeError) as exc:
        raise BadBuildConfig(f"cannot read the config fragment for --config "
                             f"{spec}: {exc}") from None
    return parse_config(name, fragment, recipe)


def parse_config(name: str, fragment: str,
                 recipe: VerifyRecipe | None = None) -> GuestConfig:
    optional, kernel_args, guest_args = [], [], []
    boot: dict[str, int] = {}
    for kind, value in _DIRECTIVE.findall(fragment):
        words = value.split()
        if kind == "optional":
            optional += words
        elif kind == "cmdline":
            kernel_args += words
        elif kind == "guest":
            guest_args += words
        else:
            for word in words:
                key, _, number = word.partition("=")
                if key not in ("smp", "memory") or not number.isdigit():
                    raise BadBuildConfig(
                        f"config {name}: bad patchgen-boot setting {word!r} "
                        "(smp=N and memory=MB are known)")
                boot[key] = int(number)
    # The directives go to the boot, not to Kconfig: without them in the
    # text, a new boot setting keeps the build folder (keyed by the text).
    fragment = _DIRECTIVE.sub("", fragment)
    return GuestConfig(name, fragment, tuple(optional), tuple(kernel_args),
                       tuple(guest_args), boot.get("smp", 1),
                       boot.get("memory"), recipe)


@dataclass(frozen=True)
class Progress:
    """One step of a build, for a progress display: the Kbuild step
    ("CC"), its target, how many steps so far and the seconds elapsed."""

    stage: str
    step: str
    target: str
    count: int
    elapsed: float


@dataclass(frozen=True)
class BuildResult:
    tree: Path
    build_dir: Path
    bzimage: Path
    log: Path
    seconds: float
    steps: int          # Kbuild steps make ran (0: nothing to rebuild)
    # Optional symbols this era's Kconfig does not give (a note, not fatal).
    missing_optional: tuple = ()


ProgressFn = Callable[[Progress], None]


def check_kernel_tree(tree: Path) -> Path:
    """Return the tree's absolute path, or say why it is not one."""
    tree = Path(tree).expanduser()
    if not tree.is_dir():
        raise NotAKernelTree(f"there is no folder {tree}: give --tree the "
                             "top folder of a Linux source tree")
    tree = tree.resolve()
    if not ((tree / "Makefile").is_file() and (tree / "Kconfig").is_file()
            and (tree / "arch" / "x86").is_dir()):
        raise NotAKernelTree(f"{tree} is not a Linux source tree (no "
                             "Makefile, Kconfig and arch/x86 at its top): "
                             "give --tree the top folder of one")
    return tree


def configured_in_place(tree: Path) -> list[Path]:
    """What an in-tree build (or a committed .config) left in *tree* that
    stops make from building it out of tree; empty when it is clean."""
    return in_tree_build_output(Path(tree))


def refuse_in_place(tree: Path) -> None:
    """A tree that is not a git repository and was configured in place
    cannot be built out of tree, and there is no private copy to make:
    say so (a git tree is built from a private clone instead)."""
    found = configured_in_place(tree)
    if found:
        names = ", ".join(str(p.relative_to(tree)) for p in found[:3])
        raise NotAKernelTree(f"{tree} has been configured in place ({names}) "
                             "and is not a git repository, so make cannot "
                             "build it out of tree and patchgen cannot make a "
                             "clean private copy of it: build it from a git "
                             "clone, or run `make mrproper` in it (this "
                             "deletes its in-tree build) and retry")


def first_errors(output: str, limit: int = 8) -> list[str]:
    """The compiler's (or linker's) first error lines, with gcc's context
    lines; make's own "***" lines only when nothing better is there."""
    lines = output.splitlines()
    picked: list[str] = []
    for i, line in enumerate(lines):
        if (_COMPILER_ERROR.search(line) or _LINKER_ERROR.search(line)
                or _KCONFIG_ERROR.search(line)):
            picked.append(line)
            for follow in lines[i + 1:i + 3]:
                if _CONTEXT.match(follow):
                    picked.append(follow)
            if len(picked) >= limit:
                break
    if not picked:
        picked = [line for line in lines if _MAKE_ERROR.search(line)
                  or line.startswith("***")][:limit]
    if not picked:
        picked = [line for line in lines if line.strip()][-3:]
    return picked[:limit]


def _raise_if_disk_full(output: str, build_dir: Path) -> None:
    if "No space left on device" in output:
        raise CacheFull(f"the disk under {build_dir} is full: free some "
                        "space (or set PATCHGEN_CACHE to a folder on "
                        "another disk) and retry")


def _configure(tree: Path, build_dir: Path, fragment: str, log: Path,
               what: str, optional: tuple = ()) -> list[str]:
    """kconfig's configure, where every symbol of the fragment is needed
    but the *optional* ones; returns the optional ones that are not =y."""
    try:
        missing = configure(tree, build_dir, fragment, log)
    except ConfigTargetFailed as failure:
        _raise_if_disk_full(failure.output, build_dir)
        errors = first_errors(failure.output, 4)
        raise BuildFailed(f"make {failure.target} failed for {what}: "
                          + " / ".join(errors) + f" (log: {log})",
                          errors=tuple(errors)) from None
    absent = [s for s in missing if s in optional]
    missing = [s for s in missing if s not in optional]
    if missing:
        raise ConfigSymbolMissing(
            f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
            f"not =y in {build_dir / '.config'} after make olddefconfig "
            f"for {what}: "
            "Kconfig dropped it, so a dependency is missing or the symbol "
            "does not exist in this tree; add the dependency to the "
            "fragment or fix the tree's Kconfig")
    return absent


def build_kernel(tree: Path, log: Path, *, fragment: str,
                 optional: tuple = (), jobs: int | None = None,
                 timeout: float = DEFAULT_BUILD_TIMEOUT,
                 progress: ProgressFn | None = None,
                 what: str | None = None,
                 copy_to: Path | None = None,
                 workdir: Path | None = None) -> BuildResult:
    """Configure and build *tree*'s bzImage; raise BuildFailed with the
    first errors when it does not build.  *what* names the kernel in
    messages (default: the tree's path).  With *copy_to*, the bzImage is
    copied there before another run may rebuild the folder, and the
    result names the copy.  The O= folder is in *workdir* (default: the
    cache folder of *tree*; a private checkout's builds go in the folder
    of the user's tree it was made from)."""
    tree = check_kernel_tree(tree)
    refuse_in_place(tree)
    what = what or f"the kernel in {tree}"
    build_dir = build_dir_for(workdir or workdir_for(tree), tree, fragment)
    # Two runs in one O= folder at once would break each other's build;
    # and any two kernel builds on one machine take every core twice over
    # (the machine-wide lock, which `patchgen check --build` takes too).
    with open(build_dir.with_name(build_dir.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with kernel_build_lock(what):
            return _build_locked(tree, build_dir, log, fragment, optional,
                                 jobs, timeout, progress, what, copy_to)


def _build_locked(tree, build_dir, log, fragment, optional, jobs, timeout,
                  progress, what, copy_to) -> BuildResult:
    jobs = jobs or os.cpu_count() or 1
    start = time.monotonic()
    log.write_text("")

    def report(step: str, target: str, count: int) -> None:
        if progress:
            progress(Progress("build", step, target, count,
                              time.monotonic() - start))

    report("CONFIG", "tinyconfig + the rule's fragment", 0)
    absent = _configure(tree, build_dir, fragment, log, what, optional)
    variables = make_variables(tree)
    argv = ["make", "-C", tree, f"O={build_dir}", f"-j{jobs}", *variables,
            "bzImage"]
    with open(log, "a") as out:
        out.write(f"{why(variables)}$ {describe(argv)}\n")
    steps = 0

    def on_line(line: str) -> None:
        nonlocal steps
        match = _KBUILD_STEP.match(line)
        if match:
            steps += 1
            report(match.group(1), match.group(2), steps)

    result = stream(argv, timeout=timeout, on_line=on_line, log_path=log,
                    append=True)
    if result.timed_out:
        raise CommandTimeout(f"make bzImage for {what} did not finish within "
                             f"{timeout:.0f} s (log: {log}); raise "
                             "--build-timeout if the machine is slow")
    if result.returncode != 0:
        _raise_if_disk_full(result.output, build_dir)
        # Compile commands name sources by absolute path: show them
        # relative to the tree, as a developer reads them.
        errors = [line.replace(f"{tree}/", "")
                  for line in first_errors(result.output)]
        raise BuildFailed(f"{what} does not build; first errors (full "
                          f"log: {log}):\n  " + "\n  ".join(errors),
                          errors=tuple(errors))
    bzimage = build_dir / BZIMAGE
    if not bzimage.is_file():
        raise BuildFailed(f"make bzImage succeeded but left no {bzimage} "
                          f"(log: {log})")
    if copy_to:
        shutil.copyfile(bzimage, copy_to)
        bzimage = Path(copy_to)
    return BuildResult(tree, build_dir, bzimage, log,
                       time.monotonic() - start, steps, tuple(absent))
