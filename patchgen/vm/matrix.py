"""patchgen verify --matrix: one series on several trees and configs.

A matrix file (TOML) names the trees, the series and the configs:

    series = "my-fix"                # a branch of each tree, a folder of
                                     # patches or an mbox (optional); or
    series = { rule = "RULE" }       # the series RULE's apply makes for
                                     # each tree (generated.py)
    base = "v4.14"                   # optional, as verify --base
    rule = "RULE"                    # optional, as verify --rule
    trees = ["~/linux-4.9.y", { name = "vendor", path = "/src/vendor-4.18" }]
    configs = ["default", { name = "debug", file = "debug.config" }]

The configs are the verify recipe's of the rule (verify --rule, else the
file's `rule`, else the one installed rule with a recipe; recipes.py): its
"default" config (also called by the stem of its first fragment file), one
of its named configs, a NAME of another fragment in the recipe's fragment
folder (NAME.config) appended to the default one, or a file (relative to
the matrix file) appended likewise.

Every cell (tree x config) is one `patchgen verify` run with the same
machinery: the tree built and booted, or with a series its base and its
tip, each in the tree's private clone in the cache, incremental.  Cells
of one tree run one after the other (they share that clone); with
--parallel N up to N trees run at once.  Kernel builds take the
machine-wide build lock (cache.kernel_build_lock), so builds never
overlap: --parallel N overlaps one tree's boots and checkouts with
another's build.
"""

import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from patchgen.engine.rule import VerifyRecipe
from patchgen.vm.kbuild import DEFAULT_CONFIG, default_fragments
from patchgen.engine.registry import get_rule
from patchgen.infra.errors import BadMatrix, PatchgenError, UnknownRule
from patchgen.kernel.kconfig import add_fragment
from patchgen.vm.recipes import choose
from patchgen.vm.generated import Generated
from patchgen.vm.verify import FailedBuild, VerifyReport, VerifyOptions, verify

# The recipe's default config alone; the stem of its first fragment file
# (e.g. "verify" for verify.config) means it too.
BASE_CONFIG = DEFAULT_CONFIG


def _read(paths) -> str:
    """The fragments, each after the first marked as kconfig.add_fragment
    marks a --config file."""
    text = Path(paths[0]).read_text()
    for path in paths[1:]:
        text = add_fragment(text, Path(path))
    return text


@dataclass(frozen=True)
class Config:
    name: str
    fragment: str                     # the full fragment text
    source: str                       # where it came from, for the report
    spec: str = BASE_CONFIG           # what verify's --config takes for it


@dataclass(frozen=True)
class MatrixTree:
    name: str
    path: Path


@dataclass(frozen=True)
class Matrix:
    file: Path
    trees: tuple
    configs: tuple
    series: str | None = None
    base: str | None = None
    rule: str | None = None           # whose verify recipe
    recipe: VerifyRecipe | None = None  # that recipe
    generate: str | None = None       # series = { rule = ... }: that rule


def _config(entry, folder: Path, index: int, recipe: VerifyRecipe) -> Config:
    name: str | None
    file: str | None
    if isinstance(entry, str):
        name, file = entry, None
    elif isinstance(entry, dict) and isinstance(entry.get("name", ""), str):
        name = entry.get("name")
        file = entry.get("file")
        if file is not None and not isinstance(file, str):
            raise BadMatrix(f"configs[{index}].file must be a path string")
        name = name or (Path(file).stem if file else None)
        if not name:
            raise BadMatrix(f"configs[{index}] needs a name or a file")
    else:
        raise BadMatrix(f"configs[{index}] must be a name or a table with "
                        "name and file")
    default = default_fragments(recipe)
    if file is None and name in (BASE_CONFIG, Path(default[0]).stem):
        return Config(name, _read(default), ", ".join(map(str, default)))
    if file is None and name in recipe.configs:
        # The recipe's named configs, with their boot settings (kernel
        # arguments, CPUs, memory).
        paths = recipe.configs[name].fragments
        return Config(name, _read(paths), ", ".join(str(p) for p in paths), name)
    if file is None:
        fragments = recipe.fragment_folder()
        candidate = fragments / f"{name}.config"
        if not candidate.is_file():
            candidate = folder / name
        if not candidate.is_file():
            known = sorted(p.stem for p in fragments.glob("*.config"))
            raise BadMatrix(f"config {name!r} is neither a fragment in "
                            f"{fragments} ({', '.join(known)}) nor a file "
                            f"next to the matrix file")
        path = candidate
    else:
        path = (folder / Path(file).expanduser()).resolve()
        if not path.is_file():
            raise BadMatrix(f"config {name!r}: there is no fragment file "
                            f"{path}")
    return Config(name, _read((*default, path)), str(path), str(path))


