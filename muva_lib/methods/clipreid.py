"""CLIP-ReID (peers 2.2, 2.3): the base recipe the other methods build on.

Stage 1: the identity prompts learn against the projected CLS of a frozen encoder with SupCon
(image->text + text->image) on random batches of cached features. Stage 2: ID loss on two BN heads
(the CLS head ``model.cls_head``), triplet on three features and the i2t cross-entropy; pad + crop and
random erasing; the test feature concatenates the D-wide CLS and the pre-BN feature. Written relative to
the dataclass defaults (which hold MUVA's values, the paper this workbench reproduces).
"""
from __future__ import annotations

from torch import Tensor

from ..batches.sampler import ShuffledBatchSampler
from ..losses import supcon
from .extras import IdentityPhase
from .registry import Recipe
from .step import StepOutput

__all__ = ["ClipReid", "SupConPhase"]


class SupConPhase(IdentityPhase):
    """A random permutation of the cached projected CLS features in batches of ``stage1.batch_size``; SupCon
    image->text + text->image (T = 1, raw dot products)."""

    loss = "supcon"
    terms = {"i2t": 1.0, "t2i": 1.0}

    def sampler(self, cfg, labels: Tensor, salt: int) -> ShuffledBatchSampler:
        return ShuffledBatchSampler(len(labels), cfg.stage1.batch_size, cfg.seed, salt=salt)

    def step(self, model, cache, prototypes: Tensor | None, cfg, idx: Tensor) -> StepOutput:
        labels = cache.labels[idx.to(cache.labels.device)]
        text = model.text_features(labels).flatten(1)  # [B, (1+R) d]
        img = cache.feats[idx.to(cache.feats.device)]
        i2t = supcon(img, text, labels, labels)
        t2i = supcon(text, img, labels, labels)
        acc = labels[(img.float() @ text.detach().float().t()).argmax(1)] == labels
        return StepOutput({"i2t": i2t, "t2i": t2i}, {"acc": acc.float().mean()}, size=len(labels))


class ClipReid(Recipe):
    name = "clipreid"
    stage1_identity = SupConPhase()
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
