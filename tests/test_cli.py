"""The command line end to end on small inputs: protocols, demo (the quickstart notebook), run."""
from __future__ import annotations

import re

import pytest

from muva_lib.__main__ import COMMANDS, main


def test_every_command_module_loads_and_has_help(capsys):
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exc:
            main([name, "--help"])
        assert exc.value.code == 0
        assert name in capsys.readouterr().out


def test_protocols_command(capsys):
    assert main(["protocols", "--kind", "synthetic", "--no-check"]) == 0
    out = capsys.readouterr().out
    assert "synth-a+synth-b->synth-c" in out and "ma->d" not in out


@pytest.mark.slow
def test_demo_executes_the_quickstart_notebook(train_env, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MUVA_FIGURES", str(tmp_path / "figs"))
    assert main(["demo", *train_env.overrides, "stage1.epochs=2"]) == 0
    out = capsys.readouterr().out
    table = out[out.index("| method"):].splitlines()
    assert [r.split("|")[1].strip() for r in table[2:6]] == ["MUVA", "CLIP-ReID", "colour histogram",
                                                              "colour histogram + LDA"]
    demo = train_env.runs / "demo"  # everything under runs/demo; the committed figures/ untouched
    for name in ("sample_identities", "vge_masks", "stage1_losses", "stage2_losses", "target_map"):
        assert (demo / "figures" / f"{name}.png").stat().st_size > 5_000
    assert (demo / "tables" / "quickstart.tex").is_file()
    assert not (tmp_path / "figs").exists()
    assert f"figures:           {demo / 'figures'}/" in out and f"results table:     {demo / 'tables'}" in out
    nb = demo / "notebooks" / "00_quickstart.ipynb"
    assert nb.is_file() and "every method beats the colour baselines" in nb.read_text()
    assert len(list((train_env.runs / "synth-a-to-synth-b").iterdir())) == 2  # muva, clipreid
    assert main(["demo", *train_env.overrides, "stage1.epochs=2"]) == 0  # done: skipped, the table printed again
    out = capsys.readouterr().out
    assert "skipped" in out and "| CLIP-ReID" in out


@pytest.mark.slow
def test_run_trains_then_executes_the_run_notebooks_and_resumes(train_env, capsys):
    args = ["run", "--protocol", train_env.protocol, "--method", "clipreid", "--notebooks", "04",
            *train_env.overrides]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "04_stage2_training   done" in out
    (run,) = (train_env.runs / "synth-a-to-synth-b" / "clipreid").iterdir()
    assert (run / "notebooks" / "04_stage2_training.ipynb").is_file()
    assert (run / "figures" / "stage2_curves.png").is_file()  # RUN_DIR figures stay in the run
    assert main(args) == 0
    assert "04_stage2_training   skipped" in capsys.readouterr().out
    assert main(["run", "--protocol", train_env.protocol, "--notebooks", "09"]) == 2  # no such notebook
    assert main(["run", "--method", "muva"]) == 2  # no protocol


def test_demo_refuses_a_real_protocol(capsys):
    assert main(["demo", "--protocol", "ma->d"]) == 2
    assert "synthetic" in capsys.readouterr().out


def test_run_all_synthetic_prepare_only_checks_every_notebook_without_training(tmp_path, monkeypatch, capsys):
    from muva_lib.data.protocols import synthetic_protocols
    from muva_lib.runs import RUN_NOTEBOOKS, SWEEP_METHODS

    monkeypatch.setenv("MUVA_RUNS", str(tmp_path))
    assert main(["run", "--all-synthetic", "--prepare-only", "stage2.epochs=1"]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if re.match(r"\s+0\d_\w+\s+prepared\s", ln)]
    assert len(lines) == len(synthetic_protocols()) * len(SWEEP_METHODS) * len(RUN_NOTEBOOKS)
    assert "06_results: prepared" in out
    prepared = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("_prepared/*/*/*/notebooks/*.ipynb"))
    assert len(prepared) == len(synthetic_protocols()) * len(SWEEP_METHODS) * len(RUN_NOTEBOOKS)
    assert "_prepared/synth-a_synth-b-to-synth-c/clipreid/smoke-s0/notebooks/04_stage2_training.ipynb" in prepared
    assert not list(tmp_path.glob("synth-*"))  # nothing trained


