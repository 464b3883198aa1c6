"""``python -m muva_lib train`` / ``eval`` end to end on the small synthetic benchmark: every artefact of the
run folder, and ``eval --checkpoint`` reproducing the run's metrics."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from muva_lib.__main__ import main
from muva_lib.models.weights import read_metadata
from muva_lib.train import model_from_checkpoint
from muva_lib.train.train_state import load_train_state

ARTEFACTS = ("config.json", "manifest.json", "logs/stage1.csv", "logs/stage2.csv", "logs/eval.csv",
             "checkpoints/last.pt", "checkpoints/stage1.pt", "checkpoints/final.pt", "cache/stage1_feats.pt",
             "metrics/synth-b.json")


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.slow
@pytest.mark.parametrize("method, terms", [
    ("muva", ["loss_id", "loss_i2t", "loss_memory", "loss_mask_bce", "loss_mask_dice"]),
    ("clipreid", ["loss_id", "loss_triplet", "loss_i2t"]),
])
def test_train_then_eval_cli(train_env, tmp_path, capsys, monkeypatch, method, terms):
    argv = ["train", "--protocol", train_env.protocol, "--method", method, "--preset", "smoke", "--no-progress",
            "--eval-period", "1", *train_env.overrides]
    assert main(argv) == 0
    out = capsys.readouterr().out
    run = Path(next(ln for ln in out.splitlines() if ln.startswith("run folder: ")).split(": ", 1)[1])
    assert run.parent == train_env.runs / "synth-a-to-synth-b" / method and run.name.endswith("-smoke-s1234")
    for name in ARTEFACTS:
        assert (run / name).is_file(), f"missing {name}"
    assert list((run / "tb" / "stage1").glob("events.out.tfevents.*"))
    assert list((run / "tb" / "stage2").glob("events.out.tfevents.*"))
    assert "| synth-b" in out and "stage2: 2 epochs" in out

    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["method"] == method
    assert {"stage1_s", "stage2_s", "eval_s", "stage1_cache_s"} <= set(manifest["timings"])
    assert set(manifest["versions"]) >= {"torch", "open_clip", "python"} and "commit" in manifest["git"]
    s1, s2, ev = (_rows(run / "logs" / f"{n}.csv") for n in ("stage1", "stage2", "eval"))
    assert [r["epoch"] for r in s1] == ["1", "2"] and [r["epoch"] for r in s2] == ["1", "2"]
    assert set(terms) <= set(s2[0]) and {"lr", "loss", "acc", "time_s"} <= set(s2[0])
    assert [(r["stage"], r["epoch"]) for r in ev] == [("stage2", "1"), ("final", "2")]
    state = load_train_state(run / "checkpoints" / "last.pt")
    assert (state["stage"], state["epoch"]) == ("stage2", 2)
    meta = read_metadata(run / "checkpoints" / "final.pt")
    assert meta["extra"]["config"]["method"] == method and meta["extra"]["epoch"] == 2
    metrics = json.loads((run / "metrics" / "synth-b.json").read_text())
    assert 0 <= metrics["mAP"] <= 1 and len(metrics["cmc"]) == 50 and metrics["epoch"] == 2
    # the smoke preset starts from the shipped pretrained CLIP: the frozen text encoder is rebuilt from that
    # file, so the checkpoint leaves it out (a random-init run carries it: test_models_checkpoint); either way
    # a reloaded run's text features do not depend on the RNG state of the process that loads it
    assert "text_encoder" not in meta["components"] and meta["weights"].startswith("synth:")
    texts = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        texts.append(model_from_checkpoint(run)[0].all_text_features())
    assert torch.equal(texts[0], texts[1])
    # the shipped weights gone: the image side still loads, with a warning that text features are random
    with monkeypatch.context() as mp, pytest.warns(UserWarning, match="text features of this model are random"):
        mp.setenv("MUVA_PRETRAINED_DIR", str(tmp_path / "no-weights"))
        model_from_checkpoint(run)

    out_json = tmp_path / "again.json"
    assert main(["eval", "--checkpoint", str(run), "--json", str(out_json)]) == 0
    again = json.loads(out_json.read_text())["synth-b"]
    for key in ("mAP", "rank1", "rank5", "rank10", "mINP", "cmc"):
        assert again[key] == metrics[key], f"eval --checkpoint changed {key}"
    assert main(["eval", "--checkpoint", str(run / "checkpoints" / "final.pt"), "--protocol",
                 "synth-a->synth-c"]) == 0
    assert "| synth-c" in capsys.readouterr().out
    # eval's own overrides are validated before the model is built: a typo is one line, exit 2
    assert main(["eval", "--checkpoint", str(run), "eval.metric=cosin"]) == 2
    err = capsys.readouterr().err
    assert "eval.metric" in err and "cosin" in err and "Traceback" not in err


def test_train_cli_reports_bad_input(train_env, capsys):
    assert main(["train", "--protocol", train_env.protocol, "--preset", "smoke", "stage2.epoch=1"]) == 2
    assert "did you mean epochs" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(train_env.runs / "nothing")]) == 2
    assert "no checkpoint" in capsys.readouterr().err
