"""Every notebook imports from a few muva_lib modules only (issue 16: the front door replaces the copied setup cells).

Counted: the distinct ``muva_lib`` modules a notebook's ``import`` / ``from ... import`` statements name, outside the
parameter-check cell (``from muva_lib.runs import check_notebook_parameters``, required by the convention).
``from muva_lib import viz, tables`` names one module (``muva_lib``); ``from muva_lib.viz import masks`` another."""
from __future__ import annotations

import ast

import pytest

from muva_lib import runs

MAX_MODULES = 5  # e.g. muva_lib, muva_lib.data, muva_lib.viz and two more


def imported_modules(source: str) -> set[str]:
    """The ``muva_lib`` modules named by the import statements of ``source`` (Python code)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.split(".")[0] == "muva_lib")
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "muva_lib":
            found.add(node.module or "")
    return found


def notebook_modules(stem: str) -> set[str]:
    """:func:`imported_modules` over the code cells of notebook ``stem``, the parameter-check cell left out."""
    found: set[str] = set()
    for cell in runs.read_notebook(stem).cells:
        if cell.cell_type == "code" and "check_notebook_parameters(globals()" not in cell.source:
            found |= imported_modules(cell.source)  # no magics in the notebooks (convention), so plain Python
    return found


def test_imported_modules_counts_the_modules_imported_from():
    source = ("import numpy as np\nimport muva_lib\nfrom muva_lib import viz, tables\n"
              "from muva_lib.viz import masks as vm\nfrom muva_lib.data import protocols\nimport muva_lib.eval.zeroshot\nfrom . import local\n")
    assert imported_modules(source) == {"muva_lib", "muva_lib.viz", "muva_lib.data", "muva_lib.eval.zeroshot"}
    assert imported_modules("def f():\n    from muva_lib.grounding import failure_sweep\n") == {"muva_lib.grounding"}


@pytest.mark.parametrize("stem", runs.list_notebooks())
def test_notebook_imports_from_a_few_modules(stem):
    modules = notebook_modules(stem)
    assert "muva_lib" in modules, f"{stem}: no `import muva_lib` (the front door muva_lib.notebook)"
    assert len(modules) <= MAX_MODULES, (f"{stem} imports from {len(modules)} muva_lib modules "
                                         f"({', '.join(sorted(modules))}); at most {MAX_MODULES}: use module access "
                                         "(viz.grounding.box_grid) or the front door (nb.save_figure, nb.cfg_for)")

