"""MUVA (muva_spec.md): CLIP-ReID plus part tokens gated by the VGE part masks (AM-MSA), the memory loss and
the mask losses, with MUVA's own augmentation (flip only), prompt init and test feature (BN(f)).

Its overrides put back, on top of CLIP-ReID, the dataclass defaults (the defaults describe MUVA).
"""
from __future__ import annotations

from ..config import Ablation
from .clipreid import ClipReid

__all__ = ["Muva"]


class Muva(ClipReid):
    name = "muva"
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


