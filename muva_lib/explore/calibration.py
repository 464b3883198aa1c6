"""The calibration explorer: the VGE calibration thresholds as sliders over one backend's answers on a sample;
the per-part box-height histograms (raw, calibrated, ground truth) and the IoU-to-truth table follow live."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import ipywidgets as widgets
import numpy as np

from ..config import VgeCfg
from ..grounding.calibrate import CORES, CalibCfg
from ..grounding.report import build_views, training_sample
from ..tables import format_table
from ..utils import rounded
from ..viz import grounding as vg
from .base import Explorer, View

__all__ = ["HIST_BINS", "calibration_explorer"]

HIST_BINS = 40  # the bins of viz.grounding.height_histograms: the counts in ``state`` use the same edges


def calibration_explorer(dataset: str = "synth-a", *, n_images: int = 120, backend: str = "synthetic",
                         vge: VgeCfg | None = None, root: str | Path | None = None) -> Explorer:
    """Explore the calibration of ``backend``'s answers on ``n_images`` training images of ``dataset``: sliders
    for ``fence_k``, ``min_spread`` and ``min_samples`` and the fence core (defaults: ``vge``'s).

    ``root``: the dataset's folder (default: the usual place). ``state``: ``changed`` (part -> boxes the
    calibration changed), ``counts`` (part -> calibrated height histogram counts), ``iou`` (the table rows)."""
    vge = vge or VgeCfg()
    items = training_sample(dataset, n_images, root=root)
    view = build_views(items, replace(vge, backend=backend), [backend])[backend]
    base = CalibCfg.from_vge(vge)
    raw = view.heights("raw")
    truth = view.heights("truth") if view.truth is not None else None
    controls: dict[str, widgets.ValueWidget] = {
        "fence_k": widgets.FloatSlider(value=base.fence_k, min=0.0, max=4.0, step=0.1, description="fence k",
                                       continuous_update=False),
        "min_spread": widgets.FloatSlider(value=base.min_spread, min=0.0, max=0.3, step=0.01,
                                          description="min spread", continuous_update=False),
        "min_samples": widgets.IntSlider(value=base.min_samples, min=1, max=max(200, base.min_samples),
                                         description="min samples", continuous_update=False),
        "core": widgets.Dropdown(options=list(CORES), value=base.core, description="core"),
    }

    def render(v: Mapping[str, Any]) -> View:
        cfg = CalibCfg(fence_k=v["fence_k"], min_spread=v["min_spread"], min_samples=v["min_samples"], core=v["core"])
        now = view.recalibrated(cfg)
        cal = now.heights("calibrated")
        series = {"raw": raw, "calibrated": cal, **({"ground truth": truth} if truth is not None else {})}
        fig = vg.height_histograms(series, now.parts, bins=HIST_BINS)
        edges = np.linspace(0.0, 1.0, HIST_BINS + 1)
        counts = {p: np.histogram(np.clip(cal[p], 0, 1), bins=edges)[0].tolist() for p in now.parts}
        changed = {p: sum(now.calibration.reasons[it.key][p] != "ok" for it in now.items) for p in now.parts}
        iou = now.iou_rows()
        lines = [f"{dataset}: {len(now.items)} images, backend {now.tag}; boxes changed by calibration: "
                 + ", ".join(f"{p} {n}" for p, n in changed.items())]
        if iou is not None:
            lines.append(format_table(rounded(iou, 4)))
        return View(fig, {"changed": changed, "counts": counts, "iou": iou}, "\n".join(lines))

    return Explorer("calibration", controls, render)
