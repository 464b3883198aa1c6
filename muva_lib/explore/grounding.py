"""The grounding explorer: one training image of a dataset, the part boxes of a backend (raw answer or
calibrated), their patch masks on the model's grid, and what the store recorded about each answer."""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, Sequence

import ipywidgets as widgets

from ..config import VgeCfg
from ..geometry import boxes_to_masks, grid_for
from ..grounding.report import GroundingView, build_views, training_sample
from ..viz import masks as vm
from .base import Explorer, View

__all__ = ["available_backends", "grounding_explorer"]

NOISE_LEVELS = ("none", "paper", "heavy")


def available_backends() -> list[str]:
    """The backends that run here without a model: synthetic and prior always, cascade with OpenCV, pose with
    mediapipe (transformers backends need a model folder: give them to the explorer by name)."""
    from ..grounding.backends.pose import pose_missing

    names = ["synthetic", "prior"]
    try:
        import cv2  # noqa: F401
        names.append("cascade")
    except ImportError:
        pass
    return names + ([] if pose_missing() else ["pose"])


def grounding_explorer(datasets: str | Sequence[str] = "synth-a", *, n_images: int = 48,
                       backends: Sequence[str] | None = None, vge: VgeCfg | None = None,
                       input_hw: tuple[int, int] = (128, 64), roots: Mapping[str, str | Path] | None = None,
                       models: Mapping[str, str] | None = None, device: str = "auto") -> Explorer:
    """Explore the VGE on ``n_images`` training images (evenly spaced) of each of ``datasets``: dataset, image,
    backend (default :func:`available_backends`), the synthetic backend's noise level, raw vs calibrated boxes.
    ``models``: backend -> hub id or model folder for the transformers backends (``mllm``, ``detector``); a
    backend given a model joins the menu.

    The figure shows the boxes and their patch masks on the grid of ``input_hw`` (H, W); the info lists each
    part's answer status, reason and calibration. Answers come from the grounding store (``$MUVA_DATA``),
    grounded the first time; calibration is fitted on the shown sample. ``roots``: dataset -> its folder (default:
    the usual place; a synthetic domain missing there is generated). ``state``: ``key``, ``boxes``,
    ``masks`` (patches per part), ``reasons`` (part -> "status: reason; calibration")."""
    names = [datasets] if isinstance(datasets, str) else list(datasets)
    vge = vge or VgeCfg()
    models = {k: v for k, v in (models or {}).items() if v}
    backend_names = list(backends) if backends is not None else available_backends()
    backend_names += [name for name in models if name not in backend_names]
    grid = grid_for(input_hw)

    @lru_cache(maxsize=None)
    def sample(dataset: str) -> list:
        return training_sample(dataset, n_images, root=(roots or {}).get(dataset))

    @lru_cache(maxsize=None)
    def view(dataset: str, backend: str, noise: str) -> GroundingView:
        cfg = replace(vge, noise=noise) if backend == "synthetic" else vge
        views = build_views(sample(dataset), cfg, [backend], models, device=device)
        if backend not in views:
            raise ValueError(f"backend {backend!r} needs a model: pass models={{{backend!r}: <hub id or folder>}}")
        return views[backend]

    first = sample(names[0])
    controls: dict[str, widgets.ValueWidget] = {
        "dataset": widgets.Dropdown(options=names, value=names[0], description="dataset"),
        "backend": widgets.Dropdown(options=backend_names, value=backend_names[0], description="backend"),
        "noise": widgets.Dropdown(options=NOISE_LEVELS, value=vge.noise if vge.noise in NOISE_LEVELS else "paper",
                                  description="noise"),
        "image": widgets.IntSlider(value=0, min=0, max=len(first) - 1, description="image", continuous_update=False),
        "boxes": widgets.ToggleButtons(options=["raw", "calibrated"], value="raw", description="boxes"),
    }

    def render(v: dict[str, Any]) -> View:
        controls["noise"].disabled = v["backend"] != "synthetic"
        gv = view(v["dataset"], v["backend"], v["noise"])
        controls["image"].max = len(gv.items) - 1
        item = gv.items[min(v["image"], len(gv.items) - 1)]
        boxes = gv.raw(item.key) if v["boxes"] == "raw" else gv.calibrated(item.key)
        w, h = gv.size(item.key)
        masks = boxes_to_masks(boxes, (h, w), grid, gv.parts)
        thumb = vm.load_thumbs([item.path], input_hw)[0]
        title = f"{item.relpath} - {gv.tag}, {v['boxes']}"
        fig = vm.boxes_and_masks(thumb, (w, h), boxes, masks, grid, gv.parts, title=title)
        reasons = {}
        for part in gv.parts:
            c = gv.case(item, part)
            reasons[part] = f"{c.status}: {c.reason or '-'}; calibration {c.calibration}"
        info = "\n".join([f"{item.relpath} (id {item.pid}), backend {gv.tag}"]
                         + [f"  {p:6s} {r}" for p, r in reasons.items()])
        return View(fig, {"key": item.key, "boxes": dict(boxes), "masks": {p: int(m.sum()) for p, m in
                                                                              zip(gv.parts, masks)},
                          "reasons": reasons}, info)

    return Explorer("grounding", controls, render)


