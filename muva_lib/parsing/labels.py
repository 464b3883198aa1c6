"""Label maps on grids (pure): majority vote of a class map per grid cell, and the horizontal flip of grid labels."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["majority_labels", "hflip_labels"]


def majority_labels(label_map: np.ndarray, grid_hw: tuple[int, int], num_classes: int) -> np.ndarray:
    """Class map [H, W] (ints in 0..num_classes-1) -> labels [h*w] (row-major) of a grid of h x w cells.

    A pixel belongs to the cell under its centre: row ``floor((y + 0.5) * h / H)``, the same for columns
    (the patch rule of :mod:`muva_lib.grounding.rasterize`). A cell takes the class most of its pixels
    have; ties go to the smaller class index (background wins a tie). A cell holding no pixel centre
    (grid finer than the map) takes the pixel under the cell's centre. Returns uint8.
    """
    m = np.asarray(label_map)
    if m.ndim != 2:
        raise ValueError(f"label map must be [H, W], got shape {m.shape}")
    (hh, ww), (h, w) = m.shape, grid_hw
    if m.size and (m.min() < 0 or m.max() >= num_classes):
        raise ValueError(f"label map has classes {int(m.min())}..{int(m.max())}, expected 0..{num_classes - 1}")
    rows = np.minimum(((np.arange(hh) + 0.5) * h / hh).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(ww) + 0.5) * w / ww).astype(np.int64), w - 1)
    cell = rows[:, None] * w + cols[None, :]
    counts = np.bincount((cell * num_classes + m.astype(np.int64)).ravel(),
                         minlength=h * w * num_classes).reshape(h * w, num_classes)
    out = counts.argmax(1)
    empty = counts.sum(1) == 0
    if empty.any():
        cy = np.minimum(((np.arange(h) + 0.5) * hh / h).astype(np.int64), hh - 1)
        cx = np.minimum(((np.arange(w) + 0.5) * ww / w).astype(np.int64), ww - 1)
        out[empty] = m[cy[:, None], cx[None, :]].reshape(-1)[empty]
    return out.astype(np.uint8)


def hflip_labels(labels: Any, grid_hw: tuple[int, int]) -> Any:
    """Mirror row-major grid labels ``[..., h*w]`` (numpy array or torch tensor) along the width."""
    from ..grounding.rasterize import hflip_mask

    return hflip_mask(labels, grid_hw)
