"""Figures about the VGE: part boxes per backend (paper Fig. 4), failure gallery, box-height
histograms raw vs calibrated (Fig. 5a), and before / after calibration examples (Fig. 5b-d)."""
from __future__ import annotations

import io
import textwrap
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle
from PIL import Image

from ..data.types import PARTS, Item

__all__ = ["PART_COLOURS", "THUMB_HW", "SCREEN_DPI", "draw_boxes", "boxes_grid", "failure_gallery", "height_histograms",
           "before_after", "inline_jpeg"]

#: one colour per part, in every figure
PART_COLOURS: dict[str, str] = {"head": "#d62728", "upper": "#2ca02c", "legs": "#1f77b4"}
Box = tuple[float, float, float, float]


#: thumbnails are drawn at this size (H, W) in the image's own pixel coordinates, so boxes need
#: no rescaling and figures stay small
THUMB_HW = (128, 64)
#: figures display at this dpi in a notebook (``save_figure`` writes files at its own fixed dpi)
SCREEN_DPI = 72


def _image_axis(ax: Axes, item: Item) -> None:
    with Image.open(item.path) as im:
        w, h = im.size
        thumb = im.convert("RGB").resize((THUMB_HW[1], THUMB_HW[0]), Image.BILINEAR)
    ax.imshow(thumb, extent=(0, w, h, 0))
    ax.set_xlim(0, w)
    ax.set_ylim(h, 0)
    ax.set_xticks([])
    ax.set_yticks([])


def draw_boxes(ax: Axes, boxes: Mapping[str, Box | None], dashed: bool = False, width: float = 1.4) -> None:
    """Part boxes (pixels) as coloured rectangles on an image axis; ``None`` boxes are skipped."""
    for part, box in boxes.items():
        if box is None:
            continue
        x0, y0, x1, y1 = box
        ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, lw=width, ls="--" if dashed else "-",
                               edgecolor=PART_COLOURS.get(part, "k")))


def _legend(fig: Figure, parts: Sequence[str] = PARTS, extra: Sequence[tuple[str, str]] = ()) -> None:
    handles = [Line2D([], [], color=PART_COLOURS[p], lw=2, label=p) for p in parts]
    handles += [Line2D([], [], color="0.3", lw=1.4, ls=ls, label=label) for label, ls in extra]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, -0.02))


def boxes_grid(items: Sequence[Item], rows: Mapping[str, Sequence[Mapping[str, Box | None]]]) -> Figure:
    """Paper Fig. 4 style: one row per box source (backend, ground truth), one column per image.

    ``rows[name][j]`` are the part boxes (pixels) of ``items[j]``.
    """
    if not items or not rows:
        raise ValueError("boxes_grid: nothing to show")
    fig, axes = plt.subplots(len(rows), len(items), squeeze=False,
                             figsize=(0.85 * len(items) + 0.4, 1.6 * len(rows) + 0.3), dpi=SCREEN_DPI)
    for r, (name, per_image) in enumerate(rows.items()):
        for c, item in enumerate(items):
            ax = axes[r][c]
            _image_axis(ax, item)
            draw_boxes(ax, per_image[c])
            if c == 0:
                ax.set_ylabel(name, fontsize=7)
    _legend(fig)
    fig.tight_layout(pad=0.3, rect=(0, 0.04, 1, 1))
    plt.close(fig)
    return fig


def _case_title(case: object, width: int = 22) -> str:
    reason = case.reason.split(" (")[0] if case.status != "ok" else case.calibration  # type: ignore[attr-defined]
    answer = case.answer if len(case.answer) <= 20 else case.answer[:18] + ".."  # type: ignore[attr-defined]
    answer = "".join(ch if ch.isprintable() else "?" for ch in answer)
    return "\n".join([f"{case.part}: {case.status}"] + textwrap.wrap(reason, width)[:2] + [f"'{answer}'"])  # type: ignore


