"""Results tables: reported numbers as data, collection of fake run folders, paper layout, Markdown and LaTeX."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from muva_lib import tables as tb
from muva_lib.data.protocols import PROTOCOLS


def _fake_run(root: Path, protocol: str, method: str, seed: int, maps: dict[str, tuple[float, float]], *,
              name: str = "20260101-000000", preset: str = "smoke", status: str = "finished", variant: str = "",
              overrides: tuple[str, ...] = (), config: bool = False) -> Path:
    """A finished-looking run folder; ``config``: with the ``config.json`` of its resolved config (``overrides``
    included), so that the sweep's config lookups find it."""
    from muva_lib.paths import slug

    init = next((o.split("=", 1)[1] or "random" for o in overrides if o.startswith("model.pretrained=")), "")
    tag = "-".join(x for x in (variant, init.replace(":", "_")) if x)
    run = root / slug(protocol) / method / f"{name}-{preset}-s{seed}{'-' + tag if tag else ''}"
    (run / "metrics").mkdir(parents=True)
    if config:
        from muva_lib.config import resolve, save

        save(resolve(method, preset, protocol, seed, list(overrides)), run / "config.json")
        (run / "logs").mkdir()
        (run / "logs" / "stage2.csv").write_text("epoch,loss\n1,2.0\n")
        (run / "checkpoints").mkdir()
        (run / "checkpoints" / "final.pt").write_bytes(b"x" * 100)
    (run / "manifest.json").write_text(json.dumps({"status": status, "protocol": protocol, "method": method,
                                                   "preset": preset, "seed": seed, "config_hash": "abc",
                                                   **({"variant": variant} if variant else {})}))
    for target, (m, r1) in maps.items():
        (run / "metrics" / f"{target}.json").write_text(json.dumps(
            {"target": target, "mAP": m, "rank1": r1, "rank5": r1, "rank10": r1, "mINP": m / 2}))
    return run


def test_paper_tables_are_well_formed_and_name_real_protocols():
    for name, t in tb.PAPER_TABLES.items():
        rows = tb.paper_rows(name)  # parses every cell, checks the counts
        assert set(rows["protocol"]) <= set(t.protocols)
        for p in t.protocols:
            assert p in PROTOCOLS, f"{name}: {p} is not a named protocol"
    t1 = tb.paper_rows("table1")
    muva = t1[t1["method"] == "MUVA"].set_index("protocol")
    assert muva.loc["ma->d", "mAP"] == 52.0 and muva.loc["ms->ma", "R1"] == 82.7
    t3 = tb.paper_rows("table3")
    assert t3[(t3["method"] == "MUVA") & (t3["protocol"] == "ma+d+ms->c3")]["R1"].item() == 49.6


def test_cell_formats():
    assert tb.cell(0.5234, 0.7) == "52.3 / 70.0"
    assert tb.cell(0.5, 0.7, 0.012, float("nan")) == "50.0±1.2 / 70.0"
    assert tb.cell(52.0, 72.1, percent=True) == "52.0 / 72.1"
    assert tb.cell(None, 0.1) == "-" and tb.cell(float("nan"), 0.1) == "-"


def test_collect_results_and_summary_over_seeds(tmp_path):
    _fake_run(tmp_path, "synth-a->synth-b", "muva", 0, {"synth-b": (0.40, 0.60)})
    _fake_run(tmp_path, "synth-a->synth-b", "muva", 1, {"synth-b": (0.50, 0.70)})
    _fake_run(tmp_path, "synth-a->synth-b", "clipreid", 0, {"synth-b": (0.30, 0.50)})
    _fake_run(tmp_path, "synth-a->synth-b", "clipreid", 1, {"synth-b": (0.9, 0.9)}, status="running")
    _fake_run(tmp_path, "synth-a->synth-b", "muva", 0, {"synth-b": (0.10, 0.10)}, name="20250101-000000")  # older
    _fake_run(tmp_path, "ma->d", "muva", 0, {"dukemtmc": (0.55, 0.75)}, preset="paper")
    df = tb.collect_results(tmp_path)
    assert list(df.columns) == tb.RESULT_COLUMNS
    assert len(df) == 4  # the running run and the older duplicate are left out
    assert sorted(df["mAP"]) == [0.30, 0.40, 0.50, 0.55]
    assert len(tb.collect_results(tmp_path, preset="paper")) == 1
    s = tb.summarise(df)
    row = s[(s["protocol"] == "synth-a->synth-b") & (s["method"] == "muva")].iloc[0]
    assert row["seeds"] == 2
    assert row["mAP"] == pytest.approx(0.45) and row["mAP_std"] == pytest.approx(0.0707107, abs=1e-6)
    assert row["rank1"] == pytest.approx(0.65)
    one = s[s["method"] == "clipreid"].iloc[0]
    assert one["seeds"] == 1 and pd.isna(one["mAP_std"])


