"""The AM-MSA masks explorer: for one image, block and part of a finished MUVA run, the predicted mask beside
the VGE mask, the mask IoU per block with that block marked, and the CLS / part-token attention."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import ipywidgets as widgets
import numpy as np

from ..analysis import MaskProbe, mask_iou_per_layer, mask_probe, predicted_masks, token_attention
from ..data.types import PARTS, Item
from ..utils import resolve_device
from ..viz import masks as vm
from .base import Explorer, View

__all__ = ["masks_explorer"]


def masks_explorer(runs: str | Path | Sequence[str | Path], items: Sequence[Item], *, device: str = "cpu") -> Explorer:
    """Explore AM-MSA on ``items`` (training images: the VGE grounded them) with one or several finished runs
    of a method with part tokens: run, image slider, block slider, part dropdown.

    The mask IoU per block is the mean over ``items``; the masks and attention are those of the chosen image.
    ``state``: ``pred_mask`` / ``vge_mask`` (the shown masks as 0/1 lists), ``iou`` (this block and part)."""
    device = str(resolve_device(device))  # "auto" as the notebooks' DEVICE says it
    run_list = [str(r) for r in ([runs] if isinstance(runs, (str, Path)) else runs)]
    items = list(items)
    if not run_list or not items:
        raise ValueError("masks_explorer: give at least one run folder and one item")

    @lru_cache(maxsize=4)
    def probe(run: str) -> tuple[MaskProbe, Any, Any]:
        p = mask_probe(run, items, device)
        return p, predicted_masks(p.logits, p.tau, p.thresh), mask_iou_per_layer(p.logits, p.vge, p.tau, p.thresh)

    first, _, _ = probe(run_list[0])
    parts = list(PARTS[:first.vge.shape[1]])
    thumb_hw = (first.grid_hw[0] * 16, first.grid_hw[1] * 16)
    controls: dict[str, widgets.ValueWidget] = {
        "run": widgets.Dropdown(options=run_list, value=run_list[0], description="run",
                                layout=widgets.Layout(width="420px")),
        "image": widgets.IntSlider(value=0, min=0, max=len(items) - 1, description="image", continuous_update=False),
        "block": widgets.IntSlider(value=0, min=0, max=len(first.logits) - 1, description="block",
                                   continuous_update=False),
        "part": widgets.Dropdown(options=[(p, j) for j, p in enumerate(parts)], value=0, description="part"),
    }

    def render(v: dict[str, Any]) -> View:
        p, pred, iou = probe(v["run"])
        i, b, j = v["image"], min(v["block"], len(p.logits) - 1), v["part"]
        controls["block"].max = len(p.logits) - 1
        maps = token_attention(p.attn[b][i:i + 1], len(parts), p.grid_hw)[0]  # [1 + R, gh, gw]
        thumb = vm.load_thumbs([items[i].path], thumb_hw)[0]
        vge, mask = p.vge[i, j].numpy(), pred[i, b, j].numpy()
        fig = vm.block_view(thumb, vge, mask, maps[[0, 1 + j]].numpy(), np.asarray(iou), b, j, p.grid_hw, parts)
        info = (f"{items[i].relpath}: block {b + 1} of {len(p.logits)}, {parts[j]}: {int(mask.sum())} patches "
                f"predicted, {int(vge.sum())} from the VGE; mean IoU over {len(items)} images {float(iou[b, j]):.4f}")
        return View(fig, {"block_index": b, "pred_mask": mask.astype(int).tolist(),
                          "vge_mask": vge.astype(int).tolist(), "iou": float(iou[b, j])}, info)

    return Explorer("AM-MSA masks", controls, render)