def failure_gallery(cases: Sequence[object], ncols: int = 8) -> Figure:
    """Cases (:class:`muva_lib.grounding.report.Case`) where the answer failed or calibration changed
    the box: raw box dashed, calibrated box solid, the part's status, reason and answer as title."""
    if not cases:
        raise ValueError("failure_gallery: no cases")
    ncols = min(ncols, len(cases))
    nrows = -(-len(cases) // ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=(1.15 * ncols, 2.45 * nrows), dpi=SCREEN_DPI)
    for ax in axes.flat:
        ax.axis("off")
    for ax, case in zip(axes.flat, cases):
        ax.axis("on")
        _image_axis(ax, case.item)  # type: ignore[attr-defined]
        draw_boxes(ax, {case.part: case.raw_box}, dashed=True)  # type: ignore[attr-defined]
        draw_boxes(ax, {case.part: case.calibrated_box})  # type: ignore[attr-defined]
        ax.set_title(_case_title(case), fontsize=5.5, pad=2)
    _legend(fig, extra=(("raw answer", "--"), ("calibrated", "-")))
    fig.tight_layout(pad=0.3, rect=(0, 0.07, 1, 1))
    plt.close(fig)
    return fig


def height_histograms(series: Mapping[str, Mapping[str, np.ndarray]], parts: Sequence[str] = PARTS,
                      bins: int = 40) -> Figure:
    """Paper Fig. 5a style: per part, histograms of normalised box height (``h / H``) of each series
    (e.g. ``{"raw": ..., "calibrated": ..., "ground truth": ...}``), on a log count axis."""
    styles = {0: dict(histtype="stepfilled", alpha=0.35), 1: dict(histtype="step", lw=1.6), 2: dict(histtype="step",
                                                                                               lw=1.0, ls="--")}
    colours = ("0.45", "#d62728", "k")
    edges = np.linspace(0.0, 1.0, bins + 1)
    fig, axes = plt.subplots(1, len(parts), figsize=(2.6 * len(parts), 2.3), sharey=True, dpi=SCREEN_DPI)
    for ax, part in zip(np.atleast_1d(axes), parts):
        for i, (name, per_part) in enumerate(series.items()):
            ax.hist(np.clip(per_part[part], 0, 1), bins=edges, color=colours[i % 3], label=name,
                    **styles[min(i, 2)])
        ax.set_yscale("log")
        ax.set_title(part, fontsize=9)
        ax.set_xlabel("box height / image height", fontsize=8)
        ax.tick_params(labelsize=7)
    np.atleast_1d(axes)[0].set_ylabel("boxes", fontsize=8)
    np.atleast_1d(axes)[-1].legend(fontsize=7, frameon=False)
    fig.tight_layout(pad=0.4)
    plt.close(fig)
    return fig


def before_after(cases: Sequence[object], title: str = "") -> Figure:
    """Paper Fig. 5b-d style: top row the raw answer, bottom row the calibrated box, per case."""
    if not cases:
        raise ValueError("before_after: no cases")
    fig, axes = plt.subplots(2, len(cases), squeeze=False, figsize=(0.95 * len(cases) + 0.4, 3.9), dpi=SCREEN_DPI)
    for c, case in enumerate(cases):
        for r, (box, label) in enumerate(((case.raw_box, "before"), (case.calibrated_box, "after"))):  # type: ignore
            ax = axes[r][c]
            _image_axis(ax, case.item)  # type: ignore[attr-defined]
            draw_boxes(ax, {case.part: box}, dashed=(r == 0), width=1.8)  # type: ignore[attr-defined]
            if c == 0:
                ax.set_ylabel(label, fontsize=8)
        why = case.calibration.split("->")[0]  # type: ignore[attr-defined]
        axes[0][c].set_title(f"{case.part}: {why}", fontsize=6.5, pad=2)  # type: ignore[attr-defined]
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.3)
    plt.close(fig)
    return fig


def inline_jpeg(fig: Figure, quality: int = 80) -> object:
    """A figure of photographs for a notebook cell, as a JPEG ``IPython.display.Image`` at
    :data:`SCREEN_DPI`: a quarter of the PNG's bytes for camera images, so notebooks stay small
    (nbval skips ``image/jpeg`` like ``image/png``). The files on disk still come from ``save_figure``."""
    from IPython.display import Image as IPyImage

    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", dpi=SCREEN_DPI, bbox_inches="tight", pil_kwargs={"quality": quality})
    return IPyImage(data=buf.getvalue(), format="jpeg")
