"""Figures about the pretrained CLIP (notebook 07): corpus samples with captions, pretraining curves, text-to-image
retrieval examples, attribute accuracy, the colour-binding test and patch-to-part similarity maps.

Every builder takes plain data (arrays, lists, dicts of numbers; images as uint8 [H, W, 3] arrays or file paths)
and returns a closed Figure; the notebook gathers the data (:func:`muva_lib.eval.zeroshot.probe`).
"""
from __future__ import annotations

import textwrap
from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..eval.zeroshot.metrics import binding_accuracy
from .grounding import SCREEN_DPI
from .retrieval import MATCH_COLOUR, MISS_COLOUR, _frame
from .training import RUN_COLOURS

__all__ = ["CURVE_KEYS", "NEUTRAL_COLOUR", "corpus_samples", "pretraining_curves", "text_retrieval",
           "attribute_bars", "binding_histogram", "part_similarity_maps"]

#: the panels of :func:`pretraining_curves`, in order (the columns of the pretraining ``log.csv``)
CURVE_KEYS = ("loss", "logit_scale", "logit_bias", "lr")
#: the frame of a retrieved image whose identity is unknown (a typed description)
NEUTRAL_COLOUR = "#7f7f7f"
_PART_MARK = {"head": "[head] ", "upper": "[upper] ", "legs": "[legs] "}


def _as_image(image: Any) -> np.ndarray:
    """A uint8 [H, W, 3] array from an array or an image path (read at its own size)."""
    if isinstance(image, np.ndarray):
        return image
    from PIL import Image as PILImage

    with PILImage.open(image) as im:
        return np.asarray(im.convert("RGB"))


def corpus_samples(images: Sequence[Any], captions: Sequence[Sequence[tuple[str, str]]], *, ncols: int = 6,
                   width: int = 22) -> Figure:
    """A grid of corpus images, each with its captions wrapped beneath: ``captions[i]`` is a list of
    (text, part) with part ``full`` or a part name; part captions are marked ``[part]`` and set in italics."""
    if not images or len(images) != len(captions):
        raise ValueError(f"corpus_samples: {len(images)} images and {len(captions)} caption lists (need >= 1, equal)")
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=(1.9 * ncols, 3.6 * nrows), dpi=SCREEN_DPI)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, image, caps in zip(axes.flat, images, captions):
        ax.imshow(_as_image(image))
        ax.set_xticks([])
        ax.set_yticks([])
        y = -0.03
        for text, part in caps:
            body = textwrap.fill(_PART_MARK.get(part, "") + text, width)
            ax.text(0.5, y, body, transform=ax.transAxes, ha="center", va="top", fontsize=5.5,
                    style="normal" if part == "full" else "italic", color="k" if part == "full" else "#1f4e99")
            y -= 0.045 * (body.count("\n") + 1) + 0.02
    fig.subplots_adjust(left=0.01, right=0.99, top=0.99, bottom=0.3 / nrows, wspace=0.15, hspace=1.0)
    plt.close(fig)
    return fig


def pretraining_curves(rows: Sequence[Mapping[str, Any]], keys: Sequence[str] = CURVE_KEYS) -> Figure:
    """One panel per logged value against the step: ``rows`` are the pretraining ``log.csv`` rows (``step`` and
    the ``keys``; a key absent or empty in every row, e.g. ``logit_bias`` of the softmax loss, gets no panel)."""
    rows = list(rows)
    if not rows:
        raise ValueError("pretraining_curves: no logged steps")
    present = [k for k in keys if any(r.get(k) not in (None, "") for r in rows)]
    if not present:
        raise ValueError(f"pretraining_curves: none of {list(keys)} is logged")
    fig, axes = plt.subplots(1, len(present), squeeze=False, figsize=(2.4 * len(present), 2.0), dpi=SCREEN_DPI)
    for ax, key in zip(axes[0], present):
        pts = [(float(r["step"]), float(r[key])) for r in rows if r.get(key) not in (None, "")]
        x, y = zip(*pts)
        ax.plot(x, y, lw=1.2, marker="o" if len(pts) < 30 else None, ms=2.5, color=RUN_COLOURS[0])
        ax.set_title(key.replace("_", " "), fontsize=8)
        ax.set_xlabel("step", fontsize=6)
        ax.tick_params(labelsize=6)
        if key == "lr":
            ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
            ax.yaxis.get_offset_text().set_fontsize(6)
    fig.tight_layout(pad=0.4)
    plt.close(fig)
    return fig


