"""Configure a kernel for an out-of-tree build: tinyconfig plus a fragment.

`patchgen check --build` and `patchgen verify` configure the same way, each
with the fragment the rule gives (Rule.check_build, Rule.verify; check's
generic build starts from defconfig instead of tinyconfig):

1. make tinyconfig (or the given base), the fragment appended to .config,
   make olddefconfig;
2. every CONFIG_...=y of the fragment must still be =y: Kconfig silently
   drops a symbol whose dependencies are missing, so the dropped ones are
   named.  What a dropped symbol means is the caller's: verify cannot run
   its test without it (an error), check builds anyway and says so (a note).

The build folder is kept per source folder and fragment: the output path
is part of every compile command (a moved folder rebuilds everything), and
.config follows the fragment.
"""

import hashlib
import re
from pathlib import Path

from patchgen.infra.errors import BadBuildConfig
from patchgen.infra.runner import Result, describe, run

# Kbuild unexports LC_ALL: set the others too, or gcc quotes names with
# the locale's quotation marks.
C_LOCALE = {"LC_ALL": "C", "LANG": "C", "LC_CTYPE": "C", "LC_MESSAGES": "C"}

_SET_TO_Y = re.compile(r"^(CONFIG_[A-Za-z0-9_]+)=y\s*$", re.M)


class ConfigTargetFailed(Exception):
    """make tinyconfig or make olddefconfig failed.  Not a user-facing
    error by itself: check and verify each say what it means for them."""

    def __init__(self, target: str, command: str, result: Result):
        super().__init__(f"{command} failed with exit code {result.returncode}")
        self.target = target
        self.command = command
        self.result = result

    @property
    def output(self) -> str:
        return self.result.stdout + self.result.stderr


def read_fragment(path: Path, extra: Path | None = None) -> str:
    """A fragment file, with the user's *extra* one (--config) after it."""
    return add_fragment(Path(path).read_text(), extra)


def add_fragment(text: str, extra: Path | None) -> str:
    """*text*, with the user's *extra* fragment file (--config) after it."""
    if extra is not None:
        try:
            text += "\n# --config " + str(extra) + "\n" + Path(extra).read_text()
        except OSError as exc:
            raise BadBuildConfig(f"cannot read the config fragment {extra}: "
                                 f"{exc.strerror or exc}") from None
    return text


def required_symbols(fragment: str) -> list[str]:
    """The CONFIG_ names the fragment sets to y, in order."""
    return _SET_TO_Y.findall(fragment)


def missing_symbols(config: str, fragment: str) -> list[str]:
    """Symbols the fragment wants =y that *config* (a .config) lacks."""
    have = set(_SET_TO_Y.findall(config))
    return [s for s in required_symbols(fragment) if s not in have]


BASE_CONFIG = "tinyconfig"


def build_dir_for(workdir: Path, source: Path, fragment: str,
                  base: str = BASE_CONFIG) -> Path:
    """The O= folder, in *workdir*, for *source* configured with *base* and
    *fragment* (created if needed)."""
    source = Path(source).resolve()
    # tinyconfig's folders keep the key they always had.
    keyed = fragment if base == BASE_CONFIG else f"{base}\0{fragment}"
    key = hashlib.sha256(f"{source}\0{keyed}".encode()).hexdigest()[:12]
    path = Path(workdir) / f"build-{source.name}-{key}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def configure(source: Path, build_dir: Path, fragment: str,
              log: Path | None = None, base: str = BASE_CONFIG) -> list[str]:
    """*base* (tinyconfig) + *fragment* + olddefconfig in *build_dir*; return the
    fragment's =y symbols that olddefconfig dropped.  Each make command
    and its output are appended to *log*.  Raises ConfigTargetFailed."""
    build_dir.mkdir(parents=True, exist_ok=True)
    config = build_dir / ".config"
    for target in (base, "olddefconfig"):
        if target == "olddefconfig":
            with open(config, "a") as out:
                out.write("\n# patchgen: config fragment\n" + fragment)
        argv = ["make", "-C", str(source), f"O={build_dir}", target]
        result = run(argv, env=C_LOCALE, timeout=600, check=False)
        if log is not None:
            with open(log, "a") as out:
                out.write(f"$ {describe(argv)}\n{result.stdout}{result.stderr}")
        if result.returncode != 0:
            raise ConfigTargetFailed(target, describe(argv), result)
    return missing_symbols(config.read_text(), fragment)
