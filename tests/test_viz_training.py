"""Training figures: they build from log rows, are closed, and save to identical bytes twice."""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from muva_lib.viz import save_figure
from muva_lib.viz import training as vt

MUVA = [{"epoch": e, "lr": 1e-4 / e, "loss": 9.0 - e, "loss_id": 4.0 - 0.1 * e, "loss_mask_bce": 0.5 / e, "acc": 0.1 * e}
        for e in (1, 2, 3)]
CLIP = [{"epoch": e, "lr": 1e-4, "loss": 5.0 - e, "loss_id": 3.0, "loss_triplet": 1.0 / e} for e in (1, 2, 3)]


def _closed(fig) -> bool:
    return fig.number not in plt.get_fignums()


def _stable(fig, tmp_path, name):
    a = save_figure(fig, "t", name, out_dir=tmp_path / "a").read_bytes()
    b = save_figure(fig, "t", name, out_dir=tmp_path / "b").read_bytes()
    assert a == b and len(a) > 1000
    assert (tmp_path / "a" / f"{name}.pdf").read_bytes() == (tmp_path / "b" / f"{name}.pdf").read_bytes()


def test_curve_keys_union_in_order():
    assert vt.curve_keys({"muva": MUVA, "clipreid": CLIP}) == [
        "loss", "loss_id", "loss_mask_bce", "loss_triplet", "acc", "lr"]


def test_loss_curves(tmp_path):
    fig = vt.loss_curves({"muva": MUVA, "clipreid": CLIP}, title="stage 2")
    assert _closed(fig)
    assert len([ax for ax in fig.axes if ax.axison]) == 6
    _stable(fig, tmp_path, "losses")
    with pytest.raises(ValueError):
        vt.loss_curves({"x": []})


def test_metric_curves(tmp_path):
    evals = {"muva": [{"epoch": e, "target": "synth-b", "mAP": 0.1 * e, "rank1": 0.2 * e} for e in (2, 4)]}
    fig = vt.metric_curves(evals)
    assert _closed(fig) and len(fig.axes) == 2
    _stable(fig, tmp_path, "map")


def test_accuracy_bars_heatmap_and_histograms(tmp_path):
    fig = vt.accuracy_bars({"muva": {"global": 0.9, "head": 0.5}, "clipreid": {"global": 0.8}}, chance=0.01)
    assert _closed(fig)
    _stable(fig, tmp_path, "bars")
    sim = np.eye(5) * 0.5 + 0.1
    fig = vt.similarity_heatmap({"global": sim, "head": sim}, n_show=4)
    assert _closed(fig) and len(fig.axes) == 3  # two panels and a colour bar
    _stable(fig, tmp_path, "heat")
    fig = vt.similarity_histograms(np.linspace(0.5, 1, 50), np.linspace(-0.1, 0.6, 50))
    assert _closed(fig)
    _stable(fig, tmp_path, "hist")
