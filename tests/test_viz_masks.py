"""AM-MSA figures: masks per block and part, IoU per block, attention maps; closed and byte-stable."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from muva_lib.viz import masks as vm
from muva_lib.viz import save_figure


@pytest.fixture
def images(fake_items):
    return [it.path for it in fake_items(2)]


def test_load_thumbs(images):
    thumbs = vm.load_thumbs(images, (64, 32))
    assert [t.shape for t in thumbs] == [(64, 32, 3)] * 2 and thumbs[0].dtype == np.uint8


def test_mask_layers_and_iou(images, tmp_path):
    grid = (8, 4)
    rng = np.random.default_rng(0)
    vge = rng.random((2, 3, 32)) > 0.5
    pred = rng.random((2, 4, 3, 32)) > 0.5
    thumbs = vm.load_thumbs(images)
    fig = vm.mask_layers(thumbs, vge, pred, grid)
    assert fig.number not in plt.get_fignums()
    assert len(fig.axes) == 2 * 3 * 5
    a = save_figure(fig, "t", "m", out_dir=tmp_path / "a").read_bytes()
    assert a == save_figure(fig, "t", "m", out_dir=tmp_path / "b").read_bytes()
    with pytest.raises(ValueError):
        vm.mask_layers(thumbs[:1], vge, pred, grid)
    fig = vm.iou_per_layer(np.array([[0.2, 0.3, 0.4], [0.5, 0.6, 0.7]]))
    assert fig.number not in plt.get_fignums()
    assert len(fig.axes[0].lines) == 4


def test_attention_maps(images, tmp_path):
    maps = np.full((2, 4, 8, 4), 1 / 32)
    fig = vm.attention_maps(vm.load_thumbs(images), maps, ["CLS", "head", "upper", "legs"])
    assert fig.number not in plt.get_fignums() and len(fig.axes) == 2 * 5
    a = save_figure(fig, "t", "att", out_dir=tmp_path / "a").read_bytes()
    assert a == save_figure(fig, "t", "att", out_dir=tmp_path / "b").read_bytes()
    with pytest.raises(ValueError):
        vm.attention_maps(vm.load_thumbs(images), maps, ["CLS"])


def test_part_masks_grid(images, tmp_path):
    vge = np.zeros((2, 3, 32), bool)
    vge[:, 0, :8] = True
    fig = vm.part_masks_grid(vm.load_thumbs(images), vge, (8, 4))
    assert fig.number not in plt.get_fignums() and len(fig.axes) == 3 * 2
    a = save_figure(fig, "t", "p", out_dir=tmp_path / "a").read_bytes()
    assert a == save_figure(fig, "t", "p", out_dir=tmp_path / "b").read_bytes()
