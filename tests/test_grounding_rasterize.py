"""Rasterisation to the patch grid (centre-in-box) and the joint flip, against hand-computed masks."""
from __future__ import annotations

import numpy as np
import pytest

from muva_lib.data.types import PARTS
from muva_lib.geometry.patch_grid import (box_to_mask, boxes_to_masks, grid_for, hflip_box, hflip_mask, joint_hflip,
                                          patch_centres)

HW = (256, 128)  # image height, width
GRID = (16, 8)


def indices(mask):
    return sorted(np.flatnonzero(mask).tolist())


def test_grid_and_centres():
    assert grid_for((256, 128)) == (16, 8) and grid_for((128, 64), 16) == (8, 4)
    with pytest.raises(ValueError, match="multiple"):
        grid_for((250, 128))
    cy, cx = patch_centres(HW, GRID)
    assert cy.tolist() == [8 + 16 * a for a in range(16)] and cx.tolist() == [8 + 16 * b for b in range(8)]


def test_paper_example_boxes():
    # pipeline figure, 128 x 256 crop: head [38,3,73,44] holds centres x 40,56,72 and y 8,24,40
    head = box_to_mask((38, 3, 73, 44), HW, GRID)
    assert indices(head) == [2, 3, 4, 10, 11, 12, 18, 19, 20]
    # upper [10,49,126,142]: rows 3..8 (y 56..136), columns 1..7 (x 24..120)
    upper = box_to_mask((10, 49, 126, 142), HW, GRID)
    assert indices(upper) == [a * 8 + b for a in range(3, 9) for b in range(1, 8)]
    # legs [2,145,103,255]: rows 9..15 (y 152..248), columns 0..5 (x 8..88)
    legs = box_to_mask((2, 145, 103, 255), HW, GRID)
    assert indices(legs) == [a * 8 + b for a in range(9, 16) for b in range(0, 6)]
    masks = boxes_to_masks({"head": (38, 3, 73, 44), "upper": (10, 49, 126, 142), "legs": (2, 145, 103, 255)},
                           HW, GRID, PARTS)
    assert masks.shape == (3, 128) and masks.dtype == bool
    assert (masks[0] == head).all() and (masks[2] == legs).all()


def test_half_open_rule():
    # centre x=8 lies on x0 (inside), x=24 on x1 (outside)
    assert indices(box_to_mask((8, 8, 24, 24), HW, GRID)) == [0]


def test_rule_is_scale_free():
    big = box_to_mask((10, 20, 90, 200), HW, GRID)
    small = box_to_mask((5, 10, 45, 100), (128, 64), GRID)  # same box on a half-size image
    assert (big == small).all()


def test_ensure_one_patch_and_missing_boxes():
    tiny = (30, 30, 33, 33)  # between the centres 24 and 40 on both axes
    assert indices(box_to_mask(tiny, HW, GRID, ensure_one=False)) == []
    assert indices(box_to_mask(tiny, HW, GRID)) == [9]  # centre (31.5, 31.5) is in patch (1, 1)
    assert not box_to_mask(None, HW, GRID).any()
    assert boxes_to_masks({"head": None}, HW, GRID, parts=("head", "legs")).sum() == 0


def test_hflip_mask_by_hand():
    m = np.zeros((1, 128), dtype=bool)
    m[0, 0] = m[0, 9] = True  # patches (0, 0) and (1, 1)
    f = hflip_mask(m, GRID)
    assert indices(f[0]) == [7, 14]  # (0, 7) and (1, 6)
    assert (hflip_mask(f, GRID) == m).all()


def test_flipped_mask_equals_mask_of_flipped_box():
    box = (10, 5, 50, 60)
    assert hflip_box(box, 128) == (78, 5, 118, 60)
    assert (hflip_mask(box_to_mask(box, HW, GRID), GRID) == box_to_mask(hflip_box(box, 128), HW, GRID)).all()


def test_joint_hflip_numpy_and_torch():
    import torch

    img = np.arange(3 * 256 * 128, dtype=np.float32).reshape(3, 256, 128)
    mask = boxes_to_masks({"head": (10, 5, 50, 60), "upper": None, "legs": (0, 128, 64, 256)}, HW, GRID, PARTS)
    fi, fm = joint_hflip(img, mask, GRID)
    assert (fi[:, :, 0] == img[:, :, -1]).all() and (fm == hflip_mask(mask, GRID)).all()
    ti, tm = joint_hflip(torch.from_numpy(img)[None], torch.from_numpy(mask)[None], GRID)  # batched
    assert torch.equal(ti[0], torch.from_numpy(fi.copy())) and torch.equal(tm[0], torch.from_numpy(fm.copy()))
