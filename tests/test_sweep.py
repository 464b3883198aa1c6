"""The committed sweep: paired differences (hand-checked), the leakage table, per-run records, the
``pretrain-run:`` weights of the leakage control."""
from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from muva_lib import tables as tb


def _rows(spec):
    """A collect_results-like frame from ``(method, init, seed, mAP)`` tuples on synth-a->synth-b."""
    return pd.DataFrame([{"protocol": "synth-a->synth-b", "method": m, "variant": "", "preset": "smoke", "init": i,
                          "seed": s, "target": "synth-b", "mAP": v, "rank1": v, "rank5": v, "rank10": v,
                          "mINP": v, "config_hash": "h", "run": f"{m}-{i}-{s}"} for m, i, s, v in spec],
                        columns=tb.RESULT_COLUMNS)


def test_paired_differences_pair_by_seed_and_mark_what_is_outside_the_spread():
    df = _rows([("muva", "synth", 0, 0.30), ("muva", "synth", 1, 0.34), ("muva", "synth", 2, 0.20),
                ("muva", "random", 0, 0.10), ("muva", "random", 1, 0.12), ("muva", "random", 3, 0.50)])
    d = tb.paired_differences(df, {"method": "muva", "init": "synth"}, {"method": "muva", "init": "random"},
                              "synth-a->synth-b")
    # seeds 0 and 1 pair (2 and 3 have no partner): 20 and 22 points -> mean 21, std sqrt(2)
    assert d["seeds"] == [0, 1] and d["diffs"] == pytest.approx([20.0, 22.0])
    assert d["mean"] == pytest.approx(21.0) and d["std"] == pytest.approx(math.sqrt(2.0)) and d["outside"]
    assert tb.paired_cell(d) == "+21.0±1.4 * (n=2)"
    noisy = _rows([("muva", "synth", s, v) for s, v in enumerate((0.30, 0.10, 0.21))]
                  + [("clipreid", "synth", s, 0.20) for s in range(3)])
    e = tb.paired_differences(noisy, {"method": "muva", "init": "synth"}, {"method": "clipreid", "init": "synth"},
                              "synth-a->synth-b")
    # +10, -10, +1 points: mean 0.33, std 10.0 -> inside its spread, no mark
    assert e["mean"] == pytest.approx(1 / 3) and not e["outside"] and tb.paired_cell(e) == "+0.3±10.0"
    one = tb.paired_differences(noisy.iloc[[0, 3]], {"method": "muva"}, {"method": "clipreid"}, "synth-a->synth-b")
    assert one["diffs"] == pytest.approx([10.0]) and math.isnan(one["std"]) and not one["outside"]
    assert tb.paired_cell(tb.paired_differences(noisy, {"method": "pivl"}, {"method": "muva"},
                                                "synth-a->synth-b")) == "-"


def test_paired_table_rows_and_the_leakage_table():
    spec = []
    for s in range(3):
        spec += [("muva", "synth", s, 0.30 + 0.01 * s), ("muva", "random", s, 0.10),
                 ("clipreid", "synth", s, 0.25), ("clipreid", "random", s, 0.12),
                 ("muva", tb.LEAKAGE_INIT, s, 0.20)]
    df = _rows(spec)
    t = tb.paired_table(df, ["synth-a->synth-b"])
    assert t["comparison"].tolist() == ["MUVA: pretrained - random init", "CLIP-ReID: pretrained - random init",
                                        "MUVA - CLIP-ReID (pretrained)", "MUVA - CLIP-ReID (random init)"]
    assert t.iloc[0]["synth-a->synth-b"] == "+21.0±1.0 *" and t.iloc[3]["synth-a->synth-b"] == "-2.0±0.0 *"
    leak = tb.leakage_table(df, methods=["muva", "clipreid"])
    row = leak.iloc[0].to_dict()
    assert row["method"] == "MUVA" and row["pretrained without synth-b's style"] == "20.0±0.0 / 20.0±0.0 (n=3)"
    assert row["pretrained - pretrained without synth-b's style (mAP)"] == "+11.0±1.0 *"
    assert row["pretrained without synth-b's style - random init (mAP)"] == "+10.0±0.0 *"
    assert leak.iloc[1]["pretrained without synth-b's style"] == "-"
    assert tb.leakage_table(df[df["init"] != tb.LEAKAGE_INIT]).empty


def test_init_names_and_labels():
    assert tb.init_of("") == tb.init_of("none") == "random" and tb.init_of(" synth ") == "synth"
    assert tb.init_name("pretrain-run:x") == "pretrained (x)" and tb.init_name("random") == "random init"


