"""The layout is the architecture: lower layers never import higher ones.

    infra < kernel < engine < series < review < vm < rules < cli

Every module of the package is parsed (ast, nothing is imported) and each
import of a patchgen module, at the top or inside a function, is checked
against that order.  Rules are loaded by name at run time, so nothing
below the rules layer imports a rule module.

Until the Rule API moves to patchgen/engine/rule.py (issue 11), the
package's own patchgen/rules/__init__.py is that API and counts as
engine-level; patchgen.rules.<rule> (hwpoison/ and the others) is the
rules layer.
"""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "patchgen"
LAYERS = ["infra", "kernel", "engine", "series", "review", "vm", "rules", "cli"]
TOP = len(LAYERS)  # patchgen/__main__.py: above everything


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> int | None:
    """The layer of the patchgen module *module*, None for one outside."""
    parts = module.split(".")
    if parts[0] != "patchgen":
        return None
    if len(parts) == 1:
        return 0    # the package's __init__: its __version__ only
    if parts[1] == "rules" and len(parts) == 2:
        return LAYERS.index("engine")   # the Rule API, for now (see above)
    if parts[1] in LAYERS:
        return LAYERS.index(parts[1])
    if parts[1] in ("__main__", "_data"):
        return TOP
    raise AssertionError(f"{module} is in no layer: put it in one of {LAYERS}")


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in *path*, relative ones resolved;
    `from patchgen.x import y` counts as patchgen.x.y when y is a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    here = module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                is_module = (PACKAGE.parent / Path(*sub.split("."))).with_suffix(".py").exists() \
                    or (PACKAGE.parent / Path(*sub.split(".")) / "__init__.py").exists()
                found.append((node.lineno, sub if is_module else module))
    return found


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "_data" not in p.parts)


def test_lower_layers_never_import_higher_ones():
    wrong = []
    for path in modules():
        mine = layer_of(module_name(path))
        for line, module in imports(path):
            theirs = layer_of(module)
            if theirs is not None and theirs > mine:
                wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line}: "
                             f"{LAYERS[mine] if mine < TOP else 'top'} imports "
                             f"{module} ({LAYERS[theirs] if theirs < TOP else 'top'})")
    assert wrong == [], "\n".join(wrong)


def test_the_order_is_checked_on_real_imports():
    # The checker sees what it must: a module of each layer is found, and
    # an import from a higher layer would be caught.
    layers = {layer_of(module_name(p)) for p in modules()}
    assert set(range(len(LAYERS))) <= layers
    assert layer_of("patchgen.rules") < layer_of("patchgen.series.format") \
        < layer_of("patchgen.rules.hwpoison.rule")
    assert (1, "patchgen.rules.hwpoison") in [
        (line, module) for line, module in imports_of_text(
            "from patchgen.rules import hwpoison\n", PACKAGE / "engine" / "x.py")]


def imports_of_text(text: str, path: Path) -> list[tuple[int, str]]:
    """imports() of a module with *text* at *path* (written nowhere)."""
    original = Path.read_text

    def fake(self, *args, **kwargs):
        return text if self == path else original(self, *args, **kwargs)
    Path.read_text = fake
    try:
        return imports(path)
    finally:
        Path.read_text = original


def test_one_name_per_concept():
    # Two classes of one name (two Report, two Series, two Mail) are two
    # concepts a reader takes for one: every class name is used once.
    # A rule is a package of its own (a third-party one names its classes as
    # it likes): the names are checked across the engine and its stages.
    where: dict[str, list[str]] = {}
    for path in modules():
        if path.relative_to(PACKAGE).parts[0] == "rules" and \
                len(path.relative_to(PACKAGE).parts) > 2:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                where.setdefault(node.name, []).append(
                    f"{path.relative_to(PACKAGE.parent)}:{node.lineno}")
    assert {name: places for name, places in where.items() if len(places) > 1} == {}