def test_plan_jobs_seed_by_seed_with_ablations_and_their_recipes():
    from muva_lib.commands.run import Job, plan_jobs
    from muva_lib.config import ABLATIONS
    from muva_lib.data.protocols import synthetic_protocols
    from muva_lib.runs import SWEEP_METHODS

    assert plan_jobs("ma->d", "pivl", [0, 1]) == [Job("ma->d", "pivl", 0), Job("ma->d", "pivl", 1)]
    with pytest.raises(ValueError, match="--ablations"):
        plan_jobs(None, "muva", [0])
    jobs = plan_jobs(None, "muva", [0, 1], all_synthetic=True, ablations=True)
    per_seed = len(synthetic_protocols()) * len(SWEEP_METHODS) + len(ABLATIONS)  # the recipes are in the sweep
    assert len(jobs) == 2 * per_seed and len(set(jobs)) == len(jobs)
    assert [j.seed for j in jobs] == [0] * per_seed + [1] * per_seed
    abl = plan_jobs("synth-b->synth-c", "muva", [3], ablations=True)
    assert {j.variant for j in abl} == {"", *ABLATIONS}
    assert {(j.method, j.variant) for j in abl if not j.variant} == {("muva", ""), ("pivl", "")}
    assert all(j.protocol == "synth-b->synth-c" and j.seed == 3 for j in abl)
    no_fusion = next(j for j in abl if j.variant == "no-fusion")
    assert no_fusion.method == "pivl" and "stage2.w_fusion=0" in no_fusion.overrides


def test_run_ablations_prepare_only_keeps_variants_apart(tmp_path, monkeypatch, capsys):
    from muva_lib.config import ABLATIONS

    monkeypatch.setenv("MUVA_RUNS", str(tmp_path))
    assert main(["run", "--ablations", "--prepare-only", "--notebooks", "04"]) == 0
    out = capsys.readouterr().out
    prepared = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("_prepared/*/*/*/notebooks/*.ipynb"))
    assert len(prepared) == len(ABLATIONS) + 2
    assert "_prepared/synth-a-to-synth-b/muva/smoke-s0-vge-gt/notebooks/04_stage2_training.ipynb" in prepared
    assert "synth-a->synth-b / pivl / no-fusion / smoke / seed 0" in out and "06_results: prepared" in out
    assert main(["run", "--ablations", "--jobs", "0"]) == 2


def test_run_jobs_side_by_side_write_logs_and_results(train_env, capsys):
    from muva_lib.tables import collect_results

    args = ["run", "--protocol", train_env.protocol, "--method", "clipreid", "--seeds", "0", "1", "--jobs", "2",
            "--notebooks", *train_env.overrides]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count(": done in ") == 2, out
    logs = sorted(p.name for p in (train_env.runs / "_logs").glob("*.log"))
    assert logs == ["synth-a-to-synth-b-clipreid-smoke-s0.log", "synth-a-to-synth-b-clipreid-smoke-s1.log"]
    df = collect_results(train_env.runs)
    assert sorted(df["seed"]) == [0, 1] and set(df["variant"]) == {""}


def test_bad_input_is_one_line_unless_a_traceback_is_asked_for(monkeypatch, capsys):
    """`error: ...` and exit 2 for the library's own errors; MUVA_TRACEBACK=1 re-raises them for debugging."""
    from muva_lib.__main__ import main
    from muva_lib.config import ConfigError

    argv = ["train", "--protocol", "synth-a->synth-b", "--preset", "smoke", "stage1.lr=nan"]
    monkeypatch.delenv("MUVA_TRACEBACK", raising=False)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "stage1.lr" in err
    monkeypatch.setenv("MUVA_TRACEBACK", "1")
    with pytest.raises(ConfigError, match="stage1.lr"):
        main(argv)
