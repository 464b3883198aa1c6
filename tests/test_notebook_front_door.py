"""The notebooks' front door (muva_lib.notebook): config, threads, seeds, device and output folders at once; the run
found or trained on first use only; a given RUN_DIR used as is; the paper preset's missing run named."""
from __future__ import annotations

import pytest
import torch

import muva_lib
from muva_lib import notebook_setup
from muva_lib.config import resolve
from muva_lib.extract import FeatureExtractor
from muva_lib.paths import figures_root
from muva_lib.runs import RunNotFoundError


def test_setup_resolves_config_threads_seeds_device_and_folders(monkeypatch, tmp_path):
    monkeypatch.setenv("MUVA_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: calls.append(n))  # the test process keeps its budget
    calls: list[int] = []
    nb = muva_lib.notebook("synth-a->synth-b", "clipreid", "smoke", 3, overrides="threads=2 stage2.epochs=4",
                           device="cpu", name="04_stage2_training")
    assert nb.cfg == resolve("clipreid", "smoke", "synth-a->synth-b", 3, ["threads=2", "stage2.epochs=4"])
    assert calls == [2] and nb.device == torch.device("cpu")
    first = torch.rand(3)
    torch.manual_seed(nb.cfg.seed)
    assert torch.equal(first, torch.rand(3))  # seeded with the run's seed
    assert (nb.fig_dir, nb.table_dir) == (figures_root() / "04_stage2_training", figures_root() / "tables")
    assert nb.describe() == "clipreid on synth-a->synth-b (smoke, seed 3)"
    assert "run" not in vars(nb) and not (tmp_path / "runs").exists()  # nothing looked up or trained yet

    listed = muva_lib.notebook("synth-a->synth-b", "muva", overrides=["stage2.epochs=4"], run_dir=tmp_path / "r")
    assert listed.cfg.stage2.epochs == 4 and listed.run_dir == str(tmp_path / "r")
    assert (listed.fig_dir, listed.table_dir) == (tmp_path / "r" / "figures", tmp_path / "r" / "tables")
    assert muva_lib.notebook is notebook_setup.notebook and muva_lib.NotebookSetup is notebook_setup.NotebookSetup


def test_bad_parameters_stop_the_setup_cell():
    with pytest.raises(ValueError, match="did you mean epochs"):
        muva_lib.notebook("synth-a->synth-b", "muva", overrides="stage2.epoch=1")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            muva_lib.notebook("synth-a->synth-b", "muva", device="cuda")


def test_paper_run_missing_is_named_on_first_use(monkeypatch, tmp_path):
    monkeypatch.setenv("MUVA_RUNS", str(tmp_path / "runs"))
    nb = muva_lib.notebook("synth-a->synth-b", "muva", "paper", 0)  # the setup itself needs no run
    with pytest.raises(RunNotFoundError, match="python -m muva_lib run --protocol 'synth-a->synth-b' --method muva "
                                               "--preset paper"):
        nb.run


@pytest.mark.slow
def test_smoke_run_is_trained_once_then_found(train_env, synth_small):
    args = (train_env.protocol, "muva", "smoke", 0)
    nb = muva_lib.notebook(*args, overrides=train_env.overrides, device="cpu", name="03_stage1_prompts")
    run = nb.run  # none yet: trained now (smoke)
    assert run.manifest()["status"] == "finished" and run.root.parent == train_env.runs / "synth-a-to-synth-b" / "muva"
    assert nb.run is run and [int(r["epoch"]) for r in nb.result.stage2] == [1, 2]  # read back, cached
    assert set(nb.result.metrics) == {"synth-b"}

    again = muva_lib.notebook(*args, overrides=" ".join(train_env.overrides), name="03_stage1_prompts")
    assert again.run.root == run.root and len(list(run.root.parent.iterdir())) == 1  # found, not trained again

    given = muva_lib.notebook(*args, overrides=train_env.overrides, device="cpu", run_dir=run.root,
                              name="03_stage1_prompts")
    assert given.run.root == run.root and given.fig_dir == run.root / "figures"
    ext = given.extractor()
    assert isinstance(ext, FeatureExtractor) and ext.device == torch.device("cpu")
    images = sorted((synth_small.root / "synth-b" / "query").glob("*.jpg"))[:2]
    assert len(images) == 2 and ext(images).shape[0] == 2

    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots()
    ax.plot([0, 1])
    png = given.save_figure(fig, "probe")
    plt.close(fig)
    assert png == run.root / "figures" / "probe.png" and png.with_suffix(".pdf").is_file()


def test_cfg_for_resolves_another_method_with_the_notebooks_overrides(monkeypatch, tmp_path):
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    nb = muva_lib.notebook("synth-a->synth-b", "muva", "smoke", 2, overrides="stage2.epochs=4 stage1.epochs=3")
    assert nb.overrides == ("stage2.epochs=4", "stage1.epochs=3")
    other = nb.cfg_for("clipreid", ["stage2.eval_period=2"])
    assert other == resolve("clipreid", "smoke", "synth-a->synth-b", 2,
                            ["stage2.epochs=4", "stage1.epochs=3", "stage2.eval_period=2"])
    assert nb.cfg_for("muva") == nb.cfg and nb.cfg_for("muva", "stage2.epochs=5").stage2.epochs == 5  # extra wins
    with pytest.raises(ValueError, match="did you mean epochs"):
        nb.cfg_for("clipreid", "stage2.epoch=1")


def test_run_for_names_the_missing_paper_run_of_that_config(monkeypatch, tmp_path):
    monkeypatch.setenv("MUVA_RUNS", str(tmp_path / "runs"))
    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    nb = muva_lib.notebook("synth-a->synth-b", "muva", "paper", 0, run_dir=tmp_path / "given")
    with pytest.raises(RunNotFoundError, match="--method clipreid --preset paper"):
        nb.run_for(nb.cfg_for("clipreid"))  # the config's own run, never the notebook's RUN_DIR
    assert "run" not in vars(nb)


def test_save_table_writes_markdown_and_latex_to_the_table_dir(monkeypatch, tmp_path):
    import pandas as pd

    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    from muva_lib.tables import export_table

    nb = muva_lib.notebook("synth-a->synth-b", "muva", run_dir=tmp_path / "r", name="02_calibration")
    table = pd.DataFrame({"part": ["head", "legs"], "IoU": [0.8125, 0.5]})
    md, tex = nb.save_table(table, "calibration", "IoU per part")
    assert (md, tex) == (tmp_path / "r" / "tables" / "calibration.md", tmp_path / "r" / "tables" / "calibration.tex")
    ref_md, ref_tex = export_table(table, "calibration", "IoU per part", out_dir=tmp_path / "ref")
    assert md.read_bytes() == ref_md.read_bytes() and tex.read_bytes() == ref_tex.read_bytes()
    assert md.read_text().startswith("IoU per part\n")
