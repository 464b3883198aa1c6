"""The demo writes under runs/ only: its parameters and paths, and the quickstart's outputs under RUN_DIR."""
from __future__ import annotations

import ast
import subprocess

import pytest
import torch

from muva_lib import runs
from muva_lib.__main__ import build_parser
from muva_lib.commands import demo
from muva_lib.paths import repo_root

#: notebooks whose figures and tables follow their RUN_DIR parameter through runs.output_dirs
WRITERS = ("00_quickstart", "06_results")


def test_output_dirs_follow_run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("MUVA_FIGURES", str(tmp_path / "figs"))
    assert runs.output_dirs(tmp_path / "r", "00_quickstart") == (tmp_path / "r" / "figures", tmp_path / "r" / "tables")
    assert runs.output_dirs("", "00_quickstart") == (tmp_path / "figs" / "00_quickstart", tmp_path / "figs" / "tables")


def test_demo_passes_its_run_dir_by_default_and_run_dir_still_works(tmp_path, monkeypatch):
    monkeypatch.setenv("MUVA_RUNS", str(tmp_path / "runs"))
    args = build_parser().parse_args(["demo", "stage2.epochs=2"])
    paths = demo.demo_paths(args.run_dir)
    assert paths == demo.DemoPaths(tmp_path / "runs" / "demo", tmp_path / "runs" / "demo" / "notebooks" /
                                   "00_quickstart.ipynb", tmp_path / "runs" / "demo" / "figures",
                                   tmp_path / "runs" / "demo" / "tables" / "quickstart.md")
    params = demo.demo_parameters(args, paths, "synth-a->synth-b")
    assert params == {"PROTOCOL": "synth-a->synth-b", "SEED": 0, "METHODS": "muva,clipreid",
                      "RUN_DIR": str(tmp_path / "runs" / "demo"), "OVERRIDES": "stage2.epochs=2"}
    runs.check_parameters("00_quickstart", runs.read_notebook("00_quickstart"), params)
    args = build_parser().parse_args(["demo", "--run-dir", str(tmp_path / "mine")])
    paths = demo.demo_paths(args.run_dir)
    assert all(p.is_relative_to(tmp_path / "mine") for p in (paths.notebook, paths.figures, paths.table))
    assert demo.demo_parameters(args, paths, "synth-a->synth-b")["RUN_DIR"] == str(tmp_path / "mine")


def test_default_demo_outputs_are_ignored_by_git(monkeypatch):
    """`git status --porcelain` stays clean after `make demo`: every path it writes is git-ignored."""
    monkeypatch.delenv("MUVA_RUNS", raising=False)
    paths = demo.demo_paths()
    assert paths.out == repo_root() / "runs" / "demo"
    written = [paths.notebook, paths.notebook.parent / "manifest.json", paths.figures / "vge_masks.png",
               paths.figures / "vge_masks.pdf", paths.table, paths.table.with_suffix(".tex")]
    for path in written:
        check = subprocess.run(["git", "check-ignore", "-q", str(path)], cwd=repo_root())
        assert check.returncode == 0, f"{path} is not git-ignored: the demo would dirty the checkout"


def _cells_until(stem: str, name: str) -> str:
    """The code of a notebook up to the cell that sets ``name`` (parameters and check cell included)."""
    out = []
    for cell in runs.read_notebook(stem).cells:
        if cell.cell_type == "code":
            out.append(cell.source)
            if any(isinstance(t, ast.Name) and t.id == name for node in ast.walk(ast.parse(cell.source))
                   if isinstance(node, ast.Assign) for t in ast.walk(node.targets[0])):
                return "\n".join(out)
    raise AssertionError(f"{stem} never sets {name}")


@pytest.mark.parametrize("stem", WRITERS)
def test_notebook_outputs_resolve_under_run_dir(stem, tmp_path, monkeypatch):
    """With RUN_DIR set, the front door puts the notebook's figures and tables under it, and every figure and
    table the notebook writes goes through the front door (nb.save_figure / nb.save_table)."""
    monkeypatch.setenv("MUVA_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("MUVA_FIGURES", str(tmp_path / "figs"))
    source = _cells_until(stem, "nb").replace('RUN_DIR: str = ""', f"RUN_DIR: str = {str(tmp_path / 'd')!r}")
    namespace: dict = {}
    threads = torch.get_num_threads()
    try:
        exec(compile(source, stem, "exec"), namespace)  # the notebook's first cells, as papermill runs them
    finally:
        torch.set_num_threads(threads)  # the notebook sets the preset's
    nb = namespace["nb"]
    assert (nb.fig_dir, nb.table_dir) == (tmp_path / "d" / "figures", tmp_path / "d" / "tables")
    writes = [node for c in runs.read_notebook(stem).cells if c.cell_type == "code"
              for node in ast.walk(ast.parse(c.source)) if isinstance(node, ast.Call)
              and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("save_figure", "export_table",
                                                                              "save_table")]
    assert writes, f"{stem} writes nothing?"
    for call in writes:
        assert ast.unparse(call.func) in ("nb.save_figure", "nb.save_table"), \
            f"{stem}: {ast.unparse(call)} must go through the front door (nb.save_figure / nb.save_table)"
