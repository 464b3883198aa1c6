"""Learning-rate schedules pinned at the spec's epoch values, and the optimiser groups of both stages."""
from __future__ import annotations

import math

import pytest
import torch

from muva_lib.config import ABLATIONS, METHODS, PRESETS, Stage1Cfg, Stage2Cfg, ablation_overrides, resolve
from muva_lib.models.factory import create_model
from muva_lib.train.optim import (describe_groups, make_adam, set_epoch_lr, stage1_lr, stage1_param_groups,
                                  stage1_trainable, stage2_lr_factor, stage2_param_groups, stage2_trainable)
from muva_lib.train.stage1 import stage1_epoch_lr, stage1_total_epochs


@pytest.mark.parametrize("epoch, lr", [
    (1, 1e-5 + 1 * (3.5e-4 - 1e-5) / 5),  # 7.8e-5: warm-up from 1e-5 over 5 epochs
    (2, 1.46e-4),
    (4, 2.82e-4),
    (5, 1e-6 + 0.5 * 3.49e-4 * (1 + math.cos(math.pi * 5 / 120))),  # cosine counted from epoch 0
    (60, 1e-6 + 0.5 * 3.49e-4),
    (119, 1e-6 + 0.5 * 3.49e-4 * (1 + math.cos(math.pi * 119 / 120))),
    (120, 1e-6),
])
def test_stage1_paper_schedule_timm(epoch, lr):
    """``schedule=timm`` (runs written before ``stage1.schedule``): the last epoch at the floor."""
    assert stage1_lr(epoch, Stage1Cfg(schedule="timm")) == pytest.approx(lr, rel=1e-9)


@pytest.mark.parametrize("epoch, lr", [
    (1, 7.8e-5), (4, 2.82e-4),  # the warm-up is the same
    (5, 1e-6 + 0.5 * 3.49e-4 * (1 + math.cos(math.pi * 5 / 121))),  # the cosine runs over 121 epochs
    (61, 1e-6 + 0.5 * 3.49e-4 * (1 + math.cos(math.pi * 61 / 121))),
    (120, 1e-6 + 3.49e-4 * math.sin(math.pi / 242) ** 2),  # 1.0588e-6: above the floor
    (121, 1e-6),
])
def test_stage1_paper_schedule_cosine(epoch, lr):
    assert Stage1Cfg().schedule == "cosine"
    assert stage1_lr(epoch, Stage1Cfg()) == pytest.approx(lr, rel=1e-9)
    assert stage1_lr(120, Stage1Cfg()) == pytest.approx(1.0588e-6, rel=1e-4)


#: smoke stage-1 rates by hand (lr 2e-3, min_lr 1e-6, warm-up 1 epoch: none runs before the cosine):
#: 1e-6 + 1.999e-3 * (1 + cos(pi * e / 5)) / 2, cos(pi/5) = (1 + sqrt 5) / 4, cos(2 pi/5) = (sqrt 5 - 1) / 4
SMOKE_IDENTITY = [1.809112e-3, 1.309363e-3, 6.916375e-4, 1.918875e-4]
#: pi-VL's 2 part epochs on a cosine of their own over 3: 1e-6 + 1.999e-3 * (1 + cos(pi * e / 3)) / 2
SMOKE_PART = [1.50025e-3, 5.0075e-4]


def _rates(cfg):
    return [stage1_epoch_lr(e, cfg) for e in range(1, stage1_total_epochs(cfg) + 1)]


@pytest.mark.parametrize("method, rates", [
    ("muva", SMOKE_IDENTITY), ("clipreid", SMOKE_IDENTITY), ("pivl", SMOKE_IDENTITY + SMOKE_PART)])
def test_smoke_stage1_rates_by_hand(method, rates):
    assert _rates(resolve(method, "smoke")) == pytest.approx(rates, rel=1e-6)


@pytest.mark.parametrize("overrides, rates", [
    # CLIP-ReID / MUVA before stage1.schedule: 1e-6 + 1.999e-3 * (1 + cos(pi * e / 4)) / 2, then the floor
    ("", [1.707253e-3, 1.0005e-3, 2.93747e-4, 1e-6]),
    # pi-VL's former smoke recipe (restart): identity epochs on a cosine over 6, the part epochs over 2
    ("stage1.part_epochs=2 stage1.part_schedule=restart", [1.866092e-3, 1.50025e-3, 1.0005e-3, 5.0075e-4, 1.0005e-3, 1e-6]),
    # continue: one cosine over the 6 epochs
    ("stage1.part_epochs=2 stage1.part_schedule=continue", [1.866092e-3, 1.50025e-3, 1.0005e-3, 5.0075e-4, 1.349082e-4, 1e-6]),
])
def test_old_schedule_names_give_the_old_rates(overrides, rates):
    cfg = resolve("clipreid", "smoke", overrides=f"stage1.schedule=timm {overrides}")
    assert _rates(cfg) == pytest.approx(rates, rel=1e-3)


