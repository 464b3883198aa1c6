"""The papermill runner on a throwaway notebook (parameters, failures, manifest, skip-if-done) and the run lookup."""
from __future__ import annotations

import json

import nbformat
import pytest

from muva_lib import notebook_runs, runs
from muva_lib.config import resolve
from muva_lib.train import RunDir

TINY = '''# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% tags=["parameters"]
N: int = 2  # a number
FAIL: bool = False  # raise in the second cell

# %%
import os
print("n x 3 =", N * 3, "cwd", os.path.basename(os.getcwd()))

# %%
if FAIL:
    raise RuntimeError("asked to fail")
'''


@pytest.fixture
def nb_dir(tmp_path, monkeypatch):
    folder = tmp_path / "nbs"
    folder.mkdir()
    (folder / "90_tiny.py").write_text(TINY)
    (folder / "91_broken.py").write_text(TINY.replace("# a number", "# a number, N=2 by default"))
    monkeypatch.setattr(notebook_runs, "notebook_dir", lambda: folder)  # where execution reads notebooks
    return folder


def _stdout(path) -> str:
    nb = nbformat.read(str(path), as_version=4)
    return "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if o.get("name") == "stdout")


def test_notebook_names(nb_dir):
    assert runs.list_notebooks() == ["90_tiny", "91_broken"]
    assert runs.notebook_stem("90") == runs.notebook_stem("tiny") == "90_tiny"
    with pytest.raises(ValueError, match="90_tiny"):
        runs.notebook_stem("99")


def test_unknown_and_unreadable_parameters_raise_before_running(nb_dir, tmp_path):
    with pytest.raises(runs.UnknownParameterError, match=r"unknown parameter\(s\) M; it declares N, FAIL"):
        runs.execute_notebook("90", tmp_path / "out", {"M": 1})
    with pytest.raises(runs.UnknownParameterError, match="cannot read the declaration of N"):
        runs.execute_notebook("91", tmp_path / "out", {"FAIL": True})
    assert not (tmp_path / "out" / "notebooks" / "90_tiny.ipynb").exists()


def test_prepare_only_injects_without_running(nb_dir, tmp_path):
    rec = runs.execute_notebook("90", tmp_path / "out", {"N": 5}, prepare_only=True)
    assert rec.status == "prepared"
    nb = nbformat.read(rec.output, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "N = 5" in injected[0].source
    assert _stdout(rec.output) == ""


@pytest.mark.slow
def test_execute_manifest_skip_and_failure(nb_dir, tmp_path):
    out = tmp_path / "out"
    rec = runs.execute_notebook("90", out, {"N": 4})
    assert rec.status == "done" and rec.seconds > 0
    assert "n x 3 = 12 cwd nbs" in _stdout(rec.output)  # the kernel ran in the notebooks folder
    entry = json.loads((out / "notebooks" / "manifest.json").read_text())["90_tiny"]
    assert entry["status"] == "done" and entry["parameters"] == {"N": 4}
    assert entry["parameter_hash"] == runs.parameter_hash({"N": 4}, (nb_dir / "90_tiny.py").read_text())
    assert set(entry["git"]) == {"commit", "dirty"} and entry["versions"]["papermill"]
    again = runs.execute_notebook("90", out, {"N": 4})
    assert again.status == "skipped" and again.parameter_hash == rec.parameter_hash
    with pytest.raises(runs.NotebookError) as exc:
        runs.execute_notebook("90", out, {"N": 4, "FAIL": True})
    msg = str(exc.value)
    assert "90_tiny" in msg and "RuntimeError: asked to fail" in msg and str(out / "notebooks" / "90_tiny.ipynb") in msg
    entry = runs.read_manifest(out)["90_tiny"]
    assert entry["status"] == "failed" and "asked to fail" in entry["error"]
    assert "n x 3 = 12" in _stdout(out / "notebooks" / "90_tiny.ipynb")  # the partial copy is kept
    assert runs.execute_notebook("90", out, {"N": 4}).status == "done"  # a failed entry is not skipped


def _finished_run(tmp_path, cfg, name: str | None = None) -> RunDir:
    run = RunDir.create(cfg, root=tmp_path)
    run.update_manifest(status="finished")
    return run


def test_find_run_matches_the_config_but_not_eval_period(tmp_path, monkeypatch):
    monkeypatch.setenv("MUVA_RUNS", str(tmp_path))
    cfg = resolve("clipreid", "smoke", "synth-a->synth-b", 0)
    assert runs.find_run(cfg) is None
    run = _finished_run(tmp_path, resolve("clipreid", "smoke", "synth-a->synth-b", 0, ["stage2.eval_period=2"]))
    assert runs.find_run(cfg).root == run.root
    assert runs.require_run(cfg).root == run.root
    # a run that also agrees on eval_period wins, older or newer (the quick start asks for its curve)
    exact = _finished_run(tmp_path, cfg)
    newer = _finished_run(tmp_path, resolve("clipreid", "smoke", "synth-a->synth-b", 0, ["stage2.eval_period=4"]))
    assert run.root.name < exact.root.name < newer.root.name  # "newest" is the last name
    assert runs.find_run(cfg).root == exact.root
    assert runs.find_run(resolve("clipreid", "smoke", "synth-a->synth-b", 0,
                                 ["stage2.eval_period=2"])).root == run.root
    assert runs.find_run(resolve("clipreid", "smoke", "synth-a->synth-b", 0,
                                 ["stage2.eval_period=3"])).root == newer.root  # none agrees: the newest
    assert runs.find_run(resolve("clipreid", "smoke", "synth-a->synth-b", 1)) is None  # other seed
    assert runs.find_run(resolve("clipreid", "smoke", "synth-a->synth-b", 0, ["stage2.epochs=1"])) is None
    unfinished = RunDir.create(resolve("muva", "smoke", "synth-a->synth-b", 0), root=tmp_path)
    assert runs.find_run(resolve("muva", "smoke", "synth-a->synth-b", 0)) is None
    with pytest.raises(runs.RunNotFoundError, match="not a finished run"):
        runs.require_run(cfg, unfinished.root)


def test_require_run_names_the_command_for_the_paper_preset(tmp_path, monkeypatch):
    monkeypatch.setenv("MUVA_RUNS", str(tmp_path))
    cfg = resolve("muva", "paper", "ma->d", 2)
    with pytest.raises(runs.RunNotFoundError, match=r"python -m muva_lib run --protocol 'ma->d' --method muva "
                                                    r"--preset paper --seeds 2"):
        runs.require_run(cfg)


@pytest.mark.slow
def test_require_run_trains_a_smoke_run_once(train_env):
    cfg = resolve("clipreid", "smoke", train_env.protocol, 0, train_env.overrides)
    run = runs.require_run(cfg)
    assert run.manifest()["status"] == "finished" and run.root.parent.parent.parent == train_env.runs
    assert runs.require_run(cfg).root == run.root  # found, not trained again
    assert len(list(run.root.parent.iterdir())) == 1


def test_output_dirs_of_a_run_folder_and_of_the_committed_figures(tmp_path, monkeypatch):
    monkeypatch.setenv("MUVA_FIGURES", str(tmp_path / "figs"))
    assert runs.output_dirs(tmp_path / "run", "03_stage1_prompts") == (tmp_path / "run" / "figures",
                                                                       tmp_path / "run" / "tables")
    assert runs.output_dirs("", "03_stage1_prompts") == (tmp_path / "figs" / "03_stage1_prompts",
                                                         tmp_path / "figs" / "tables")