def test_collect_results_of_an_empty_root(tmp_path):
    df = tb.collect_results(tmp_path / "nothing")
    assert df.empty and list(df.columns) == tb.RESULT_COLUMNS
    assert tb.summarise(df).empty


def test_paper_table_layout_with_our_rows_on_top(tmp_path):
    _fake_run(tmp_path, "ma->d", "muva", 0, {"dukemtmc": (0.50, 0.70)}, preset="paper")
    _fake_run(tmp_path, "ma->d", "muva", 1, {"dukemtmc": (0.54, 0.74)}, preset="paper")
    _fake_run(tmp_path, "d->ma", "clipreid", 0, {"market1501": (0.40, 0.65)}, preset="paper")
    s = tb.summarise(tb.collect_results(tmp_path))
    t = tb.paper_table("table1", s, methods=["muva", "clipreid"])
    assert list(t.columns) == ["method", "source", "ma->d", "ma->ms", "d->ma", "d->ms", "ms->ma", "ms->d"]
    assert t.iloc[0].tolist() == ["MUVA", "ours (paper, 2 seeds)", "52.0±2.8 / 72.0±2.8", "-", "-", "-", "-", "-"]
    assert t.iloc[1].tolist()[:5] == ["CLIP-ReID", "ours (paper, 1 seed)", "-", "-", "40.0 / 65.0"]
    assert t.iloc[2].tolist() == ["MUVA", "MUVA Table 1", "52.0 / 72.1", "27.6 / 56.8", "51.4 / 78.3",
                                  "26.8 / 55.7", "59.5 / 82.7", "62.0 / 77.8"]
    assert len(t) == 2 + len(tb.PAPER_TABLES["table1"].rows)
    assert tb.paper_table("table2").iloc[0]["method"] == "MUVA"  # no runs: the reported rows only


def test_synthetic_table_and_extra_rows(tmp_path):
    _fake_run(tmp_path, "synth-a->synth-b", "muva", 0, {"synth-b": (0.40, 0.60)})
    _fake_run(tmp_path, "synth-b->synth-c", "clipreid", 0, {"synth-c": (0.30, 0.50)})
    s = tb.summarise(tb.collect_results(tmp_path))
    t = tb.synthetic_table(s, methods=["muva", "clipreid"],
                           extra=[{"method": "colour histogram", "source": "baseline", "synth-a->synth-b": "9.0 / 20.0"}])
    assert list(t.columns) == ["method", "source", "synth-a->synth-b", "synth-b->synth-c"]
    assert t["synth-a->synth-b"].tolist() == ["40.0 / 60.0", "-", "9.0 / 20.0"]
    assert t["synth-b->synth-c"].tolist() == ["-", "30.0 / 50.0", "-"]


