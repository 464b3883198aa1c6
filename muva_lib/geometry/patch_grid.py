"""Rasterisation of part boxes to the patch grid (pure): boolean ``[R, h*w]`` masks and the joint flip.

Rule (centre-in-box, documented in muva_spec.md 1.1 as ours): the image of ``H x W`` is resized
(plainly, no padding) to the model input, e.g. 256 x 128, cut into ``h x w`` patches (16 x 8 at
patch 16). Patch ``(a, b)`` (row ``a`` from the top, column ``b`` from the left) covers input
pixels ``[16a, 16a + 16) x [16b, 16b + 16)``; its centre in the original image is
``((b + 0.5) * W / w, (a + 0.5) * H / h)``. The patch belongs to a part when its centre lies in
the part box, half-open: ``x0 <= cx < x1`` and ``y0 <= cy < y1``. Masks are row-major:
index ``a * w + b``, ``True`` = inside. With ``ensure_one`` a non-empty box that holds no
centre still marks the one patch under its own centre (a part token never sees zero patches).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from .boxes import Box

__all__ = ["grid_for", "patch_centres", "box_to_mask", "boxes_to_masks", "hflip_mask", "hflip_box", "joint_hflip"]


def grid_for(input_hw: tuple[int, int], patch: int = 16) -> tuple[int, int]:
    """Patch grid ``(h, w)`` of a model input ``(H, W)``: ``(256, 128), 16 -> (16, 8)``."""
    hh, ww = input_hw
    if hh % patch or ww % patch:
        raise ValueError(f"input size {input_hw} is not a multiple of the patch size {patch}")
    return hh // patch, ww // patch


def patch_centres(image_hw: tuple[int, int], grid_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the patch rows ``cy [h]`` and columns ``cx [w]`` in pixels of the original image."""
    (hh, ww), (h, w) = image_hw, grid_hw
    return (np.arange(h) + 0.5) * hh / h, (np.arange(w) + 0.5) * ww / w


def box_to_mask(box: Box | None, image_hw: tuple[int, int], grid_hw: tuple[int, int],
                ensure_one: bool = True) -> np.ndarray:
    """Boolean ``[h*w]`` mask of one pixel box on the patch grid (``None`` -> all False)."""
    h, w = grid_hw
    if box is None:
        return np.zeros(h * w, dtype=bool)
    cy, cx = patch_centres(image_hw, grid_hw)
    x0, y0, x1, y1 = box
    rows = (cy >= y0) & (cy < y1)
    cols = (cx >= x0) & (cx < x1)
    mask = rows[:, None] & cols[None, :]
    if ensure_one and not mask.any() and x1 > x0 and y1 > y0:
        a = int(np.clip(np.floor((y0 + y1) / 2 * h / image_hw[0]), 0, h - 1))
        b = int(np.clip(np.floor((x0 + x1) / 2 * w / image_hw[1]), 0, w - 1))
        mask[a, b] = True
    return mask.reshape(-1)


def boxes_to_masks(boxes: Mapping[str, Box | None], image_hw: tuple[int, int], grid_hw: tuple[int, int],
                   parts: Sequence[str], ensure_one: bool = True) -> np.ndarray:
    """Boolean ``[R, h*w]`` masks of one image's part boxes, rows in ``parts`` order (MUVA's:
    :data:`muva_lib.data.types.PARTS`; this module imports nothing of the package)."""
    return np.stack([box_to_mask(boxes.get(p), image_hw, grid_hw, ensure_one) for p in parts])


def hflip_mask(mask: Any, grid_hw: tuple[int, int]) -> Any:
    """Mirror ``[..., h*w]`` masks along the width (numpy array or torch tensor)."""
    h, w = grid_hw
    grid = mask.reshape(*mask.shape[:-1], h, w)
    flipped = grid.flip(-1) if hasattr(grid, "flip") and not isinstance(grid, np.ndarray) else grid[..., ::-1]
    return flipped.reshape(*mask.shape[:-1], h * w)


def hflip_box(box: Box, width: float) -> Box:
    """Mirror a pixel box in an image of ``width`` pixels."""
    return (width - box[2], box[1], width - box[0], box[3])


def joint_hflip(image: Any, mask: Any, grid_hw: tuple[int, int]) -> tuple[Any, Any]:
    """Flip an image ``[..., C, H, W]`` (tensor or array) and its masks ``[..., R, h*w]`` together.

    The data loader's random flip must call this, never flip one without the other.
    """
    img = image.flip(-1) if hasattr(image, "flip") and not isinstance(image, np.ndarray) else image[..., ::-1]
    return img, hflip_mask(mask, grid_hw)
