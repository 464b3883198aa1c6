"""Pretraining (muva_lib.pretrain): the batch plan, the parameter groups, the token rows that never move, an
exact resume, the config check, and the smoke preset through the command line."""
from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from muva_lib.data.synth.corpus import CorpusCfg, generate_corpus
from muva_lib.pretrain import (PretrainCfg, apply_overrides, build_model, load_pairs, make_batch, param_groups,
                               plan_batch, pretrain, preset, read_log)
from muva_lib.pretrain.model import TOKEN_KEY, init_token_table

CORPUS = CorpusCfg(ids=24, images_per_id=2, height=64, width=32, shard_size=12)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pretrain") / "corpus"
    generate_corpus(root, seed=5, cfg=CORPUS, workers=1)
    return root


def tiny_cfg(corpus: Path, **kw) -> PretrainCfg:
    base = dict(corpus=str(corpus), height=64, width=32, batch_size=8, steps=6, warmup_steps=2, lr=1e-3,
                threads=1, log_every=1, ckpt_every=3)
    return PretrainCfg(**{**base, **kw})


@pytest.fixture(scope="module")
def pairs(corpus):
    return load_pairs(corpus, 40)


def test_pairs_hold_every_image_and_caption(pairs):
    assert pairs.images.shape == (48, 3, 64, 32) and pairs.images.dtype == torch.uint8
    assert pairs.num_ids == 24 and all(len(v) == 2 for v in pairs.identity_images)
    assert pairs.tokens.shape == (len(pairs.texts), 40)
    for i, rows in enumerate(pairs.image_captions):
        assert (pairs.caption_image[torch.as_tensor(rows)] == i).all()


def test_context_too_short_for_a_caption_is_an_error(corpus):
    with pytest.raises(ValueError, match="more than the text context 8"):
        load_pairs(corpus, 8)


def test_batch_plan_is_pure_and_holds_distinct_identities(pairs):
    owner = {int(i): j for j, imgs in enumerate(pairs.identity_images) for i in imgs}
    a, b = plan_batch(pairs, 7, 8, seed=1), plan_batch(pairs, 7, 8, seed=1)
    assert torch.equal(a.image, b.image) and torch.equal(a.caption, b.caption) and torch.equal(a.flip, b.flip)
    assert len({owner[int(i)] for i in a.image}) == 8  # one pair per identity
    assert (pairs.caption_image[a.caption] == a.image).all()  # each caption describes its image
    # the three batches of one epoch cover 24 distinct identities
    epoch = torch.cat([plan_batch(pairs, s, 8, seed=1).image for s in (3, 4, 5)])
    assert len({owner[int(i)] for i in epoch}) == 24
    assert not torch.equal(plan_batch(pairs, 8, 8, seed=1).image, a.image)
    with pytest.raises(ValueError, match="exceeds"):
        plan_batch(pairs, 0, 25, seed=1)


def test_make_batch_flips_and_normalises(pairs):
    plan = plan_batch(pairs, 0, 8, seed=0, flip=1.0)
    img, tok = make_batch(pairs, plan)
    raw = pairs.images[plan.image].float() / 255
    assert torch.allclose(img, (raw.flip(-1) - 0.5) / 0.5)
    assert torch.equal(tok, pairs.tokens[plan.caption])
    half, _ = make_batch(pairs, plan, slice(4, 8))
    assert torch.equal(half, img[4:])


def test_param_groups_keep_the_token_table_and_gains_out_of_weight_decay(corpus):
    model = build_model(tiny_cfg(corpus, loss="siglip"))
    decay, plain = param_groups(model, 0.1)
    names = {id(p): n for n, p in model.named_parameters()}
    plain_names = {names[id(p)] for p in plain["params"]}
    assert {TOKEN_KEY, "logit_scale", "logit_bias", "ln_final.weight"} <= plain_names
    assert all(p.ndim >= 2 for p in decay["params"]) and decay["weight_decay"] == 0.1
    assert len(decay["params"]) + len(plain["params"]) == len(list(model.parameters()))