@pytest.mark.parametrize("method, preset", [(m, p) for p in PRESETS for m in METHODS])
def test_no_preset_spends_an_epoch_at_the_floor(method, preset):
    """Every epoch of both stages learns, under each preset x method recipe and its ablations."""
    variants = [a for a in ABLATIONS if ABLATIONS[a].method == method]
    for overrides in [[]] + [ablation_overrides(v) for v in variants]:
        cfg = resolve(method, preset, overrides=overrides)
        assert min(_rates(cfg)) > cfg.stage1.min_lr, (method, preset, overrides)
        assert min(stage2_lr_factor(e, cfg.stage2) for e in range(1, cfg.stage2.epochs + 1)) > 0


@pytest.mark.parametrize("preset", list(PRESETS))
def test_pivl_identity_epochs_run_clipreids_schedule(preset):
    pivl, clip = resolve("pivl", preset), resolve("clipreid", preset)
    if preset == "smoke":
        assert pivl.stage1.epochs == clip.stage1.epochs  # the same identity budget: the same rates
    clip = resolve("clipreid", preset, overrides={"stage1.epochs": pivl.stage1.epochs})
    assert pivl.stage1.part_epochs > 0
    for e in range(1, pivl.stage1.epochs + 1):
        assert stage1_epoch_lr(e, pivl) == stage1_epoch_lr(e, clip)
    # and the part phase is independent of it: a cosine of its own from stage1.lr over part_epochs + 1
    more = resolve("pivl", preset, overrides={"stage1.epochs": pivl.stage1.epochs + 7})
    first_part = [stage1_epoch_lr(pivl.stage1.epochs + 1, pivl), stage1_epoch_lr(more.stage1.epochs + 1, more)]
    lr, lo, p = pivl.stage1.lr, pivl.stage1.min_lr, pivl.stage1.part_epochs
    assert first_part == pytest.approx([lo + (lr - lo) * (1 + math.cos(math.pi / (p + 1))) / 2] * 2, rel=1e-9)


@pytest.mark.parametrize("epoch, factor", [
    (1, 0.19), (2, 0.28), (5, 0.55), (9, 0.91), (10, 1.0), (29, 1.0), (30, 0.1), (49, 0.1), (50, 0.01), (60, 0.01),
])
def test_stage2_paper_schedule(epoch, factor):
    assert stage2_lr_factor(epoch, Stage2Cfg()) == pytest.approx(factor, rel=1e-9)
    assert Stage2Cfg().base_lr * stage2_lr_factor(epoch, Stage2Cfg()) == pytest.approx(5e-6 * factor)


def _model(method):
    torch.manual_seed(0)
    return create_model(resolve(method, "smoke"), 5, device="cpu")


def test_stage2_groups_muva():
    model = _model("muva")
    trainable = set(stage2_trainable(model))
    assert not any(n.startswith(("text_encoder.", "prompt_learner.")) for n in trainable)
    assert "image_encoder.visual.conv1.weight" not in trainable and "bnneck.bias" not in trainable
    opt = make_adam(stage2_param_groups(model, resolve("muva", "paper").stage2))
    groups = {g["name"]: g for g in opt.param_groups}
    assert set(groups) == {"base", "bias", "rmp"}
    assert groups["rmp"]["lr"] == pytest.approx(5e-5) and groups["rmp"]["weight_decay"] == 0.0
    assert groups["base"]["lr"] == pytest.approx(5e-6) and groups["base"]["weight_decay"] == pytest.approx(1e-4)
    assert groups["bias"]["lr"] == pytest.approx(5e-6)  # MUVA: no bias factor
    rmp_ids = {id(p) for p in model.image_encoder.rmp.parameters()}
    assert {id(p) for p in groups["rmp"]["params"]} == rmp_ids
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    params = dict(model.named_parameters())
    for frozen in ("image_encoder.visual.conv1.weight", "bnneck.bias", "prompt_learner.ctx"):
        assert id(params[frozen]) not in in_opt
    assert not any(id(p) in in_opt for p in model.text_encoder.parameters())
    set_epoch_lr(opt, lambda base: base * stage2_lr_factor(1, Stage2Cfg()))
    rows = {r["group"]: r for r in describe_groups(opt)}
    assert rows["rmp"]["lr"] == pytest.approx(5e-5 * 0.19) and rows["rmp"]["params"] > 0


def test_stage2_groups_clipreid_bias_factor():
    model = _model("clipreid")
    stage2_trainable(model)
    cfg = resolve("clipreid", "paper").stage2
    groups = {g["name"]: g for g in make_adam(stage2_param_groups(model, cfg)).param_groups}
    assert set(groups) == {"base", "bias"}  # no RMPs without part tokens
    assert groups["bias"]["lr"] == pytest.approx(1e-5)
    names = {id(p): n for n, p in model.named_parameters()}
    bias_names = {names[id(p)] for p in groups["bias"]["params"]}
    assert any(n.endswith("in_proj_bias") for n in bias_names) and "cls_bnneck.weight" not in bias_names
    assert "cls_bnneck.bias" not in bias_names and "bnneck.bias" not in bias_names  # frozen BN biases


def test_stage1_group_is_the_prompt_context():
    model = _model("muva")
    assert stage1_trainable(model) == ["prompt_learner.ctx"]
    (group,) = stage1_param_groups(model, Stage1Cfg())
    assert group["params"] == [model.prompt_learner.ctx]
    assert group["lr"] == pytest.approx(3.5e-4) and group["weight_decay"] == pytest.approx(1e-4)
