"""Label maps on grids (pure): a vote of a class map per grid cell (plain majority, or foreground-favouring),
and the horizontal flip of grid labels."""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["majority_labels", "foreground_labels", "vote_labels", "VOTES", "hflip_labels"]

#: the cell votes :func:`vote_labels` knows
VOTES = ("majority", "foreground")


def _cell_counts(label_map: np.ndarray, grid_hw: tuple[int, int], num_classes: int) -> np.ndarray:
    """Class map [H, W] -> pixel counts [h*w, num_classes] per grid cell (pixel-centre rule)."""
    m = np.asarray(label_map)
    if m.ndim != 2:
        raise ValueError(f"label map must be [H, W], got shape {m.shape}")
    (hh, ww), (h, w) = m.shape, grid_hw
    if m.size and (m.min() < 0 or m.max() >= num_classes):
        raise ValueError(f"label map has classes {int(m.min())}..{int(m.max())}, expected 0..{num_classes - 1}")
    rows = np.minimum(((np.arange(hh) + 0.5) * h / hh).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(ww) + 0.5) * w / ww).astype(np.int64), w - 1)
    cell = rows[:, None] * w + cols[None, :]
    return np.bincount((cell * num_classes + m.astype(np.int64)).ravel(),
                       minlength=h * w * num_classes).reshape(h * w, num_classes)


def _fill_empty(out: np.ndarray, counts: np.ndarray, label_map: np.ndarray, grid_hw: tuple[int, int]) -> np.ndarray:
    """Cells holding no pixel centre (grid finer than the map) take the pixel under the cell's centre."""
    empty = counts.sum(1) == 0
    if empty.any():
        m = np.asarray(label_map)
        (hh, ww), (h, w) = m.shape, grid_hw
        cy = np.minimum(((np.arange(h) + 0.5) * hh / h).astype(np.int64), hh - 1)
        cx = np.minimum(((np.arange(w) + 0.5) * ww / w).astype(np.int64), ww - 1)
        out[empty] = m[cy[:, None], cx[None, :]].reshape(-1)[empty]
    return out.astype(np.uint8)


def majority_labels(label_map: np.ndarray, grid_hw: tuple[int, int], num_classes: int) -> np.ndarray:
    """Class map [H, W] (ints in 0..num_classes-1) -> labels [h*w] (row-major) of a grid of h x w cells.

    A pixel belongs to the cell under its centre: row ``floor((y + 0.5) * h / H)``, the same for columns
    (the patch rule of :mod:`muva_lib.geometry.patch_grid`). A cell takes the class most of its pixels
    have; ties go to the smaller class index (background wins a tie). A cell holding no pixel centre
    (grid finer than the map) takes the pixel under the cell's centre. Returns uint8.
    """
    counts = _cell_counts(label_map, grid_hw, num_classes)
    return _fill_empty(counts.argmax(1), counts, label_map, grid_hw)


def foreground_labels(label_map: np.ndarray, grid_hw: tuple[int, int], num_classes: int,
                      min_share: float = 0.25) -> np.ndarray:
    """Like :func:`majority_labels`, but favouring the person: a cell whose part pixels (classes >= 1,
    all parts together) cover at least ``min_share`` of it takes its most frequent *part* class (ties to
    the smaller index), even when background is the largest single class; other cells are background.

    At a coarse grid (8 x 4 patches of a 128 x 64 crop) the plain majority leaves most of a thin person
    as background; this vote keeps a part label wherever a part covers a fair share of the patch.
    ``min_share`` in (0, 1]; 0.5 gives "parts together outvote background". Returns uint8 [h*w].
    """
    if not 0.0 < min_share <= 1.0:
        raise ValueError(f"min_share must be in (0, 1], got {min_share}")
    counts = _cell_counts(label_map, grid_hw, num_classes)
    parts = counts[:, 1:]
    covered = parts.sum(1)
    keep = (covered >= min_share * counts.sum(1)) & (covered > 0)
    out = np.where(keep, parts.argmax(1) + 1, 0)
    return _fill_empty(out, counts, label_map, grid_hw)


def vote_labels(label_map: np.ndarray, grid_hw: tuple[int, int], num_classes: int, vote: str = "majority",
                min_share: float = 0.25) -> np.ndarray:
    """The cell vote by name (:data:`VOTES`): ``majority`` or ``foreground`` (with ``min_share``)."""
    if vote == "majority":
        return majority_labels(label_map, grid_hw, num_classes)
    if vote == "foreground":
        return foreground_labels(label_map, grid_hw, num_classes, min_share)
    raise ValueError(f"unknown parsing vote {vote!r}; expected one of {', '.join(VOTES)}")


def hflip_labels(labels: Any, grid_hw: tuple[int, int]) -> Any:
    """Mirror row-major grid labels ``[..., h*w]`` (numpy array or torch tensor) along the width."""
    from ..geometry.patch_grid import hflip_mask

    return hflip_mask(labels, grid_hw)