def test_build_model_sets_the_token_table_and_the_siglip_logits(corpus):
    m = build_model(tiny_cfg(corpus, loss="siglip", init_logit_scale=2.302585))
    assert torch.equal(m.token_embedding.weight, init_token_table(49408, 256, 1234))
    assert abs(float(m.logit_scale.detach().exp()) - 10.0) < 1e-4 and float(m.logit_bias.detach()) == -10.0
    clip = build_model(tiny_cfg(corpus))
    assert clip.logit_bias is None and abs(float(clip.logit_scale.detach().exp()) - 1 / 0.07) < 1e-3


def test_resume_after_a_kill_gives_the_same_weights(corpus, pairs, tmp_path):
    cfg = tiny_cfg(corpus)
    full = pretrain(cfg, tmp_path / "full", data=pairs, progress=False)
    assert full["steps"] == 6 and (tmp_path / "full" / "summary.json").is_file()
    assert pretrain(cfg, tmp_path / "part", data=pairs, progress=False, stop_after=3) == {"stopped_at": 3}
    assert not (tmp_path / "part" / "final.safetensors").exists()
    pretrain(cfg, tmp_path / "part", data=pairs, progress=False)
    a, b = load_file(tmp_path / "full" / "final.safetensors"), load_file(tmp_path / "part" / "final.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    la, lb = read_log(tmp_path / "full"), read_log(tmp_path / "part")
    assert [r["step"] for r in lb] == [1, 2, 3, 4, 5, 6]
    assert [(r["loss"], r["lr"], r["logit_scale"]) for r in la] == [(r["loss"], r["lr"], r["logit_scale"]) for r in lb]
    # a finished run is not trained again; its summary comes back
    assert pretrain(cfg, tmp_path / "full", data=pairs, progress=False) == json.loads(
        (tmp_path / "full" / "summary.json").read_text())


def test_untouched_token_rows_stay_bitwise_at_their_init(corpus, pairs, tmp_path):
    pretrain(tiny_cfg(corpus), tmp_path / "r", data=pairs, progress=False)
    table = load_file(tmp_path / "r" / "final.safetensors")[TOKEN_KEY]
    init = init_token_table(49408, 256, 1234)
    moved = (table != init).any(dim=1).nonzero().flatten()
    used = torch.unique(pairs.tokens)
    assert len(moved) > 10 and set(moved.tolist()) <= set(used.tolist())
    assert torch.equal(table[~torch.isin(torch.arange(49408), used)], init[~torch.isin(torch.arange(49408), used)])


def test_a_run_with_another_config_is_refused(corpus, pairs, tmp_path):
    pretrain(tiny_cfg(corpus, steps=3, ckpt_every=3), tmp_path / "r", data=pairs, progress=False, stop_after=3)
    with pytest.raises(ValueError, match="lr: run 0.001, now 0.0005"):
        pretrain(tiny_cfg(corpus, steps=3, ckpt_every=3, lr=5e-4), tmp_path / "r", data=pairs, progress=False)


def test_overrides_and_presets():
    cfg = apply_overrides(preset("smoke"), ["loss=siglip", "lr=5e-4", "amp=false"])
    assert (cfg.loss, cfg.lr, cfg.amp, cfg.batch_size) == ("siglip", 5e-4, False, 32)
    for bad, msg in ((["nope=1"], "unknown key 'nope'"), (["lr"], "expected key=value"),
                     (["loss=hinge"], "loss='hinge'"), (["steps=x"], "invalid literal")):
        with pytest.raises(ValueError, match=msg):
            apply_overrides(preset("smoke"), bad)
    with pytest.raises(ValueError, match="unknown pretraining preset"):
        preset("huge")


def test_smoke_preset_through_the_command_line(corpus, tmp_path):
    """The smoke preset as a user runs it (on the test corpus: the default corpus is 24,000 images)."""
    run = tmp_path / "smoke"
    cmd = [sys.executable, "-m", "muva_lib", "pretrain", "--preset", "smoke", "--out", str(run), "--quiet",
           f"corpus={corpus}", "height=64", "width=32", "batch_size=16", "threads=1"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env={**__import__("os").environ,
                                                                                  "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "pretrained 30 steps (480 pairs)" in out.stdout
    rows = read_log(run)
    assert [r["step"] for r in rows] == [5, 10, 15, 20, 25, 30]
    assert rows[-1]["loss"] < rows[0]["loss"]  # it learns something on 24 identities
    assert {"config.json", "log.csv", "last.pt", "final.safetensors", "summary.json", "tb"} <= {
        p.name for p in run.iterdir()}
    bad = subprocess.run(cmd[:-4] + ["loss=hinge"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "loss='hinge'" in bad.stderr


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["siglip", "clip"])
def test_torchrun_two_processes_match_one(corpus, pairs, tmp_path, loss):
    """2 gloo processes, each on its half of every global batch, against 1 process on the whole batch: open_clip's
    losses gather the other rank's features (with gradients), so the losses agree to float noise and every
    weight to well within one AdamW step (lr) after 4 steps (Adam divides by the root of a second moment, so
    a rounding-level gradient difference can show as a visible fraction of a step)."""
    cfg = tiny_cfg(corpus, loss=loss, steps=4, ckpt_every=4, **({"init_logit_scale": 2.302585} if loss == "siglip" else {}))
    pretrain(cfg, tmp_path / "one", data=pairs, progress=False)
    overrides = [f"{k}={v}" for k, v in cfg.to_dict().items() if v != getattr(PretrainCfg(), k)]
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0",
         "-m", "muva_lib", "pretrain", "--out", str(tmp_path / "two"), "--quiet", *overrides],
        capture_output=True, text=True, timeout=300, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = read_log(tmp_path / "one"), read_log(tmp_path / "two")
    assert [r["loss"] for r in two] == pytest.approx([r["loss"] for r in one], rel=1e-5)
    a, b = load_file(tmp_path / "one" / "final.safetensors"), load_file(tmp_path / "two" / "final.safetensors")
    worst = max((a[k] - b[k]).abs().max().item() for k in a)
    assert worst < cfg.lr, worst
    assert json.loads((tmp_path / "two" / "summary.json").read_text())["processes"] == 2


def test_ship_packs_a_run_that_loads_as_the_synth_tag(corpus, pairs, tmp_path, monkeypatch):
    from muva_lib.models.clip_backbone import create_clip
    from muva_lib.pretrain.ship import SHIPPED_FILE, reproduce_command, ship

    cfg = tiny_cfg(corpus, steps=3, ckpt_every=3)
    pretrain(cfg, tmp_path / "run", data=pairs, progress=False)
    with pytest.raises(FileNotFoundError, match="not a finished pretraining run"):
        ship(tmp_path / "nothing", out_dir=tmp_path / "assets", datasets=())
    m = ship(tmp_path / "run", out_dir=tmp_path / "assets", datasets=())
    path = tmp_path / "assets" / SHIPPED_FILE
    assert m["bytes"] == path.stat().st_size < 15e6 and m["file"] == SHIPPED_FILE
    assert m["command"] == reproduce_command(cfg) and "height=64" in m["command"] and "threads=1" in m["command"]
    assert m["corpus"]["arguments"]["ids"] == 24 and m["training"]["steps"] == 3
    assert json.loads((tmp_path / "assets" / "manifest.json").read_text()) == m
    assert (tmp_path / "assets" / "log.csv").read_text() == (tmp_path / "run" / "log.csv").read_text()
    monkeypatch.setenv("MUVA_PRETRAINED_DIR", str(tmp_path / "assets"))
    shipped, source, _ = create_clip("muva-tiny", "synth", (64, 32), context_length=40)
    assert source.kind == "synth"
    trained = load_file(tmp_path / "run" / "final.safetensors")
    own = shipped.state_dict()
    for k, v in trained.items():  # the shipped model is the float16 rounding of the trained one
        if k == "logit_bias":
            continue  # fine-tuning models have none; the loader drops it
        assert torch.equal(own[k], v.half().float() if k != "token_embedding.weight" else own[k]), k
    moved = (trained["token_embedding.weight"] != init_token_table(49408, 256, 1234)).any(dim=1)
    assert torch.equal(own["token_embedding.weight"][moved], trained["token_embedding.weight"][moved].half().float())
    assert torch.equal(own["token_embedding.weight"][~moved], trained["token_embedding.weight"][~moved])
