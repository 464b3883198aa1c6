"""Views for the CLI / notebooks (counts, reasons, IoU, cases, heights) and the VGE figures."""
from __future__ import annotations

import numpy as np
import pytest

from muva_lib.config import VgeCfg
from muva_lib.grounding.report import build_views, training_sample
from muva_lib.utils import evenly_spaced, rounded
from muva_lib.viz import grounding as vg


@pytest.fixture(scope="module")
def views(synth_small, tmp_path_factory):
    from muva_lib.data.readers import read_dataset

    items = evenly_spaced(list(read_dataset("synth-a", root=synth_small.root / "synth-a").train), 120)
    out = build_views(items, VgeCfg(noise="paper"), ["synthetic", "prior", "mllm"], root=tmp_path_factory.mktemp("g"))
    return items, out


def test_build_views_skips_model_backends_without_a_model(views):
    items, out = views
    assert list(out) == ["synthetic", "prior"] and len(items) == 120


def test_tables(views):
    _, out = views
    syn = out["synthetic"]
    counts = syn.count_rows()
    assert [r["part"] for r in counts] == ["head", "upper", "legs"]
    assert all(r["parsed"] + r["fell back"] + r["failed"] == 120 for r in counts)
    assert sum(r["boxes"] for r in syn.reason_rows()) == 360
    assert syn.reason_totals("missing")["legs"] == counts[2]["fell back"]
    assert [r["part"] for r in syn.stats_rows()] == ["head", "upper", "legs"]
    iou = syn.iou_rows()
    assert iou[-1]["part"] == "mean" and iou[-1]["calibrated"] > iou[-1]["raw"]
    assert rounded([{"a": 0.123456, "b": "x"}]) == [{"a": 0.1235, "b": "x"}]


def test_cases_and_heights(views):
    _, out = views
    syn = out["synthetic"]
    over = syn.cases("oversized", part="legs", limit=3)
    assert len(over) == 3 and all(c.calibration.startswith("oversized") and c.part == "legs" for c in over)
    fails = syn.failures(limit=6)
    assert len(fails) == 6 and all(c.status != "ok" or c.calibration != "ok" for c in fails)
    h = syn.heights("raw")
    assert set(h) == {"head", "upper", "legs"} and float(h["legs"].max()) > 0.75
    assert float(syn.heights("calibrated")["legs"].max()) < 0.75
    with pytest.raises(ValueError):
        syn.heights("model")


def test_figures(views):
    items, out = views
    syn = out["synthetic"]
    show = items[:3]
    fig = vg.boxes_grid(show, {n: [v.raw(it.key) for it in show] for n, v in out.items()})
    assert len(fig.axes) == 6
    assert len(vg.failure_gallery(syn.failures(limit=5), ncols=3).axes) == 6
    assert len(vg.height_histograms({"raw": syn.heights("raw"), "calibrated": syn.heights("calibrated")}).axes) == 3
    assert len(vg.before_after(syn.cases("oversplit", limit=2)).axes) == 4
    with pytest.raises(ValueError):
        vg.before_after([])


def test_evenly_spaced():
    assert evenly_spaced(list(range(10)), 3) == [0, 3, 6]
    assert evenly_spaced([1, 2], 0) == [1, 2] and evenly_spaced([1, 2], 5) == [1, 2]
    assert np.all(np.diff(evenly_spaced(list(range(960)), 240)) == 4)


def test_training_sample(synth_small):
    items = training_sample("synth-a", 10, root=synth_small.root / "synth-a")
    assert len(items) == 10 and [it.relpath for it in items] == sorted(it.relpath for it in items)
    assert all(it.relpath.startswith("bounding_box_train/") for it in items)