def test_markdown_and_latex_by_hand(tmp_path):
    t = pd.DataFrame([{"method": "MUVA", "source": "ours_1", "ma->d": "52.0±1.0 / 72.1"},
                      {"method": "RILL†", "source": "50% & more", "ma->d": "-"}])
    md = tb.to_markdown(t)
    assert md.splitlines() == [
        "| method | source     | ma->d           |",
        "|--------|------------|-----------------|",
        "| MUVA   | ours_1     | 52.0±1.0 / 72.1 |",
        "| RILL†  | 50% & more | -               |",
    ]
    tex = tb.to_latex(t, caption="A {caption}", label="tab:x")
    assert tex.splitlines() == [
        r"\begin{table}[t]", r"\centering", r"\small", r"\caption{A \{caption\}}", r"\label{tab:x}",
        r"\begin{tabular}{llc}", r"\toprule", r"method & source & ma$\to$d \\", r"\midrule",
        r"MUVA & ours\_1 & 52.0$\pm$1.0 / 72.1 \\", r"RILL\dag{} & 50\% \& more & - \\",
        r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    md_path, tex_path = tb.export_table(t, "x", "caption", out_dir=tmp_path)
    first = (md_path.read_bytes(), tex_path.read_bytes())
    tb.export_table(t, "x", "caption", out_dir=tmp_path)
    assert (md_path.read_bytes(), tex_path.read_bytes()) == first
    assert md_path.read_text().startswith("caption\n\n| method")


def test_export_defaults_to_figures_tables(tmp_path, monkeypatch):
    monkeypatch.setenv("MUVA_FIGURES", str(tmp_path))
    md, tex = tb.export_table(tb.paper_table("table3"), "table3")
    assert md == tmp_path / "tables" / "table3.md" and tex.suffix == ".tex"


def test_metrics_table_side_by_side():
    t = tb.metrics_table({"MUVA": {"mAP": 0.5, "rank1": 0.61, "rank5": 0.8, "mINP": 0.2},
                          "colour histogram": {"mAP": 0.05, "rank1": 0.1}})
    assert list(t.columns) == ["method", "mAP", "R1", "R5", "mINP"]
    assert t.iloc[0].tolist() == ["MUVA", "50.0", "61.0", "80.0", "20.0"]
    assert t.iloc[1].tolist() == ["colour histogram", "5.0", "10.0", "-", "-"]


def test_real_table_and_own_target_with_extra_targets(tmp_path):
    # a synthetic run also evaluated on the real crops ("real-vtest" sorts before "synth-b")
    _fake_run(tmp_path, "synth-a->synth-b", "muva", 0, {"synth-b": (0.40, 0.60), "real-vtest": (0.20, 0.25)})
    _fake_run(tmp_path, "synth-a->synth-b", "muva", 1, {"synth-b": (0.50, 0.70), "real-vtest": (0.30, 0.35)})
    _fake_run(tmp_path, "real-vtest", "muva", 0, {"real-vtest": (0.33, 0.40)})
    _fake_run(tmp_path, "synth-a->synth-b", "clipreid", 0, {"synth-b": (0.30, 0.50)})
    s = tb.summarise(tb.collect_results(tmp_path))
    synth = tb.synthetic_table(s, ["muva", "clipreid"])
    assert synth.loc[0, "synth-a->synth-b"].startswith("45.0±7.1 / 65.0±7.1")  # synth-b, not real-vtest
    real = tb.real_table(s, ["muva", "clipreid"])
    assert list(real.columns) == ["method", "source", "trained on synth-a->synth-b",
                                  "trained on real-vtest (own split)"]
    assert real.to_dict("records") == [{"method": "MUVA", "source": "ours (smoke, 2 seeds)",
                                        "trained on synth-a->synth-b": "25.0±7.1 / 30.0±7.1",
                                        "trained on real-vtest (own split)": "33.0 / 40.0"}]
    assert tb.real_table(tb.summarise(tb.collect_results(tmp_path / "none"))).empty
    cols = tb.real_columns()
    with_extra = tb.real_table(s, ["muva"], extra=[{"method": "colour histogram", "source": "baseline", cols[1]: "1 / 2"}])
    assert with_extra.iloc[-1].tolist() == ["colour histogram", "baseline", "-", "1 / 2"]


def test_colour_rows_score_each_column_with_its_own_training_set(fake_items):
    from muva_lib.baselines import colour_rows, evaluate_colour_baseline

    from dataclasses import replace

    items = [replace(it, pid=i % 4, camid=i // 4 % 2) for i, it in enumerate(fake_items(16))]
    train, query, gallery = items[:8], items[8:10], items[10:]
    rows = colour_rows({"x": (train, query, gallery)}, lda_dim=4)
    assert [r["method"] for r in rows] == ["colour histogram", "colour histogram + LDA"]
    m = evaluate_colour_baseline(train, query, gallery, lda_dim=4)
    assert rows[1]["x"] == tb.cell(m["mAP"], m["rank1"])


def test_ablation_table_beside_the_full_recipe_and_kept_out_of_the_main_tables(tmp_path):
    for seed, (full, agn) in enumerate([(0.40, 0.30), (0.50, 0.36)]):
        _fake_run(tmp_path, "synth-a->synth-b", "muva", seed, {"synth-b": (full, 0.6)})
        _fake_run(tmp_path, "synth-a->synth-b", "muva", seed, {"synth-b": (agn, 0.5)}, variant="part-agnostic")
    _fake_run(tmp_path, "synth-a->synth-b", "pivl", 0, {"synth-b": (0.20, 0.3)}, variant="no-fusion")
    _fake_run(tmp_path, "synth-b->synth-c", "muva", 0, {"synth-c": (0.9, 0.9)}, variant="vge-gt")  # other protocol
    df = tb.collect_results(tmp_path)
    assert len(df) == 6 and sorted(set(df["variant"])) == ["", "no-fusion", "part-agnostic", "vge-gt"]
    main = tb.summarise(df)  # ablation runs never reach the main tables
    assert len(main) == 1 and main["mAP"].item() == pytest.approx(0.45)
    t = tb.ablation_table(df, methods=["muva", "pivl"])
    assert t.to_dict("records") == [
        {"method": "MUVA", "variant": "full recipe", "preset": "smoke", "seeds": 2,
         "synth-a->synth-b": "45.0±7.1 / 60.0±0.0", "mAP change (paired)": "-"},
        {"method": "MUVA", "variant": "part-agnostic prompts", "preset": "smoke", "seeds": 2,
         "synth-a->synth-b": "33.0±4.2 / 50.0±0.0", "mAP change (paired)": "-12.0±2.8 * (n=2)"},
        {"method": "pi-VL", "variant": "no fusion head", "preset": "smoke", "seeds": 1,
         "synth-a->synth-b": "20.0 / 30.0", "mAP change (paired)": "-"}]
    _fake_run(tmp_path, "synth-a->synth-b", "clipreid", 0, {"synth-b": (0.3, 0.4)})  # no ablation of its own
    assert "CLIP-ReID" not in set(tb.ablation_table(tb.collect_results(tmp_path))["method"])
    assert tb.ablation_table(df[df["variant"] == ""]).empty


def _sweep_env(tmp_path, monkeypatch):
    """Fake finished runs (with their configs) of a small sweep: two protocols x three methods x two seeds from the pretrained weights, the same from random init for
    synth-a->synth-b, one ablation; and a ``run`` command whose training and 06_results steps do nothing."""
    from muva_lib import runs
    from muva_lib.config import ablation_overrides
    from muva_lib.runs import NotebookRecord

    root = tmp_path / "runs"
    for seed in (0, 1):
        for i, method in enumerate(("muva", "clipreid", "pivl")):
            _fake_run(root, "synth-a->synth-b", method, seed, {"synth-b": (0.10 + 0.01 * i + 0.02 * seed, 0.2)},
                      config=True)
            _fake_run(root, "synth-a->synth-b", method, seed, {"synth-b": (0.05 + 0.01 * seed, 0.1)},
                      overrides=("model.pretrained=",), config=True)
            _fake_run(root, "synth-b->synth-c", method, seed, {"synth-c": (0.30, 0.4)}, config=True)
        _fake_run(root, "synth-a->synth-b", "muva", seed, {"synth-b": (0.05, 0.1)}, variant="gating-none",
                  overrides=tuple(ablation_overrides("gating-none")), config=True)
    _fake_run(root, "synth-a->synth-b", "muva", 0, {"synth-b": (0.9, 0.9)}, preset="paper")  # another preset
    monkeypatch.setenv("MUVA_RUNS", str(root))
    monkeypatch.setenv("MUVA_FIGURES", str(tmp_path / "figures"))
    trained = []
    monkeypatch.setattr(runs, "run_method", lambda *a, **k: (trained.append(a[:4]), (None, []))[1])
    monkeypatch.setattr(runs, "run_results", lambda *a, **k: NotebookRecord("06_results", "done", {}, "", "x.ipynb"))
    return tmp_path / "figures" / "sweep", trained


def test_run_all_synthetic_records_its_runs_and_writes_the_tables_from_the_records(tmp_path, monkeypatch, capsys):
    from muva_lib.__main__ import main
    from muva_lib.sweep import SWEEP_COMMAND

    sweep, trained = _sweep_env(tmp_path, monkeypatch)
    assert main(["run", "--all-synthetic", "--ablations", "--inits", "synth", "random", "--seeds", "0", "1",
                 "--notebooks"]) == 0
    records = sweep / "records"
    recorded = sorted(p.parent.relative_to(records).as_posix() for p in records.glob("**/manifest.json"))
    assert len(recorded) == 2 * (3 + 3 + 3 + 1)  # seeds x (pretrained a->b, random a->b, b->c, one ablation)
    one = records / "synth-a-to-synth-b" / "muva" / "20260101-000000-smoke-s0"
    assert sorted(p.relative_to(one).as_posix() for p in one.rglob("*") if p.is_file()) == [
        "config.json", "logs/stage2.csv", "manifest.json", "metrics/synth-b.json"]  # no checkpoints
    # the jobs without a run were handed to training; the recorded ones were not
    assert len(trained) == 88 - 20 and ("synth-c->synth-a", "muva", "smoke", 0) in trained  # 88 planned: 2 seeds x (2 inits x 6 protocols x 3 methods + 8 ablations)
    assert ("synth-b->synth-c", "muva", "smoke", 0) in trained  # its random-init job: no run yet
    names = sorted(p.name for p in sweep.iterdir() if p.is_file())
    assert names == sorted([f"{n}.{ext}" for n in ("synthetic", "ablations", "paired") for ext in ("md", "tex")]
                           + ["leakage.md"]  # no leakage-control run: a table file saying so
                           + [f"{n}.{ext}" for n in ("synthetic_seeds_synth", "synthetic_seeds_random", "paired_seeds",
                                                     "ablation_seeds") for ext in ("png", "pdf")])
    synth = (sweep / "synthetic.md").read_text()
    assert "| MUVA        | ours (smoke, 2 seeds)              | 11.0±1.4 / 20.0±0.0 | 30.0±0.0 / 40.0±0.0 |" in synth
    assert "| MUVA        | ours (smoke, random init, 2 seeds) | 5.5±0.7 / 10.0±0.0  | -" in synth
    assert "| frozen CLIP | pretrained (synth), zero-shot      |" in synth  # what fine-tuning has to beat
    paired = (sweep / "paired.md").read_text()
    # pretrained minus random for MUVA: seed 0 10-5=5, seed 1 12-6=6 -> 5.5 ± 0.7, outside its spread
    assert "| MUVA: pretrained - random init " in paired and "+5.5±0.7 * (n=2)" in paired
    assert "no gating" in (sweep / "ablations.md").read_text()
    assert (sweep / "leakage.md").read_text().endswith("No leakage-control runs are recorded yet; "
                                                       f"`{SWEEP_COMMAND}` makes them.\n")
    # the records alone rebuild the tables: runs/ gone, --tables-only writes the same synthetic table
    import shutil

    shutil.rmtree(tmp_path / "runs")
    (sweep / "synthetic.md").unlink()
    assert main(["run", "--all-synthetic", "--ablations", "--inits", "synth", "random", "--seeds", "0", "1",
                 "--tables-only"]) == 0
    assert (sweep / "synthetic.md").read_text() == synth
    assert "== records: 0 written now, 20 of 88 planned runs recorded" in capsys.readouterr().out


def test_only_a_sweep_writes_the_sweep_folder(tmp_path, monkeypatch):
    from muva_lib.__main__ import main

    sweep, _ = _sweep_env(tmp_path, monkeypatch)
    assert main(["run", "--protocol", "synth-a->synth-b", "--notebooks", "06"]) == 0
    assert not sweep.exists()
    assert main(["run", "--all-synthetic", "--seeds", "0", "--notebooks", "--figures", "none"]) == 0
    assert not (sweep / "synthetic.md").exists()


def test_a_one_protocol_run_writes_its_seed_table_only_where_asked(tmp_path, monkeypatch):
    """``run --protocol P --method a,b --seeds ... --figures DIR``: the quick start's seed spread, by command."""
    from muva_lib.__main__ import main
    from muva_lib.commands.run import plan_jobs

    assert [(j.method, j.seed) for j in plan_jobs("synth-a->synth-b", "muva,clipreid", [0, 1])] == [
        ("muva", 0), ("clipreid", 0), ("muva", 1), ("clipreid", 1)]
    _sweep_env(tmp_path, monkeypatch)
    out = tmp_path / "quickstart_seeds"
    assert main(["run", "--protocol", "synth-a->synth-b", "--method", "muva,clipreid", "--seeds", "0", "1",
                 "--notebooks", "--figures", str(out)]) == 0
    table = (out / "synthetic.md").read_text()
    assert "| MUVA      | ours (smoke, 2 seeds)              | 11.0±1.4 / 20.0±0.0 |" in table  # random init: own rows
    assert (out / "synthetic_seeds.png").is_file()


def test_write_sweep_writes_no_ablation_table_without_an_ablation_run(tmp_path):
    """Runs of a recipe and of a non-ablation variant (pi-VL's part-epochs-10) give the synthetic table
    only: a 'full recipe' row alone is not an ablation table."""
    from muva_lib import runs

    root = tmp_path / "runs"
    for seed in (0, 1):
        _fake_run(root, "synth-a->synth-b", "pivl", seed, {"synth-b": (0.1, 0.2)})
        _fake_run(root, "synth-a->synth-b", "pivl", seed, {"synth-b": (0.1, 0.2)}, variant="part-epochs-10")
    names = {p.name for p in runs.write_sweep("smoke", tmp_path / "out", root)}
    assert names == {"synthetic.md", "synthetic.tex", "synthetic_seeds.png"}