def text_retrieval(texts: Sequence[str], images: Sequence[Sequence[Any]], scores: Any,
                   matches: Any | None = None, *, width: int = 60) -> Figure:
    """One row per text: the text above its top-k images (``images[i][r]``, best first), each titled with its
    similarity ``scores`` [Q, k] and framed green when ``matches`` [Q, k] says it shows the text's identity, red
    when not; grey when ``matches`` is None or a row of it is all NaN (a typed description: identity unknown)."""
    scores = np.asarray(scores, dtype=np.float64)
    q = len(texts)
    if scores.ndim != 2 or scores.shape[0] != q or len(images) != q or q == 0:
        raise ValueError(f"text_retrieval: {q} texts, {len(images)} image lists, scores {scores.shape} "
                         "(expected [Q, k], Q >= 1)")
    k = scores.shape[1]
    if any(len(row) != k for row in images):
        raise ValueError(f"text_retrieval: every text needs {k} images")
    match = np.full((q, k), np.nan) if matches is None else np.asarray(matches, dtype=np.float64)
    if match.shape != (q, k):
        raise ValueError(f"text_retrieval: matches {match.shape}, expected {(q, k)}")
    fig, axes = plt.subplots(q, k, squeeze=False, figsize=(0.75 * k + 0.3, 1.75 * q), dpi=SCREEN_DPI)
    for i in range(q):
        for r in range(k):
            ax = axes[i][r]
            ax.imshow(_as_image(images[i][r]))
            colour = NEUTRAL_COLOUR if np.isnan(match[i, r]) else MATCH_COLOUR if match[i, r] else MISS_COLOUR
            _frame(ax, colour, 2.5)
            ax.set_xlabel(f"{scores[i, r]:.3f}", fontsize=5.5, labelpad=1)
        axes[i][0].set_title(textwrap.fill(f"\u201c{texts[i]}\u201d", width), fontsize=6.5, loc="left", pad=3)
    fig.subplots_adjust(left=0.02, right=0.98, top=1 - 0.28 / q, bottom=0.12 / q, wspace=0.08, hspace=0.75)
    plt.close(fig)
    return fig


def attribute_bars(accuracy: Mapping[str, Mapping[str, float]], chance: Mapping[str, float]) -> Figure:
    """Balanced accuracy per attribute (in %), one bar group per attribute and one bar per model
    (``accuracy[label][attribute]``, e.g. shipped vs random init), the chance level 1/V of each attribute
    marked with a black tick."""
    if not accuracy:
        raise ValueError("attribute_bars: no model to show")
    attrs = list(chance)
    missing = {label: [a for a in attrs if a not in acc] for label, acc in accuracy.items()}
    if any(missing.values()):
        raise ValueError(f"attribute_bars: attributes without a value: {missing}")
    n = len(accuracy)
    x = np.arange(len(attrs))
    width = 0.8 / n
    fig, ax = plt.subplots(figsize=(max(4.0, 0.5 * len(attrs) + 1.0), 2.5), dpi=SCREEN_DPI)
    for m, (label, acc) in enumerate(accuracy.items()):
        ax.bar(x - 0.4 + width * (m + 0.5), [100 * acc[a] for a in attrs], width, label=label,
               color=RUN_COLOURS[m % len(RUN_COLOURS)])
    ax.hlines([100 * chance[a] for a in attrs], x - 0.45, x + 0.45, colors="k", lw=1.2, label="chance")
    ax.set_xticks(x, [a.replace("_", " ") for a in attrs], rotation=40, ha="right", fontsize=6)
    ax.set_ylabel("balanced accuracy (%)", fontsize=7)
    ax.set_ylim(0, 100)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6, frameon=False, ncol=n + 1, loc="upper right")
    fig.tight_layout(pad=0.4)
    plt.close(fig)
    return fig


