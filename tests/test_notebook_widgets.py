"""Executed notebooks lose their ipywidgets state (``metadata.widgets``) before they are committed (make notebooks)."""
from __future__ import annotations

import nbformat

from muva_lib.notebook_runs import drop_widget_state, strip_widget_state


def test_widget_state_is_dropped_from_executed_notebooks(tmp_path):
    nb = {"cells": [], "metadata": {"kernelspec": {"name": "python3"},
                                    "widgets": {"application/vnd.jupyter.widget-state+json": {}}}}
    assert drop_widget_state(nb) and nb["metadata"] == {"kernelspec": {"name": "python3"}}
    assert not drop_widget_state(nb) and not drop_widget_state({"cells": []})  # nothing to drop: unchanged

    with_state, without = nbformat.v4.new_notebook(), nbformat.v4.new_notebook()
    with_state.cells.append(nbformat.v4.new_code_cell("1 + 1"))
    with_state.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"x": 1}}}
    nbformat.write(with_state, tmp_path / "a.ipynb")
    nbformat.write(without, tmp_path / "b.ipynb")
    before = (tmp_path / "b.ipynb").read_bytes()
    assert strip_widget_state([tmp_path / "a.ipynb", tmp_path / "b.ipynb"]) == [tmp_path / "a.ipynb"]
    stripped = nbformat.read(tmp_path / "a.ipynb", as_version=4)
    assert "widgets" not in stripped.metadata and stripped.cells[0].source == "1 + 1"
    assert (tmp_path / "b.ipynb").read_bytes() == before
