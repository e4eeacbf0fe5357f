"""Syntax-check fixture trees the way Kbuild would compile them.

Fixture trees are not buildable kernels; gcc -fsyntax-only against their
own headers is the build that proves each patch of a series compiles,
with CONFIG_MEMORY_FAILURE on and off (mm/memory-failure.c only when on,
as Kbuild builds it).
"""

import subprocess
from pathlib import Path

FILES = ("mm/migrate.c", "mm/page_alloc.c", "mm/memory-failure.c",
         "mm/memory_hotplug.c")
FLAGS = ["-fsyntax-only", "-nostdinc", "-std=gnu89", "-Wall", "-Werror",
         "-Wdeclaration-after-statement",
         "-Werror=implicit-function-declaration", "-D__KERNEL__"]


def syntax_errors(tree: Path) -> list[str]:
    """gcc's complaints for every configuration, empty when all compile."""
    problems = []
    for memory_failure in (True, False):
        defines = ["-DCONFIG_MEMORY_FAILURE"] if memory_failure else []
        for name in FILES:
            if not (tree / name).exists():
                continue
            if name == "mm/memory-failure.c" and not memory_failure:
                continue
            result = subprocess.run(
                ["gcc", *FLAGS, *defines, "-I", str(tree / "include"),
                 str(tree / name)], capture_output=True, text=True)
            if result.returncode != 0:
                config = "on" if memory_failure else "off"
                problems.append(f"{name} (MEMORY_FAILURE {config}): "
                                f"{result.stderr.strip()}")
    return problems
