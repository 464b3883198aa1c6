"""The notebooks' own parameter check: a name papermill injects but the parameters cell does not declare is an error."""
from __future__ import annotations

import ast

import jupytext
import pytest

from muva_lib import runs

DECLARED = ["PROTOCOL", "METHOD", "SEED"]


def test_unknown_globals_are_the_undeclared_parameter_like_names():
    namespace = {"PROTOCOL": "a->b", "SEED": 0, "PROTOCLO": "synth-b->synth-c", "protocol": "x", "NOTEBOOK": "03",
                 "TOPK_": 3, "In": [], "Out": {}, "_": None, "__name__": "__main__", "np": object(), "x1": 1}
    assert runs.unknown_notebook_globals(namespace, DECLARED, bound={"NOTEBOOK"}) == ["PROTOCLO", "TOPK_", "protocol"]
    assert runs.unknown_notebook_globals({"PROTOCOL": 1, "METHOD": 2}, DECLARED) == []
    assert runs.unknown_notebook_globals({"NOTEBOOK": 1}, DECLARED) == ["NOTEBOOK"]  # not bound by the notebook


def test_check_names_the_unknown_the_close_match_and_the_declared():
    params = runs.notebook_parameters(runs.read_notebook("03_stage1_prompts"))
    namespace = {name: None for name in params}
    with pytest.raises(runs.UnknownParameterError) as exc:
        runs.check_notebook_parameters({**namespace, "PROTOCLO": "synth-b->synth-c"}, "03")
    message = str(exc.value)
    assert message.startswith("03_stage1_prompts: unknown parameter(s) PROTOCLO (did you mean PROTOCOL?);")
    assert message.endswith(f"it declares {', '.join(params)}")
    # the notebook's own constants (set later in it, or earlier in a re-run in the same kernel) pass
    runs.check_notebook_parameters({**namespace, "NOTEBOOK": "03_stage1_prompts", "FIG_DIR": None}, "03")


def _check_call(cell_source: str) -> ast.Call | None:
    for node in ast.walk(ast.parse(cell_source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "check_notebook_parameters":
            return node
    return None


@pytest.mark.parametrize("stem", runs.list_notebooks())
def test_every_notebook_checks_its_parameters_right_after_the_parameters_cell(stem):
    code = [c for c in runs.read_notebook(stem).cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    call = _check_call(code[1].source)
    assert call is not None, f"{stem}: the cell after 'parameters' must call check_notebook_parameters(globals(), ...)"
    assert ast.unparse(call) == f"check_notebook_parameters(globals(), {stem!r})"
    assert all(_check_call(c.source) is None for c in code[2:])


@pytest.mark.slow
def test_papermill_run_directly_with_a_misspelled_parameter_fails_before_any_work(tmp_path):
    import papermill
    from papermill.exceptions import PapermillExecutionError

    nb = jupytext.read(runs.notebook_dir() / "03_stage1_prompts.py")
    out = tmp_path / "out.ipynb"
    with pytest.raises(PapermillExecutionError) as exc:
        papermill.execute_notebook(nb, str(out), parameters={"PROTOCLO": "synth-b->synth-c"}, kernel_name="python3",
                                   cwd=str(runs.notebook_dir()), progress_bar=False)
    assert exc.value.ename == "UnknownParameterError"
    assert "PROTOCLO (did you mean PROTOCOL?)" in exc.value.evalue
    executed = jupytext.read(out)
    code = [c for c in executed.cells if c.cell_type == "code"]
    assert "injected-parameters" in code[1].metadata.get("tags", [])
    assert code[2].execution_count is not None and all(c.execution_count is None for c in code[3:])
