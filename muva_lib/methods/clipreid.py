"""CLIP-ReID (peers 2.2, 2.3): the base recipe the other methods build on.

Stage 1: the identity prompts learn against the projected CLS of a frozen encoder with SupCon
(image->text + text->image) on random batches of cached features. Stage 2: ID loss on two BN heads
(the CLS head ``model.cls_head``), triplet on three features and the i2t cross-entropy; pad + crop and
random erasing; the test feature concatenates the D-wide CLS and the pre-BN feature. Written relative to
the dataclass defaults (which hold MUVA's values, the paper this workbench reproduces).
"""
from __future__ import annotations

from .registry import Recipe

__all__ = ["ClipReid"]


class ClipReid(Recipe):
    name = "clipreid"
    overrides = {
        "model.num_parts": 0,
        "model.ctx_init_std": 0.02,
        "stage1.loss": "supcon",
        "stage2.w_id": 0.25,
        "stage2.w_memory": 0.0,
        "stage2.w_mask": 0.0,
        "stage2.w_triplet": 1.0,
        "stage2.bias_lr_factor": 2.0,
        "stage2.rmp_lr_mult": 1.0,
        "model.cls_head": True,
        "data.pad": 10,
        "data.erase_prob": 0.5,
        "eval.after_bn": False,
        "eval.with_hidden": True,
    }
    #: The smoke budget (a few minutes from random weights) is too short for the pad/crop/erasing: with them
    #: the synth-a->synth-b mAP halves, so smoke runs the flip only.
    preset_overrides = {"smoke": {"data.pad": 0, "data.erase_prob": 0.0}}
