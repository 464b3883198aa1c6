"""The package's import layering: the pipeline stages in order (written once, here) and the check of the graph.

A module may import from its own stage and any earlier one; importing a later stage is a violation.
``python -m muva_lib.layering`` prints the violations (exit 1 when there are any); ``tests/test_layering.py``
asserts there are none. Adding a top-level module or package: put its name into :data:`ORDER`. An upward
import that has to stay for now goes into :data:`EXCEPTIONS` with its reason.

What counts as an import (found with :mod:`ast`, nothing is executed):

* ``import``/``from ... import`` anywhere in a file: module level, inside functions (deferred imports) and
  under ``if TYPE_CHECKING:``. Type-only imports are held to the same order: a signature that names a later
  stage's type is a dependency on that stage (take a ``Protocol`` or a plain type from an earlier stage).
* ``importlib.import_module`` with a literal name, or an f-string whose literal head names a package
  (``f"muva_lib.commands.{name}"`` counts as an import of ``muva_lib.commands``). One whose name is known
  only at run time is listed (``Report.dynamic``, a note of ``python -m muva_lib.layering``), not checked.
* Importing the package root itself (``from .. import __version__``) is no edge: the root runs before
  any submodule anyway. The root ``__init__.py`` is the public front door and sits in the last stage.
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Mapping, Sequence

__all__ = ["ORDER", "SUBORDERS", "EXCEPTIONS", "Edge", "Violation", "Report", "module_names", "imports_of", "check"]

Order = Sequence[Sequence[str]]

#: The stages of ``muva_lib`` from the leaves to the front doors; each stage lists top-level module and
#: package names that may import each other. ``__init__`` is the package root's own file.
ORDER: tuple[tuple[str, ...], ...] = (
    ("utils", "paths", "jsonl", "geometry", "layering"),  # leaves: no muva_lib imports but each other
    ("config",),
    ("data",),  # item types, dataset readers, the synthetic and real sets, protocols
    ("grounding",),  # VGE: part boxes -> calibrated patch masks
    ("human_parsing",),
    ("batches",),  # transforms, sampler, loaders
    ("models",),
    ("losses",),
    ("memory", "features"),
    ("eval",),
    ("methods",),
    ("train", "extract"),  # extract: a finished run's test features for other code (reads the run via train)
    ("pretrain",),  # contrastive pretraining of the tiny CLIP on the synthetic corpus; shipping its weights
    ("analysis", "baselines", "reported", "tables"),
    ("viz",),  # figures are built from the results tables
    ("explore",),  # ipywidgets explorers: controls that redraw viz figures (issue 16)
    # notebook runs: train or find a run, execute notebooks, the sweep's tables and figures; the notebooks' setup
    ("runs", "notebook_runs", "notebook_setup", "sweep"),
    ("commands", "bench", "readme"),  # front doors (readme: the generated README blocks, shows the demo's time)
    ("__main__", "__init__"),
)

#: The same rule inside a package (key: its dotted name under ``muva_lib``): the order of its direct
#: members (submodules and subpackages). The package's own ``__init__.py`` re-exports and is not checked.
SUBORDERS: dict[str, tuple[tuple[str, ...], ...]] = {
    "config": (("schema",), ("presets",), ("overrides",), ("rules",), ("validation",), ("files",), ("resolution",)),
    "data": (("types", "errors"), ("readers",), ("synth", "synthetic", "real"), ("protocols",)),
}

#: Upward imports allowed for now, each with the reason: (importer, imported) dotted module names, exactly as
#: a violation names them. Keep it short: each entry is a debt with its reason; an entry that matches no
#: upward import fails the test.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("muva_lib.config.presets", "muva_lib.methods"):
        "the method names, recipes and ablations are the recipes' own; read on first use (the recipes import config)",
    ("muva_lib.config.rules", "muva_lib.data.protocols"):
        "data.protocol is valid when the protocol registry resolves it; looked up when a value is checked",
    ("muva_lib.config.rules", "muva_lib.data.errors"):
        "the protocol lookup's DatasetError becomes the validation message; imported when a value is checked",
    ("muva_lib.config.rules", "muva_lib.data.types"):
        "model.num_parts is bounded by PARTS, owned by the item types; read when a value is checked",
    ("muva_lib.config.rules", "muva_lib.grounding.backends.noisy_truth"):
        "the length of a vge.noise_* rate depends on NOISE_RATES, owned by the noisy backend; read on first use",
    ("muva_lib.config.rules", "muva_lib.human_parsing.classes"):
        "parsing.grouping is valid when human parsing's own grouping parser reads it; imported when checked",
}


@dataclass(frozen=True)
class Edge:
    """One import found in a file: ``importer`` (dotted) imports ``imported`` (dotted) at ``path:line``.

    ``kind``: "module-level", "deferred" (inside a function), "TYPE_CHECKING", "import_module", or "dynamic": an
    ``import_module`` whose name is known only at run time (``imported`` is then its argument as written)."""
    path: Path
    line: int
    importer: str
    imported: str
    kind: str


@dataclass(frozen=True)
class Violation:
    """An edge from a stage to a later one, within ``scope`` (the package name, or a subpackage's)."""
    edge: Edge
    scope: str
    from_stage: tuple[int, Sequence[str]]
    to_stage: tuple[int, Sequence[str]]

    def __str__(self) -> str:
        e = self.edge

        def label(stage: tuple[int, Sequence[str]]) -> str:
            return f"stage {stage[0]} ({'/'.join(stage[1])})"
        return (f"{e.path}:{e.line}: {e.importer} imports {e.imported} ({e.kind}): {label(self.from_stage)} "
                f"may not import the later {label(self.to_stage)} of {self.scope} (see {_where(self.scope)} in "
                "muva_lib/layering.py)")


@dataclass
class Report:
    """Everything :func:`check` found: upward edges, members without a stage, stage names that name nothing,
    exceptions that match no upward edge; and every edge read (``dynamic`` ones are not checked)."""
    violations: list[Violation] = field(default_factory=list)
    unstaged: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    stale: list[tuple[str, str]] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not (self.violations or self.unstaged or self.unknown or self.stale)

    @property
    def dynamic(self) -> list[Edge]:
        return [e for e in self.edges if e.kind == "dynamic"]

    def lines(self, which: Sequence[str] = ("violations", "unstaged", "unknown")) -> list[str]:
        """One message per problem, for the kinds in ``which``."""
        out = [str(v) for v in self.violations] if "violations" in which else []
        out += [f"{m} belongs to no stage: add it to {_where(m.rpartition('.')[0])} in muva_lib/layering.py"
                for m in self.unstaged if "unstaged" in which]
        out += [f"{m} is in {_where(m.rpartition('.')[0])} but no such module or package exists: rename or remove it"
                for m in self.unknown if "unknown" in which]
        out += [f"EXCEPTIONS[{key}] matches no upward import: remove it" for key in self.stale if "unknown" in which]
        return out


def _where(scope: str) -> str:
    """The name of the order that rules inside ``scope`` (the package, or a subpackage's dotted name)."""
    return "ORDER" if "." not in scope else f"SUBORDERS[{scope.split('.', 1)[1]!r}]"


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name -> file for every ``.py`` under the package folder ``root`` (a package is its ``__init__``)."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return names


def _base_package(importer: str, is_package: bool, level: int) -> str:
    """The package a relative import of ``level`` dots starts from, inside module ``importer``."""
    parts = importer.split(".")
    keep = len(parts) - level + (1 if is_package else 0)
    if keep < 1:
        raise ValueError(f"{importer}: a relative import of level {level} leaves the top-level package")
    return ".".join(parts[:keep])


class _Imports(ast.NodeVisitor):
    """Collects (line, dotted target, kind) for the imports of one module (targets may be non-modules)."""

    def __init__(self, importer: str, is_package: bool, known: Mapping[str, Path]):
        self.importer, self.is_package, self.known = importer, is_package, known
        self.found: list[tuple[int, str, str]] = []  # (line, dotted target, kind)
        self._depth = 0
        self._type_checking = 0

    def _kind(self) -> str:
        return "TYPE_CHECKING" if self._type_checking else "deferred" if self._depth else "module-level"

    def _function(self, node: ast.AST) -> None:
        self._depth += 1
        self.generic_visit(node)
        self._depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_If(self, node: ast.If) -> None:
        test = node.test
        guarded = (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
            isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
        self.visit(node.test)
        self._type_checking += guarded
        for child in node.body:
            self.visit(child)
        self._type_checking -= guarded
        for child in node.orelse:
            self.visit(child)

    def visit_Import(self, node: ast.Import) -> None:
        self.found += [(node.lineno, alias.name, self._kind()) for alias in node.names]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        base = node.module or ""
        if node.level:
            base = _base_package(self.importer, self.is_package, node.level) + (f".{base}" if base else "")
        for alias in node.names:  # ``from pkg import sub`` imports the submodule ``pkg.sub``
            sub = f"{base}.{alias.name}"
            self.found.append((node.lineno, sub if sub in self.known else base, self._kind()))

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
        if name == "import_module" and node.args:
            target = self._literal_head(node.args[0])
            if target and target.startswith("."):
                package = node.args[1] if len(node.args) > 1 else next(
                    (k.value for k in node.keywords if k.arg == "package"), None)
                target = self._absolute(target, package)
            if not isinstance(node.args[0], ast.Constant) and target in (None, "", self.importer.split(".")[0]):
                self.found.append((node.lineno, ast.unparse(node.args[0]), "dynamic"))
            else:
                self.found.append((node.lineno, target, "import_module"))
        self.generic_visit(node)

    def _absolute(self, relative: str, package: ast.expr | None) -> str:
        """``import_module``'s relative name made absolute: from its ``package`` if literal, else from here
        (the usual ``__name__`` of a package's ``__init__`` or ``__package__``)."""
        level = len(relative) - len(relative.lstrip("."))
        if isinstance(package, ast.Constant) and isinstance(package.value, str):
            parts = package.value.split(".")
            base = ".".join(parts[:len(parts) - level + 1])
        else:
            base = _base_package(self.importer, self.is_package, level)
        return base + (f".{relative[level:]}" if relative[level:] else "")

    def _literal_head(self, arg: ast.expr) -> str | None:
        """The importable head of a literal or f-string module name: up to its last complete dotted part."""
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            return arg.value
        if not isinstance(arg, ast.JoinedStr):
            return None
        head = ""
        for value in arg.values:
            if isinstance(value, ast.Constant):
                head += str(value.value)
            elif isinstance(value, ast.FormattedValue) and isinstance(value.value, ast.Name) \
                    and value.value.id == "__name__" and value.format_spec is None:
                head += self.importer
            else:  # a run-time part: keep the complete dotted parts before it (and a relative import's dots)
                dots = len(head) - len(head.lstrip("."))
                return head[:dots] + head[dots:].rpartition(".")[0]
        return head


def imports_of(name: str, path: Path, known: Mapping[str, Path]) -> Iterator[Edge]:
    """Every import in module ``name`` (file ``path``) of a module in ``known``, as the longest known prefix."""
    visitor = _Imports(name, path.name == "__init__.py", known)
    visitor.visit(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))
    for line, target, kind in dict.fromkeys(visitor.found):  # ``from m import a, b``: one edge
        parts = target.rstrip(".").split(".")
        while parts and ".".join(parts) not in known:
            parts.pop()
        if kind == "dynamic":
            yield Edge(path, line, name, target, kind)
        elif parts:
            yield Edge(path, line, name, ".".join(parts), kind)


def _stage_index(order: Order) -> dict[str, int]:
    index: dict[str, int] = {}
    for i, stage in enumerate(order):
        for name in stage:
            if name in index:
                raise ValueError(f"{name!r} is in stage {index[name]} and in stage {i} of the order")
            index[name] = i
    return index


def _member(module: str, scope: str) -> str | None:
    """The direct member of package ``scope`` that ``module`` lies in (None: ``scope`` itself, or outside it)."""
    prefix = scope + "."
    return module[len(prefix):].split(".")[0] if module.startswith(prefix) else None


def check(root: Path, order: Order = ORDER, suborders: Mapping[str, Order] = SUBORDERS, *,
          exceptions: Mapping[tuple[str, str], str] = EXCEPTIONS) -> Report:
    """Check the package folder ``root`` against ``order`` (its top-level names), ``suborders`` (inside
    subpackages, keyed by their dotted name below the package) and the allowed upward ``exceptions``."""
    root = Path(root)
    known = module_names(root)
    scopes = {root.name: order, **{f"{root.name}.{key}": sub for key, sub in suborders.items()}}
    report = Report()
    indexes: dict[str, dict[str, int]] = {}
    for scope, scope_order in scopes.items():
        indexes[scope] = index = _stage_index(scope_order)
        if scope not in known:
            report.unknown.append(scope)
            continue
        members = {_member(m, scope) for m in known} - {None} | ({"__init__"} if scope == root.name else set())
        report.unstaged += sorted(f"{scope}.{m}" for m in members - index.keys())
        report.unknown += sorted(f"{scope}.{n}" for n in index.keys() - members)
    for name, path in known.items():
        report.edges += [Edge(path.relative_to(root.parent), e.line, e.importer, e.imported, e.kind)
                         for e in imports_of(name, path, known)]
    used: set[tuple[str, str]] = set()
    for edge in report.edges:
        for scope, index in indexes.items():
            src = "__init__" if edge.importer == scope == root.name else _member(edge.importer, scope)
            dst = _member(edge.imported, scope)
            if src in index and dst in index and index[dst] > index[src]:
                used.add((edge.importer, edge.imported))
                if (edge.importer, edge.imported) not in exceptions:
                    report.violations.append(Violation(edge, scope, (index[src], scopes[scope][index[src]]),
                                                       (index[dst], scopes[scope][index[dst]])))
    report.stale = [key for key in exceptions if key not in used]
    return report


def main(argv: Sequence[str] | None = None) -> int:
    """Print what :func:`check` finds in this package; exit 1 if anything."""
    report = check(Path(__file__).resolve().parent)
    print("\n".join(report.lines()) or f"layering: {len(report.edges)} imports, none upward")
    for e in report.dynamic:
        print(f"note: {e.path}:{e.line}: {e.importer} imports a module named at run time ({e.imported}): not checked")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