def binding_histogram(margins: Mapping[str, Any], bins: int = 30) -> Figure:
    """The colour-binding test: a histogram per model of score(caption) - score(colour-swapped caption)
    (``margins[label]`` [P]); right of the dashed zero line the true caption wins. The legend gives each
    model's accuracy (ties count half, as :func:`muva_lib.eval.zeroshot.binding_accuracy`)."""
    arrays = {label: np.asarray(v, dtype=np.float64).ravel() for label, v in margins.items()}
    if not arrays or any(not len(a) for a in arrays.values()):
        raise ValueError("binding_histogram: every model needs at least one pair")
    lo = min(a.min() for a in arrays.values())
    hi = max(a.max() for a in arrays.values())
    span = max(hi - lo, 1e-6)
    edges = np.linspace(lo - 0.02 * span, hi + 0.02 * span, bins + 1)
    fig, ax = plt.subplots(figsize=(4.0, 2.3), dpi=SCREEN_DPI)
    for m, (label, a) in enumerate(arrays.items()):
        acc = binding_accuracy(a, np.zeros_like(a))
        ax.hist(a, bins=edges, alpha=0.55, color=RUN_COLOURS[m % len(RUN_COLOURS)],
                label=f"{label}: {100 * acc:.1f}% right")
    ax.axvline(0.0, color="k", ls="--", lw=1)
    ax.set_xlabel("score(caption) - score(colours swapped)", fontsize=7)
    ax.set_ylabel("images", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6, frameon=False)
    fig.tight_layout(pad=0.4)
    plt.close(fig)
    return fig


def part_similarity_maps(images: Sequence[Any], maps: Any, boxes: Any, parts: Sequence[str],
                         row_labels: Sequence[str] | None = None) -> Figure:
    """One row per image: the image, then one heat map per part text over the patch grid (``maps`` [N, R, h, w],
    each map scaled to its own range), drawn over the dimmed image with the part's ground-truth box
    (``boxes`` [N, R, 4], fractions x0, y0, x1, y1; NaN: no box) in white and the best patch marked."""
    maps = np.asarray(maps, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64)
    n = len(images)
    if maps.ndim != 4 or maps.shape[:2] != (n, len(parts)) or boxes.shape != (n, len(parts), 4) or n == 0:
        raise ValueError(f"part_similarity_maps: {n} images, {len(parts)} parts, maps {maps.shape} (want "
                         f"[N, R, h, w]), boxes {boxes.shape} (want [N, R, 4])")
    _, r_count, h, w = maps.shape
    fig, axes = plt.subplots(n, 1 + r_count, squeeze=False, figsize=(1.0 * (1 + r_count) + 0.4, 1.9 * n),
                             dpi=SCREEN_DPI)
    for i in range(n):
        img = _as_image(images[i])
        H, W = img.shape[:2]
        axes[i][0].imshow(img)
        _frame(axes[i][0], "k", 1.0)
        if row_labels is not None:
            axes[i][0].set_ylabel(row_labels[i], fontsize=6)
        for r in range(r_count):
            ax = axes[i][1 + r]
            ax.imshow(img, alpha=0.45)
            m = maps[i, r]
            span = m.max() - m.min()
            ax.imshow((m - m.min()) / (span if span > 0 else 1.0), cmap="inferno", alpha=0.6, extent=(0, W, H, 0),
                      interpolation="nearest", vmin=0, vmax=1)
            best = int(np.argmax(m))
            ax.plot((best % w + 0.5) * W / w, (best // w + 0.5) * H / h, marker="x", color="c", ms=5, mew=1.5)
            if not np.isnan(boxes[i, r]).any():
                x0, y0, x1, y1 = boxes[i, r] * [W, H, W, H]
                ax.add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, ec="w", lw=1.2))
            ax.set_xlim(0, W)
            ax.set_ylim(H, 0)
            _frame(ax, "k", 0.5)
            if i == 0:
                ax.set_title(parts[r], fontsize=7)
    axes[0][0].set_title("image", fontsize=7)
    fig.subplots_adjust(left=0.04, right=0.99, top=0.93, bottom=0.02, wspace=0.08, hspace=0.15)
    plt.close(fig)
    return fig
