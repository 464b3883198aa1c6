"""Stage-2 training augmentation on normalised tensors, driven by an explicit ``torch.Generator``.

MUVA (spec 1.5): resize 256x128 bicubic, normalise, joint image + part-mask horizontal flip p=0.5;
no padding, crop or erasing. CLIP-ReID (peers.md 2.4) adds pad 10 + random crop back to size and
timm-style random erasing (p=0.5, pixel mode) after normalisation: ``data.pad=10 data.erase_prob=0.5``.
Every random draw comes from the generator handed in (seeded per sample by the sampler), so a batch is
the same whatever the number of loader workers, and a resumed run sees the same augmentations.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import torch
from torch import Tensor

from ..geometry.patch_grid import hflip_mask, joint_hflip

if TYPE_CHECKING:
    from ..config import DataCfg

__all__ = ["TrainAugment", "random_erase"]


def random_erase(img: Tensor, g: torch.Generator, prob: float = 0.5, area: tuple[float, float] = (0.02, 1 / 3),
                 log_aspect: tuple[float, float] = (math.log(0.3), math.log(1 / 0.3)),
                 attempts: int = 10) -> Tensor:
    """timm RandomErasing (mode ``pixel``, one box): with probability ``prob`` replace a random box of
    ``area`` fraction and aspect ratio in ``exp(log_aspect)`` by N(0, 1) noise. img [C, H, W] normalised."""
    if float(torch.rand((), generator=g)) >= prob:
        return img
    c, h, w = img.shape
    for _ in range(attempts):
        target = h * w * float(torch.empty(()).uniform_(area[0], area[1], generator=g))
        aspect = math.exp(float(torch.empty(()).uniform_(log_aspect[0], log_aspect[1], generator=g)))
        eh, ew = int(round(math.sqrt(target * aspect))), int(round(math.sqrt(target / aspect)))
        if eh < h and ew < w:
            top = int(torch.randint(0, h - eh + 1, (), generator=g))
            left = int(torch.randint(0, w - ew + 1, (), generator=g))
            img = img.clone()
            img[:, top:top + eh, left:left + ew] = torch.randn(c, eh, ew, generator=g, dtype=img.dtype)
            return img
    return img


class TrainAugment:
    """Random flip (joint with the part mask), pad + random crop, random erasing of one sample.

    ``__call__(img [3, H, W] normalised, mask Bool[R, h*w] or None, g) -> (img, mask)``. Padding fills
    with the normalised value of black (CLIP-ReID pads the PIL image with 0). The crop shifts the image
    by at most ``pad`` pixels; the part mask is not shifted (less than one 16-pixel patch at pad 10).
    :meth:`apply` also flips pi-VL's parsing labels [h'*w'] on their own grid ``labels_grid_hw`` (not
    shifted by the crop, not erased either), with the same random draws.
    """

    @classmethod
    def from_config(cls, grid_hw: tuple[int, int], cfg: DataCfg, *,
                    labels_grid_hw: tuple[int, int] | None = None) -> TrainAugment:
        """The augmentation of the data slice ``cfg`` (flip, pad, erasing, normalisation) on ``grid_hw``."""
        return cls(grid_hw, flip_prob=cfg.flip_prob, pad=cfg.pad, erase_prob=cfg.erase_prob,
                   mean=cfg.pixel_mean, std=cfg.pixel_std, labels_grid_hw=labels_grid_hw)

    def __init__(self, grid_hw: tuple[int, int], *, flip_prob: float = 0.5, pad: int = 0, erase_prob: float = 0.0,
                 mean: Sequence[float] = (0.5, 0.5, 0.5), std: Sequence[float] = (0.5, 0.5, 0.5),
                 labels_grid_hw: tuple[int, int] | None = None):
        self.grid_hw = tuple(grid_hw)
        self.labels_grid_hw = tuple(labels_grid_hw) if labels_grid_hw is not None else None
        self.flip_prob = flip_prob
        self.pad = pad
        self.erase_prob = erase_prob
        self.fill = torch.tensor([-m / s for m, s in zip(mean, std)]).view(-1, 1, 1)

    def __call__(self, img: Tensor, mask: Tensor | None, g: torch.Generator) -> tuple[Tensor, Tensor | None]:
        img, mask, _ = self.apply(img, mask, g)
        return img, mask

    def apply(self, img: Tensor, mask: Tensor | None, g: torch.Generator, labels: Tensor | None = None
              ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """:meth:`__call__` plus parsing labels [h'*w'] (or None) flipped with the image."""
        if float(torch.rand((), generator=g)) < self.flip_prob:
            if mask is None:
                img = img.flip(-1)
            else:
                img, mask = joint_hflip(img, mask, self.grid_hw)
            if labels is not None:
                if self.labels_grid_hw is None:
                    raise ValueError("parsing labels need TrainAugment(labels_grid_hw=...)")
                labels = hflip_mask(labels, self.labels_grid_hw)
        if self.pad > 0:
            c, h, w = img.shape
            canvas = self.fill.to(img.dtype).expand(c, h + 2 * self.pad, w + 2 * self.pad).clone()
            canvas[:, self.pad:self.pad + h, self.pad:self.pad + w] = img
            top, left = (int(v) for v in torch.randint(0, 2 * self.pad + 1, (2,), generator=g))
            img = canvas[:, top:top + h, left:left + w].contiguous()
        if self.erase_prob > 0:
            img = random_erase(img, g, self.erase_prob)
        return img, mask, labels
