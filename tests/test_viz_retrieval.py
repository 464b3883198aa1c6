"""Ranked-list figure: green / red frames, short lists, byte-stable output."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from muva_lib.viz import retrieval as vr
from muva_lib.viz import save_figure


def test_ranked_lists_frames_and_bytes(tmp_path, fake_items):
    paths = [it.path for it in fake_items(4)]
    gallery = [[paths[1], paths[2], paths[3]], [paths[2], None, None]]
    matches = np.array([[True, False, True], [False, False, False]])
    fig = vr.ranked_lists([paths[0], paths[1]], gallery, matches, labels=["AP 0.83", "AP 0.00"])
    assert fig.number not in plt.get_fignums()
    rows = np.array(fig.axes).reshape(2, 5)
    assert rows[0][2].spines["top"].get_edgecolor()[:3] == pytest.approx((0x2c / 255, 0xa0 / 255, 0x2c / 255))
    assert rows[0][3].spines["top"].get_edgecolor()[:3] == pytest.approx((0xd6 / 255, 0x27 / 255, 0x28 / 255))
    assert not rows[1][3].axison  # the list of query 2 is shorter
    a = save_figure(fig, "t", "r", out_dir=tmp_path / "a").read_bytes()
    assert a == save_figure(fig, "t", "r", out_dir=tmp_path / "b").read_bytes()
    with pytest.raises(ValueError):
        vr.ranked_lists([paths[0]], gallery, matches)
