"""Learning-rate schedules pinned at the spec's epoch values, and the optimiser groups of both stages."""
from __future__ import annotations

import math

import pytest
import torch

from muva_lib.config import Stage1Cfg, Stage2Cfg, resolve
from muva_lib.models.factory import create_model
from muva_lib.train.optim import (describe_groups, make_adam, set_epoch_lr, stage1_lr, stage1_param_groups,
                                  stage1_trainable, stage2_lr_factor, stage2_param_groups, stage2_trainable)


@pytest.mark.parametrize("epoch, lr", [
    (1, 1e-5 + 1 * (3.5e-4 - 1e-5) / 5),  # 7.8e-5: warm-up from 1e-5 over 5 epochs
    (2, 1.46e-4),
    (4, 2.82e-4),
    (5, 1e-6 + 0.5 * 3.49e-4 * (1 + math.cos(math.pi * 5 / 120))),  # cosine counted from epoch 0
    (60, 1e-6 + 0.5 * 3.49e-4),
    (119, 1e-6 + 0.5 * 3.49e-4 * (1 + math.cos(math.pi * 119 / 120))),
    (120, 1e-6),
])
def test_stage1_paper_schedule(epoch, lr):
    assert stage1_lr(epoch, Stage1Cfg()) == pytest.approx(lr, rel=1e-9)


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
