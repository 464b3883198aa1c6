"""MUVA (muva_spec.md): CLIP-ReID plus part tokens gated by the VGE part masks (AM-MSA), the memory loss and
the mask losses, with MUVA's own augmentation (flip only), prompt init and test feature (BN(f)).

Its overrides put back, on top of CLIP-ReID, the dataclass defaults (the defaults describe MUVA).
"""
from __future__ import annotations

import torch
from torch import Tensor

from ..config import Ablation
from ..batches.sampler import PKSampler
from ..losses import cluster_nce
from ..memory import visual_prototypes
from .clipreid import ClipReid
from .extras import IdentityPhase
from .step import StepOutput

__all__ = ["Muva", "ClusterNcePhase"]


class ClusterNcePhase(IdentityPhase):
    """PK batches of identity labels (``stage1.batch_size``, K = ``data.num_instances`` repeats of each id)
    against VPM-1, the normalised per-id means of the cached (teacher-forced) pre-BN features; cluster-NCE."""

    loss = "cluster_nce"
    terms = {"cluster_nce": 1.0}

    def sampler(self, cfg, labels: Tensor, salt: int) -> PKSampler:
        return PKSampler(labels.tolist(), cfg.stage1.batch_size, cfg.data.num_instances, cfg.seed, salt=salt)

    def prototypes(self, feats: Tensor, labels: Tensor, num_classes: int) -> Tensor:
        return visual_prototypes(feats, labels, num_classes)

    def step(self, model, cache, prototypes: Tensor | None, cfg, idx: Tensor) -> StepOutput:
        labels = cache.labels[idx.to(cache.labels.device)]
        text = model.text_features(labels).flatten(1)  # [B, (1+R) d]
        loss = cluster_nce(text, prototypes, labels, cfg.stage1.cluster_nce_temp)
        acc = (torch.nn.functional.normalize(text.detach().float(), dim=1) @ prototypes.t()).argmax(1) == labels
        return StepOutput({"cluster_nce": loss}, {"acc": acc.float().mean()}, size=len(labels))


class Muva(ClipReid):
    name = "muva"
    stage1_identity = ClusterNcePhase()
    overrides = {
        "model.num_parts": 3,
        "model.ctx_init_std": 0.002,
        "stage1.loss": "cluster_nce",
        "stage2.w_id": 1.0,
        "stage2.w_memory": 1.0,
        "stage2.w_mask": 1.0,
        "stage2.w_triplet": 0.0,
        "stage2.bias_lr_factor": 1.0,
        "stage2.rmp_lr_mult": 10.0,
        "model.cls_head": False,
        "data.pad": 0,
        "data.erase_prob": 0.0,
        "eval.after_bn": True,
        "eval.with_hidden": False,
    }
    #: MUVA has no pad/crop/erasing to switch off in smoke
    preset_overrides: dict = {}
    #: Online gating needs a non-zero scale m (its default 0 means no masking at all): 5 turns a probability
    #: of 0 / 1 into an additive -5 / +5 on the attention logits.
    ablations = {
        "part-agnostic": Ablation("muva", "part-agnostic prompts", ("model.template_type=part-agnostic",)),
        "gating-online": Ablation("muva", "online (soft) gating, m=5", ("model.gating=online",
                                                                       "model.mask_max_value=5")),
        "gating-none": Ablation("muva", "no gating", ("model.gating=none",)),
        "vge-raw": Ablation("muva", "raw VGE boxes", ("vge.source=raw",)),
        "vge-gt": Ablation("muva", "ground-truth boxes", ("vge.source=gt",)),
    }


