"""The model being pretrained: an open_clip CLIP from our config (open_clip's own init, logit scale / bias), a
token table drawn from its own seed, AdamW parameter groups and open_clip's loss."""
from __future__ import annotations

import math
from typing import Any

import open_clip
import torch
from open_clip.loss import ClipLoss, SigLipLoss

from ..models.clip_backbone import create_clip
from ..models.packed_weights import init_token_table
from .cfg import PretrainCfg

__all__ = ["TOKEN_KEY", "init_token_table", "build_model", "param_groups", "make_loss", "clamp_logit_scale",
           "MAX_LOGIT_SCALE"]

TOKEN_KEY = "token_embedding.weight"  # its init comes from init_token_table (models.packed_weights): rows of
# tokens no caption uses keep it exactly (no gradient, no weight decay), so the shipped file stores only moved rows
#: open_clip's training clamps the learned temperature at 100
MAX_LOGIT_SCALE = math.log(100)


def build_model(cfg: PretrainCfg) -> open_clip.CLIP:
    """``cfg.arch`` at ``cfg.height x cfg.width`` with text context ``cfg.context_length``, open_clip's init
    from ``cfg.seed`` (global RNG restored), logit scale (and SigLIP's bias) from the config, the token table
    from ``cfg.token_seed``. On the CPU; the caller moves it."""
    kwargs: dict[str, Any] = {"init_logit_scale": cfg.init_logit_scale}
    if cfg.loss == "siglip":
        kwargs["init_logit_bias"] = cfg.init_logit_bias
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model, _, _ = create_clip(cfg.arch, "", (cfg.height, cfg.width), context_length=cfg.context_length,
                                  output_dict=True, **kwargs)
    table = model.token_embedding.weight
    with torch.no_grad():
        table.copy_(init_token_table(table.shape[0], table.shape[1], cfg.token_seed))
    return model


def param_groups(model: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """open_clip's split (no decay on 1-d tensors: gains, biases, logit scale / bias), plus no decay on the token
    table (rows of unused tokens must stay at their init)."""
    decay, plain = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        name = name.removeprefix("module.")
        (plain if p.ndim < 2 or "logit_" in name or name == TOKEN_KEY else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


def make_loss(name: str, rank: int = 0, world_size: int = 1) -> torch.nn.Module:
    """open_clip's loss: ``siglip`` (pairwise sigmoid) or ``clip`` (softmax InfoNCE over the global batch,
    gathered with gradients so that N processes compute the one-process loss)."""
    if name == "siglip":
        return SigLipLoss(rank=rank, world_size=world_size)
    if name == "clip":
        return ClipLoss(local_loss=False, gather_with_grad=True, rank=rank, world_size=world_size)
    raise ValueError(f"unknown loss {name!r}")


@torch.no_grad()
def clamp_logit_scale(model: torch.nn.Module) -> None:
    """Keep ``logit_scale`` (a log temperature) in [0, log 100], as open_clip's training does after each step."""
    inner = getattr(model, "module", model)
    inner.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