def _tree(entry, folder: Path, index: int) -> MatrixTree:
    if isinstance(entry, str):
        path, name = entry, None
    elif isinstance(entry, dict) and isinstance(entry.get("path"), str):
        path, name = entry["path"], entry.get("name")
    else:
        raise BadMatrix(f"trees[{index}] must be a path or a table with a "
                        "path (and a name)")
    resolved = (folder / Path(path).expanduser()).resolve()
    if not resolved.is_dir():
        raise BadMatrix(f"trees[{index}]: there is no folder {resolved}")
    return MatrixTree(str(name or resolved.name), resolved)


def load_matrix(path: Path, rule: str | None = None) -> Matrix:
    """Read and check a matrix file before anything is built; *rule*
    (--rule) wins over the file's."""
    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise BadMatrix(f"cannot read the matrix file {path}: "
                        f"{exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BadMatrix(f"{path} is not TOML: {exc}") from None
    unknown = sorted(set(data) - {"trees", "configs", "series", "base", "rule"})
    if unknown:
        raise BadMatrix(f"{path}: unknown key {unknown[0]!r} (a matrix has "
                        "trees, configs, series, base and rule)")
    folder = path.resolve().parent
    trees = data.get("trees")
    if not isinstance(trees, list) or not trees:
        raise BadMatrix(f"{path} names no trees: add trees = [\"path\", ...]")
    configs = data.get("configs", [BASE_CONFIG])
    if not isinstance(configs, list) or not configs:
        raise BadMatrix(f"{path}: configs must be a list of names or tables")
    for key in ("base", "rule"):
        if key in data and not isinstance(data[key], str):
            raise BadMatrix(f"{path}: {key} must be a string")
    series, generate = _series(data.get("series"), folder, path)
    parsed_trees = tuple(_tree(t, folder, i) for i, t in enumerate(trees))
    rule, recipe = choose(rule or data.get("rule") or generate)
    parsed_configs = tuple(_config(c, folder, i, recipe)
                           for i, c in enumerate(configs))
    for kind, items in (("tree", parsed_trees), ("config", parsed_configs)):
        names = [item.name for item in items]
        for name in names:
            if names.count(name) > 1:
                raise BadMatrix(f"{path}: two {kind}s are called {name!r}: "
                                "give them names")
    return Matrix(path, parsed_trees, parsed_configs, series,
                  data.get("base"), rule, recipe, generate)


def _series(entry, folder: Path, path: Path) -> tuple[str | None, str | None]:
    """(what the table calls the series, the rule that makes it)."""
    if entry is None or isinstance(entry, str):
        if entry and Path(folder / entry).exists():
            entry = str((folder / entry).resolve())
        return entry, None
    if not isinstance(entry, dict):
        raise BadMatrix(f"{path}: series must be a branch, a folder or an "
                        "mbox (a string), or { rule = \"RULE\" }")
    rule = entry.get("rule")
    if set(entry) != {"rule"} or not isinstance(rule, str) or not rule:
        raise BadMatrix(f"{path}: a series table has one key, rule (the "
                        "rule whose apply makes the series for each tree), "
                        "e.g. series = { rule = \"RULE\" }")
    try:
        get_rule(rule)
    except UnknownRule as exc:
        raise BadMatrix(f"{path}: series: {exc}") from None
    return f"made by rule {rule}", rule


@dataclass(frozen=True)
class Cell:
    tree: MatrixTree
    config: Config
    report: VerifyReport | None = None
    error: str | None = None
    error_code: int | None = None
    # A build that failed, and the kernels judged before it (the base's,
    # when only the tip does not build).
    failed_build: FailedBuild | None = None
    partial: tuple = ()
    # What the rule made, for a cell that ended in an error.
    made: Generated | None = None

    @property
    def generated(self) -> Generated | None:
        """The series the rule made for this tree (series = { rule })."""
        return self.report.generated if self.report is not None else self.made

    def outcome(self, label: str):
        """The kernel judged as *label*; for a cell that ended in an
        error, one judged before the error (or None)."""
        judged = self.report.outcomes if self.report is not None \
            else self.partial
        return next((o for o in judged if o.label == label), None)

    @property
    def exit_code(self) -> int:
        if self.report is None:
            return self.error_code or 1
        return self.report.exit_code

    def to_dict(self) -> dict:
        # The report's own "tree" is the path: the cell's name wins.
        out = self.report.to_dict() if self.report is not None else {
            "error": self.error, "exit_code": self.error_code}
        if self.report is None and self.partial:
            # The kernels judged before the error (the base, when only the
            # tip does not build).
            out["results"] = [o.to_dict() for o in self.partial]
        if self.report is None and self.made is not None:
            out["generated"] = self.made.to_dict()
        out.update({"tree": self.tree.name, "path": str(self.tree.path),
                    "config": self.config.name})
        return out


CellProgress = Callable[[str, object], None]


def run_matrix(matrix: Matrix, options: VerifyOptions, *, parallel: int = 1,
               boot_with=None,
               progress: CellProgress | None = None) -> list[Cell]:
    """Every cell, in the order of the file (trees, then configs)."""

    def one_tree(tree: MatrixTree) -> list[Cell]:
        cells = []
        for config in matrix.configs:
            name = f"{tree.name}/{config.name}"
            cell_options = replace(options, tree=tree.path,
                                   series=None if matrix.generate
                                   else matrix.series, base=matrix.base,
                                   configs=(config.spec,),
                                   rule=matrix.rule or options.rule,
                                   generate=matrix.generate)
            events = (lambda e, n=name: progress(n, e)) if progress else None
            try:
                report = verify(cell_options, progress=events,
                                boot_with=boot_with)
                cells.append(Cell(tree, config, report))
            except PatchgenError as exc:
                if progress:
                    progress(name, f"error: {exc}")
                cells.append(Cell(tree, config, None, str(exc),
                                  exc.exit_code,
                                  getattr(exc, "failed", None),
                                  tuple(getattr(exc, "outcomes", ())),
                                  getattr(exc, "generated", None)))
        return cells

    if parallel <= 1 or len(matrix.trees) == 1:
        # In this thread, so that Ctrl-C reaches the running make or qemu
        # (runner.stream stops its process group) and ends the run.
        per_tree = [one_tree(tree) for tree in matrix.trees]
    else:
        # Worker threads never see Ctrl-C: the cells already running end
        # first (their own timeouts bound them).
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            per_tree = list(pool.map(one_tree, matrix.trees))
    return [cell for cells in per_tree for cell in cells]


def matrix_exit_code(cells: list[Cell]) -> int:
    """0 when every cell passed; 1 when a verdict failed or a cell could
    not be verified (the table says which)."""
    return 0 if all(cell.exit_code == 0 for cell in cells) else 1


def _verdict_text(outcome) -> str:
    if outcome is None:
        return "-"
    v = outcome.verdict
    return v.label if v.passed else f"{v.label} ({v.kind})"


def _failing(outcome) -> str:
    if outcome is None:
        return ""
    failed = [c.name for c in outcome.verdict.checks if not c.passed]
    kernel = [p.kind for p in outcome.verdict.problems
              if p.kind != "call trace"]
    return ", ".join(failed + [f"kernel: {k}" for k in kernel])


def _patches(cell: Cell) -> str:
    made = cell.generated
    return "-" if made is None else str(made.patches)


def table(cells: list[Cell], series: str | None) -> list[str]:
    """tree x config x {base, series}: verdict and failing checks; with a
    series a rule made per tree, how many patches it made there."""
    generated = any(cell.generated is not None for cell in cells)
    if series:
        head: tuple[str, ...] = ("TREE", "CONFIG", *(("PATCHES",) if generated
                                                     else ()),
                                 "BASE", "SERIES", "FAILING")
    else:
        head = ("TREE", "CONFIG", "VERDICT", "FAILING")
    rows: list[tuple[str, ...]] = [head]
    for cell in cells:
        where = (cell.tree.name, cell.config.name,
                 *((_patches(cell),) if generated else ()))
        if cell.report is None:
            first = (cell.error or "").splitlines()[0] if cell.error else ""
            error = f"ERROR (exit {cell.error_code})"
            base = cell.outcome("base")
            # When the base was judged, the tip is what failed.
            verdicts = ((error,) if not series else
                        (error, "-") if base is None else
                        (_verdict_text(base), error))
            rows.append((*where, *verdicts, first))
            continue
        if series:
            base, tip = cell.outcome("base"), cell.outcome("tip")
            made = cell.generated
            unaffected = made is not None and made.tip is None
            failing = "; ".join(
                f"{label}: {text}" for label, text in
                (("base", _failing(base)), ("series", _failing(tip)),
                 ("rule", made.reason if unaffected and made else ""))
                if text)
            rows.append((*where, _verdict_text(base),
                         made.verdict if unaffected and made
                         else _verdict_text(tip), failing))
        else:
            only = cell.outcome("tree")
            rows.append((cell.tree.name, cell.config.name,
                         _verdict_text(only), _failing(only)))
    widths = [max(len(str(r[i])) for r in rows) + 2
              for i in range(len(head) - 1)]
    return ["".join(f"{str(c):<{w}}" for c, w in zip(r, widths))
            + str(r[-1]) for r in rows]


def to_dict(matrix: Matrix, cells: list[Cell]) -> dict:
    return {"matrix": str(matrix.file), "series": matrix.series,
            "base": matrix.base,
            "configs": {c.name: c.source for c in matrix.configs},
            "exit_code": matrix_exit_code(cells),
            "cells": [cell.to_dict() for cell in cells]}