def test_record_run_copies_the_small_files_atomically_once(tmp_path):
    from muva_lib.sweep import record_run

    run = tmp_path / "runs" / "synth-a-to-synth-b" / "muva" / "20260101-000000-smoke-s0"
    for rel, text in {"config.json": "{}", "manifest.json": json.dumps({"status": "finished"}),
                      "metrics/synth-b.json": "{}", "logs/stage1.csv": "a\n", "checkpoints/final.pt": "x",
                      "cache/feats.npy": "x", "tb/events": "x"}.items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text(text)
    dest = record_run(run, tmp_path / "records", tmp_path / "runs")
    assert dest == tmp_path / "records" / "synth-a-to-synth-b" / "muva" / "20260101-000000-smoke-s0"
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        "config.json", "logs/stage1.csv", "manifest.json", "metrics/synth-b.json"]
    (run / "logs" / "stage1.csv").write_text("changed\n")
    assert record_run(run, tmp_path / "records", tmp_path / "runs") == dest  # kept, never rewritten
    assert (dest / "logs" / "stage1.csv").read_text() == "a\n"
    assert not list((tmp_path / "records").glob("**/.*tmp*"))
    (run / "manifest.json").write_text(json.dumps({"status": "running"}))
    with pytest.raises(ValueError, match="not a finished run"):
        record_run(run, tmp_path / "other", tmp_path / "runs")


def test_pretrain_run_weights_name_the_command_that_makes_them(tmp_path, monkeypatch):
    from muva_lib.models.clip_backbone import WeightsNotFoundError, resolve_weights

    monkeypatch.setenv("MUVA_RUNS", str(tmp_path))
    with pytest.raises(WeightsNotFoundError, match=r"no pretraining run .*python -m muva_lib pretrain --out"):
        resolve_weights("muva-tiny", "pretrain-run:leak")
    (tmp_path / "pretrain" / "leak").mkdir(parents=True)
    (tmp_path / "pretrain" / "leak" / "config.json").write_text("{}")
    with pytest.raises(WeightsNotFoundError, match="has not finished.*resume it"):
        resolve_weights("muva-tiny", "pretrain-run:leak")
    (tmp_path / "pretrain" / "leak" / "final.safetensors").write_bytes(b"")
    src = resolve_weights("muva-tiny", "pretrain-run:leak")
    assert src.kind == "file" and src.path == tmp_path / "pretrain" / "leak" / "final.safetensors"
    with pytest.raises(ValueError, match="no path"):
        resolve_weights("muva-tiny", "pretrain-run:../x")


def test_plan_jobs_inits_and_the_leakage_control():
    from muva_lib.commands.run import plan_jobs
    from muva_lib.sweep import init_override

    jobs = plan_jobs(None, "muva", [0], all_synthetic=True, inits=["synth", "random"], leakage=True)
    assert len(jobs) == 2 * 6 * 3 + 3
    assert jobs[0].init == "synth" and jobs[18].init == "random" and jobs[-1].init == "leakage"
    assert {j.protocol for j in jobs[-3:]} == {"synth-a->synth-b"}
    assert "random init" in jobs[18].title("smoke")
    assert plan_jobs("synth-a->synth-b", "muva", [1], inits=["random"])[0].overrides == ("model.pretrained=",)
    with pytest.raises(ValueError, match="choose from synth, random, leakage"):
        init_override("imagenet")


def test_frozen_rows_read_the_shipped_zero_shot_re_id_of_each_target():
    from muva_lib.models.clip_backbone import shipped_manifest
    from muva_lib.sweep import frozen_rows

    z = shipped_manifest()["zeroshot"]
    rows = frozen_rows(["synth-a->synth-b", "synth-b+synth-c->synth-a"])
    assert [r["source"] for r in rows] == ["pretrained (synth), zero-shot", "random init, zero-shot"]
    assert rows[0]["synth-a->synth-b"] == tb.cell(z["synth-b"]["reid_map"], z["synth-b"]["reid_r1"])
    assert rows[0]["synth-b+synth-c->synth-a"] == tb.cell(z["synth-a"]["reid_map"], z["synth-a"]["reid_r1"])


def test_sweep_parts_of_the_plan_and_of_recorded_runs():
    from collections import Counter

    from muva_lib.commands.run import plan_jobs
    from muva_lib.sweep import INITS, sweep_part

    plan = plan_jobs(None, "muva", [0, 1, 2], all_synthetic=True, ablations=True, inits=["synth", "random"],
                     leakage=True)
    assert Counter(sweep_part(tb.init_of(INITS[j.init]), j.variant) for j in plan) == {
        "pretrained": 54, "random init": 54, "leakage control": 9, "ablations": 24}
    assert sweep_part("random", "") == "random init" and sweep_part(tb.LEAKAGE_INIT, "") == "leakage control"
    assert sweep_part("synth", "vge-gt") == "ablations" and sweep_part("synth", "") == "pretrained"
