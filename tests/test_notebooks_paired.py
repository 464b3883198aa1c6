"""Every notebook pair is in sync (.py percent source vs committed .ipynb) and follows the parameters convention."""
from __future__ import annotations

import ast

import jupytext
import pytest

from muva_lib.paths import repo_root

NB_DIR = repo_root() / "notebooks"
SOURCES = sorted(NB_DIR.glob("[0-9][0-9]_*.py"))
SHARED = {"PROTOCOL", "METHOD", "PRESET", "SEED", "DEVICE", "RUN_DIR", "OVERRIDES"}


def _cells(nb):
    return [(c.cell_type, c.source.strip(), tuple(sorted(c.metadata.get("tags", []))))
            for c in nb.cells]


def test_notebooks_exist():
    assert SOURCES, f"no notebooks found in {NB_DIR}"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_pair_in_sync(src):
    ipynb = src.with_suffix(".ipynb")
    assert ipynb.is_file(), f"{ipynb.name} missing: run `make notebooks`"
    a = _cells(jupytext.read(src))
    b = _cells(jupytext.read(ipynb))
    assert a == b, f"{src.name} and {ipynb.name} differ: run `make notebooks` and commit both"


@pytest.mark.parametrize("src", SOURCES, ids=lambda p: p.stem)
def test_one_parameters_cell_first_with_annotated_commented_shared_names(src):
    nb = jupytext.read(src)
    code = [c for c in nb.cells if c.cell_type == "code"]
    tagged = [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [0], f"{src.name}: exactly one 'parameters' cell, the first code cell"
    lines = [ln for ln in code[0].source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    names = set()
    for ln in lines:
        node = ast.parse(ln).body[0]
        assert isinstance(node, ast.AnnAssign), f"{src.name}: parameter line not annotated: {ln!r}"
        assert isinstance(node.value, ast.Constant), f"{src.name}: parameter must be a literal: {ln!r}"
        assert "#" in ln, f"{src.name}: parameter needs a help comment: {ln!r}"
        names.add(node.target.id)
    assert SHARED <= names, f"{src.name}: missing shared parameters {sorted(SHARED - names)}"
    assert all(n.isupper() for n in names)
