"""Optimiser parameter groups per stage and the learning-rate schedules as pure functions of the epoch.

Epochs are numbered from 1 (the official code steps its schedulers with epoch = 1..E before each
epoch's batches), so ``stage1_lr(1, cfg)`` is the rate of the first epoch.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Iterable

import torch
from torch import nn

from ..config import Stage1Cfg, Stage2Cfg

__all__ = ["STAGE1_SCHEDULES", "PART_SCHEDULES", "stage1_lr", "stage1_phase_lr", "stage2_lr_factor",
           "stage1_trainable", "stage2_trainable", "stage1_param_groups", "stage2_param_groups", "make_adam",
           "set_epoch_lr", "describe_groups"]


#: ``stage1.schedule``: the shape of the stage-1 cosine (:func:`stage1_lr`)
STAGE1_SCHEDULES: dict[str, str] = {
    "cosine": "the cosine reaches min_lr one epoch after the last (no epoch at the floor)",
    "timm": "the cosine reaches min_lr at the last epoch (timm's CosineLRScheduler; runs before stage1.schedule)",
}
#: ``stage1.part_schedule``: how pi-VL's part epochs extend the identity epochs' schedule (:func:`stage1_phase_lr`)
PART_SCHEDULES: dict[str, str] = {
    "continue": "one warm-up + cosine over identity + part epochs",
    "restart": "identity epochs on the cosine over identity + part epochs, part epochs on a cosine of their own",
    "separate": "identity epochs exactly as without part epochs, part epochs on a cosine of their own",
}


def stage1_lr(epoch: int, cfg: Stage1Cfg) -> float:
    """Stage-1 rate of ``epoch`` (1-based): linear warm-up from ``warmup_lr`` over ``warmup_epochs``,
    ``warmup_lr + e * (lr - warmup_lr) / warmup_epochs`` for e < warmup_epochs; then the cosine from
    ``lr`` to ``min_lr`` counted from epoch 0 (no prefix shift, no restart) over T epochs:
    ``min_lr + (lr - min_lr) * (1 + cos(pi * e / T)) / 2``, ``min_lr`` from T on.

    ``schedule=cosine``: T = ``epochs + 1``, so the last epoch still learns. Smoke (4 epochs, lr 2e-3,
    warm-up 1): 1.809e-3, 1.309e-3, 6.92e-4, 1.92e-4; paper: 7.8e-5 at epoch 1, 3.486e-4 at 5,
    1.1e-6 + 1.745e-4 at 61, 1.0588e-6 at 120 (lr - min_lr times sin^2(pi / 242) above the floor).
    ``schedule=timm`` (runs written before the field): T = ``epochs``, timm's CosineLRScheduler as
    CLIP-ReID / MUVA configure it, the last epoch at ``min_lr``. Smoke: 1.707e-3, 1.0e-3, 2.94e-4, 1e-6;
    paper: 7.8e-5 at 1, 2.82e-4 at 4, 3.485e-4 at 5, 1.755e-4 at 60, 1e-6 at 120."""
    if cfg.schedule not in STAGE1_SCHEDULES:
        raise ValueError(f"stage1.schedule={cfg.schedule!r}; expected one of {', '.join(STAGE1_SCHEDULES)}")
    if epoch < cfg.warmup_epochs:
        return cfg.warmup_lr + epoch * (cfg.lr - cfg.warmup_lr) / cfg.warmup_epochs
    span = cfg.epochs + 1 if cfg.schedule == "cosine" else cfg.epochs
    if epoch >= span:
        return cfg.min_lr
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1 + math.cos(math.pi * epoch / span))


def stage1_phase_lr(epoch: int, cfg: Stage1Cfg) -> float:
    """The stage-1 rate of ``epoch`` (1-based) counting pi-VL's ``part_epochs`` after the ``epochs``
    identity epochs, by ``part_schedule`` (without part epochs all three are :func:`stage1_lr`):
    ``continue``, one schedule over ``epochs + part_epochs``; ``restart``, the identity epochs on that
    schedule, the part epochs on a cosine of their own over ``part_epochs`` without warm-up;
    ``separate``, the identity epochs on :func:`stage1_lr` over ``epochs`` (CLIP-ReID's rates epoch by
    epoch), the part epochs as under ``restart``. Smoke pi-VL (4 + 2 epochs, lr 2e-3), ``separate`` with
    ``schedule=cosine``: 1.809e-3, 1.309e-3, 6.92e-4, 1.92e-4, then 1.500e-3, 5.01e-4; ``restart`` with
    ``schedule=timm`` (the smoke recipe before ``separate``): 1.866e-3, 1.5e-3, 1.0e-3, 5.0e-4, then 1.0e-3, 1e-6."""
    if cfg.part_schedule not in PART_SCHEDULES:
        raise ValueError(f"stage1.part_schedule={cfg.part_schedule!r}; expected one of {', '.join(PART_SCHEDULES)}")
    total = cfg.epochs + cfg.part_epochs
    if epoch > cfg.epochs and cfg.part_schedule in ("restart", "separate"):
        return stage1_lr(epoch - cfg.epochs, dataclasses.replace(cfg, epochs=cfg.part_epochs, warmup_epochs=0))
    if cfg.part_schedule == "separate":
        return stage1_lr(epoch, cfg)
    return stage1_lr(epoch, dataclasses.replace(cfg, epochs=total))


def stage2_lr_factor(epoch: int, cfg: Stage2Cfg) -> float:
    """Stage-2 multiplier of the base rates at ``epoch`` (1-based), WarmupMultiStepLR:
    ``warmup_factor * (1 - e / W) + e / W`` for e < W (0.19 at epoch 1 with 0.1 and W=10), then 1;
    times ``gamma`` for every milestone <= e (x0.1 from epoch 30, x0.01 from 50)."""
    warm = 1.0
    if epoch < cfg.warmup_epochs:
        alpha = epoch / cfg.warmup_epochs
        warm = cfg.warmup_factor * (1 - alpha) + alpha
    return warm * cfg.gamma ** sum(1 for m in cfg.milestones if m <= epoch)


def stage1_trainable(model: nn.Module) -> list[str]:
    """Stage 1 learns the prompt context only: every other parameter gets ``requires_grad=False``."""
    names = []
    for name, p in model.named_parameters():
        p.requires_grad_(name == "prompt_learner.ctx")
        if p.requires_grad:
            names.append(name)
    return names


def stage2_trainable(model: nn.Module, freeze_patch_proj: bool = True) -> list[str]:
    """Stage 2 learns everything but the text encoder, the prompts, the patch projection (when frozen)
    and the BNNeck biases (always frozen). Sets ``requires_grad`` accordingly and returns the names."""
    frozen_prefixes = ("text_encoder.", "prompt_learner.")
    names = []
    for name, p in model.named_parameters():
        frozen = (name.startswith(frozen_prefixes) or name.endswith("bnneck.bias")
                  or (freeze_patch_proj and name.startswith("image_encoder.visual.conv1.")))
        p.requires_grad_(not frozen)
        if not frozen:
            names.append(name)
    return names


def stage1_param_groups(model: nn.Module, cfg: Stage1Cfg) -> list[dict[str, Any]]:
    """One group: the prompt context, lr ``cfg.lr``, weight decay ``cfg.weight_decay``."""
    ctx = dict(model.named_parameters())["prompt_learner.ctx"]
    return [{"name": "prompts", "params": [ctx], "lr": cfg.lr, "base_lr": cfg.lr, "weight_decay": cfg.weight_decay}]


def stage2_param_groups(model: nn.Module, cfg: Stage2Cfg) -> list[dict[str, Any]]:
    """Groups over the trainable parameters (``requires_grad``; call :func:`stage2_trainable` first):
    ``rmp`` (residual mask predictors) lr x ``rmp_lr_mult``, weight decay 0; ``bias`` lr x
    ``bias_lr_factor`` (CLIP-ReID 2); ``base`` everything else. Empty groups are left out."""
    groups: dict[str, list[nn.Parameter]] = {"base": [], "bias": [], "rmp": []}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if name.startswith("image_encoder.rmp."):
            groups["rmp"].append(p)
        elif "bias" in name.rsplit(".", 1)[-1]:  # .bias, in_proj_bias (CLIP-ReID: "bias" in the key)
            groups["bias"].append(p)
        else:
            groups["base"].append(p)
    setting = {"base": (cfg.base_lr, cfg.weight_decay),
               "bias": (cfg.base_lr * cfg.bias_lr_factor, cfg.weight_decay),
               "rmp": (cfg.base_lr * cfg.rmp_lr_mult, 0.0)}
    return [{"name": n, "params": ps, "lr": setting[n][0], "base_lr": setting[n][0], "weight_decay": setting[n][1]}
            for n, ps in groups.items() if ps]


def make_adam(groups: Iterable[dict[str, Any]]) -> torch.optim.Adam:
    """Adam (L2-style weight decay per group, as the official code) over the given groups."""
    return torch.optim.Adam(list(groups))


def set_epoch_lr(optimizer: torch.optim.Optimizer, lr_of_base: Any) -> list[float]:
    """Set every group's lr to ``lr_of_base(group['base_lr'])``; returns the new rates."""
    for g in optimizer.param_groups:
        g["lr"] = float(lr_of_base(g["base_lr"]))
    return [g["lr"] for g in optimizer.param_groups]


def describe_groups(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """Rows a notebook can print: group name, tensors, parameters, lr, weight decay."""
    return [{"group": g.get("name", str(i)), "tensors": len(g["params"]),
             "params": sum(p.numel() for p in g["params"]), "lr": g["lr"], "weight_decay": g["weight_decay"]}
            for i, g in enumerate(optimizer.param_groups)]
