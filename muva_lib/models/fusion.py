"""pi-VL's light auxiliary fusion head (training only): multi-stage visual features fused into one per-location map.

ViT (:class:`ViTFusionHead`): a simple feature pyramid in the spirit of ViTDet from a plain backbone:
the patch tokens after blocks at 1/3, 2/3 and 3/3 of the depth (:func:`fusion_blocks`), each brought
from stride 16 to the output stride (8: a 2x2 transposed convolution; 16: a 1x1 convolution; 32: 2x2
average pooling then 1x1) with ``dim`` channels, summed, GroupNorm + GELU, then a 1x1 projection
to the text width. ResNet (:class:`ResNetFusionHead`): conv2, conv3, conv4 (open_clip
``ModifiedResNet`` ``layer1..3``: 256 / 512 / 1024 channels at strides 4 / 8 / 16 for RN50), each
through a 1x1 depth-wise convolution followed by a 1x1 point-wise one (a depth-wise 1x1 alone cannot
change the channel count, which the paper says it aligns: our reading), resampled to stride 8
(average pooling down, bilinear up), summed, then the same norm, activation and projection.

The head is not part of :class:`muva_lib.models.factory.ReidModel`: the test-time model is CLIP-ReID's.
"""
from __future__ import annotations

from typing import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["fusion_blocks", "FusionHead", "ViTFusionHead", "ResNetFusionHead", "tokens_to_map"]


def fusion_blocks(num_blocks: int, levels: int = 3) -> tuple[int, ...]:
    """0-based indices of the blocks whose outputs are fused: the last block of each k/levels of the depth
    (12 blocks, 3 levels -> (3, 7, 11); 4 blocks -> (0, 2, 3))."""
    if levels < 1 or num_blocks < 1:
        raise ValueError(f"fusion needs >= 1 level and block, got levels={levels} blocks={num_blocks}")
    return tuple(sorted({max(1, round(k * num_blocks / levels)) - 1 for k in range(1, levels + 1)}))


def tokens_to_map(tokens: Tensor, grid_hw: tuple[int, int]) -> Tensor:
    """Patch tokens [B, L, D] (row-major grid) -> feature map [B, D, h, w]."""
    b, l, d = tokens.shape
    h, w = grid_hw
    if l != h * w:
        raise ValueError(f"{l} tokens do not fill a {h}x{w} grid")
    return tokens.transpose(1, 2).reshape(b, d, h, w)


class FusionHead(nn.Module):
    """Levels [B, C_i, h_i, w_i] at strides ``in_strides`` -> fused features [B, out_dim, H/s, W/s] at
    ``out_stride`` s. Subclasses build ``self.levels`` (one module per input, to ``dim`` channels)."""

    def __init__(self, in_strides: Sequence[int], out_dim: int, dim: int = 256, out_stride: int = 8):
        super().__init__()
        self.in_strides = tuple(int(s) for s in in_strides)
        self.out_stride = int(out_stride)
        self.levels = nn.ModuleList()
        self.norm = nn.GroupNorm(1, dim)
        self.act = nn.GELU()
        self.out = nn.Conv2d(dim, out_dim, 1)

    def out_size(self, first: Tensor) -> tuple[int, int]:
        """The output grid from the first level's map and stride."""
        h, w = first.shape[-2:]
        s = self.in_strides[0]
        return h * s // self.out_stride, w * s // self.out_stride

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """feats: one [B, C_i, h_i, w_i] per level -> [B, out_dim, h, w] at the output stride."""
        if len(feats) != len(self.levels):
            raise ValueError(f"fusion head has {len(self.levels)} levels, got {len(feats)} feature maps")
        size = self.out_size(feats[0])
        total = None
        for level, x in zip(self.levels, feats):
            y = level(x)
            if tuple(y.shape[-2:]) != size:
                y = (F.adaptive_avg_pool2d(y, size) if y.shape[-2] > size[0]
                     else F.interpolate(y, size=size, mode="bilinear", align_corners=False))
            total = y if total is None else total + y
        return self.out(self.act(self.norm(total)))


def _vit_level(width: int, dim: int, in_stride: int, out_stride: int) -> nn.Module:
    """Stride ``in_stride`` -> ``out_stride`` with ``dim`` channels: transposed conv up, 1x1, or pool + 1x1."""
    if out_stride < in_stride:
        if in_stride % out_stride:
            raise ValueError(f"fusion stride {out_stride} does not divide the patch stride {in_stride}")
        r = in_stride // out_stride
        return nn.ConvTranspose2d(width, dim, r, stride=r)
    if out_stride == in_stride:
        return nn.Conv2d(width, dim, 1)
    if out_stride % in_stride:
        raise ValueError(f"fusion stride {out_stride} is not a multiple of the patch stride {in_stride}")
    r = out_stride // in_stride
    return nn.Sequential(nn.AvgPool2d(r), nn.Conv2d(width, dim, 1))


class ViTFusionHead(FusionHead):
    """Simple feature pyramid over ``levels`` blocks of a plain ViT of ``width`` channels and patch
    ``patch`` (see the module docstring). ``forward`` takes the blocks' maps [B, width, h, w]."""

    def __init__(self, width: int, out_dim: int, levels: int = 3, dim: int = 256, patch: int = 16,
                 out_stride: int = 8):
        super().__init__([patch] * levels, out_dim, dim, out_stride)
        self.levels.extend(_vit_level(width, dim, patch, out_stride) for _ in range(levels))


class ResNetFusionHead(FusionHead):
    """conv2..conv4 maps of a CLIP ResNet (channels ``in_channels`` at ``in_strides``) -> stride 8."""

    def __init__(self, out_dim: int, in_channels: Sequence[int] = (256, 512, 1024),
                 in_strides: Sequence[int] = (4, 8, 16), dim: int = 256, out_stride: int = 8):
        if len(in_channels) != len(in_strides):
            raise ValueError("one stride per input channel count")
        super().__init__(in_strides, out_dim, dim, out_stride)
        self.levels.extend(nn.Sequential(nn.Conv2d(c, c, 1, groups=c), nn.Conv2d(c, dim, 1)) for c in in_channels)
