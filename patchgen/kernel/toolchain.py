"""What make needs to add for an old tree and this machine's compiler.

Kernels before v4.9 (and stable lines without the backport of "kbuild:
add -fno-PIE") do not pass -fno-PIE, and a compiler that builds
position-independent code by default (Debian's gcc since 7, with
--enable-default-pie) then fails such a tree's build early ("code model
kernel does not support PIC mode").  The kernel's own fix was to add
-fno-PIE to KBUILD_CFLAGS; for a tree that lacks it, patchgen passes it in
KCFLAGS, the variable kbuild keeps for the user's extra C flags, and says
so in the build log.
"""

import functools
import os
from pathlib import Path

from patchgen.infra.errors import PatchgenError
from patchgen.kernel.kconfig import C_LOCALE
from patchgen.infra.runner import run


@functools.cache
def _compiler_defaults_to_pie(cc: str) -> bool:
    try:
        result = run([cc, "-dM", "-E", "-x", "c", "/dev/null"], env=C_LOCALE,
                     timeout=60, check=False)
    except PatchgenError:
        # No compiler, or one that cannot say: make will report it.
        return False
    return result.returncode == 0 and "__PIE__" in result.stdout


def _tree_passes_no_pie(tree: Path) -> bool:
    try:
        makefile = (tree / "Makefile").read_text(errors="replace")
    except OSError:
        return True
    return "-fno-PIE" in makefile or "-fno-pie" in makefile


def make_variables(tree: Path, environ=None) -> list[str]:
    """The VAR=VALUE arguments every kernel make of *tree* needs on this
    machine (empty for a current tree).  A KCFLAGS the user set in the
    environment is kept in front of ours."""
    environ = os.environ if environ is None else environ
    cc = environ.get("CC", "gcc")
    if _tree_passes_no_pie(Path(tree)) or not _compiler_defaults_to_pie(cc):
        return []
    user = environ.get("KCFLAGS", "").strip()
    return [f"KCFLAGS={user + ' ' if user else ''}-fno-pie"]


def why(variables: list[str]) -> str:
    """One line for the build log saying why *variables* were added."""
    if not variables:
        return ""
    return (f"# patchgen: added {' '.join(variables)}: this tree's Makefile "
            "does not pass -fno-PIE (kbuild added it in v4.9) and the "
            "compiler builds PIE code by default\n")
