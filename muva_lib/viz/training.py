"""Figures about training: loss terms and lr over epochs, target metrics over epochs, stage-1 retrieval, memory statistics."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from .grounding import SCREEN_DPI

__all__ = ["finish_axes", "curve_keys", "loss_curves", "metric_curves", "accuracy_bars", "similarity_heatmap",
           "similarity_histograms"]

Rows = Sequence[Mapping[str, Any]]
#: one colour per run label, in order of appearance
RUN_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b")


def curve_keys(histories: Mapping[str, Rows]) -> list[str]:
    """The panels of :func:`loss_curves`: ``loss`` (weighted total), each ``loss_<term>`` in first-seen
    order, then ``acc`` and ``lr`` when logged."""
    keys: list[str] = []
    for rows in histories.values():
        for r in rows:
            keys += [k for k in r if k.startswith("loss_") and k not in keys]
    present = {k for rows in histories.values() for r in rows for k in r}
    return ["loss", *keys, *(k for k in ("acc", "lr") if k in present)]


def _grid(n: int, ncols: int, size: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, squeeze=False, figsize=(size[0] * ncols, size[1] * nrows), dpi=SCREEN_DPI)
    for ax in axes.flat[n:]:
        ax.axis("off")
    return fig, axes


def finish_axes(fig: Figure, ax: plt.Axes, title: str = "", legend: str = "best") -> Figure:
    """The common end of a one-panel figure: small ticks, legend at ``legend``, title, tight layout,
    closed (so a notebook shows it once, when returned)."""
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6, frameon=False, loc=legend)
    if title:
        ax.set_title(title, fontsize=8)
    fig.tight_layout(pad=0.4)
    plt.close(fig)
    return fig


def loss_curves(histories: Mapping[str, Rows], title: str = "", ncols: int = 4) -> Figure:
    """One panel per loss term (unweighted epoch means; ``loss`` is the weighted total), accuracy and
    learning rate, one line per run: ``histories[label]`` are the rows of ``logs/<stage>.csv``."""
    if not histories or not any(histories.values()):
        raise ValueError("loss_curves: no epochs to plot")
    keys = curve_keys(histories)
    fig, axes = _grid(len(keys), ncols, (2.3, 1.8))
    for ax, key in zip(axes.flat, keys):
        for i, (label, rows) in enumerate(histories.items()):
            pts = [(r["epoch"], r[key]) for r in rows if key in r and r[key] != ""]
            if pts:
                x, y = zip(*pts)
                ax.plot(x, y, marker="o", ms=2.5, lw=1.2, color=RUN_COLOURS[i % len(RUN_COLOURS)], label=label)
        ax.set_title(key[5:] if key.startswith("loss_") else key, fontsize=8)
        ax.tick_params(labelsize=6)
        ax.set_xlabel("epoch", fontsize=6)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if key == "lr":
            ax.set_yscale("log")
    if len(histories) > 1:
        axes.flat[0].legend(fontsize=6, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.4)
    plt.close(fig)
    return fig


def metric_curves(evals: Mapping[str, Rows], keys: Sequence[str] = ("mAP", "rank1"), title: str = "") -> Figure:
    """Target metrics (fractions, shown in %) over stage-2 epochs, one line per run label and target:
    ``evals[label]`` are the rows of ``logs/eval.csv``."""
    if not any(evals.values()):
        raise ValueError("metric_curves: no evaluations to plot")
    fig, axes = plt.subplots(1, len(keys), squeeze=False, figsize=(2.8 * len(keys), 2.2), dpi=SCREEN_DPI)
    for ax, key in zip(axes[0], keys):
        for i, (label, rows) in enumerate(evals.items()):
            for target in dict.fromkeys(r["target"] for r in rows):
                pts = sorted((r["epoch"], 100 * float(r[key])) for r in rows if r["target"] == target)
                x, y = zip(*pts)
                ax.plot(x, y, marker="o", ms=3, lw=1.2, color=RUN_COLOURS[i % len(RUN_COLOURS)],
                        label=f"{label} on {target}")
        ax.set_title(f"{key} (%)", fontsize=8)
        ax.set_xlabel("stage-2 epoch", fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=6)
    axes[0][0].legend(fontsize=6, frameon=False)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.4)
    plt.close(fig)
    return fig


def accuracy_bars(accs: Mapping[str, Mapping[str, float]], chance: float | None = None, title: str = "") -> Figure:
    """Grouped bars: per granularity (x), one bar per run label; ``accs[label][granularity]`` are
    fractions (shown in %), ``chance`` a dashed line."""
    names = list(dict.fromkeys(g for a in accs.values() for g in a))
    if not names:
        raise ValueError("accuracy_bars: nothing to plot")
    fig, ax = plt.subplots(figsize=(0.9 * len(names) * max(1, len(accs)) ** 0.5 + 1.2, 2.2), dpi=SCREEN_DPI)
    width = 0.8 / max(1, len(accs))
    for i, (label, acc) in enumerate(accs.items()):
        xs = [j + (i - (len(accs) - 1) / 2) * width for j, g in enumerate(names) if g in acc]
        ax.bar(xs, [100 * acc[g] for g in names if g in acc], width, label=label,
               color=RUN_COLOURS[i % len(RUN_COLOURS)])
    if chance is not None:
        ax.axhline(100 * chance, color="0.3", ls="--", lw=1, label="chance")
    ax.set_xticks(range(len(names)), names, fontsize=7)
    ax.set_ylabel("accuracy (%)", fontsize=7)
    ax.set_ylim(0, 100)
    return finish_axes(fig, ax, title, "upper right")


def similarity_heatmap(sims: Mapping[str, np.ndarray], n_show: int = 24, title: str = "") -> Figure:
    """Text (rows) to prototype (columns) cosine similarity of the first ``n_show`` identities, one
    panel per granularity: ``sims[name]`` is [N, N]; the diagonal holds the true pairs."""
    fig, axes = plt.subplots(1, len(sims), squeeze=False, figsize=(1.9 * len(sims) + 0.6, 2.2), dpi=SCREEN_DPI)
    im = None
    for ax, (name, sim) in zip(axes[0], sims.items()):
        s = np.asarray(sim)[:n_show, :n_show]
        im = ax.imshow(s, cmap="viridis", interpolation="nearest")
        ax.set_title(name, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].set_ylabel("text of id", fontsize=7)
    for ax in axes[0]:
        ax.set_xlabel("prototype of id", fontsize=7)
    if im is not None:
        fig.colorbar(im, ax=list(axes[0]), shrink=0.8).ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9)
    plt.close(fig)
    return fig


def similarity_histograms(own: np.ndarray, other: np.ndarray, title: str = "", bins: int = 40) -> Figure:
    """Memory statistics: histograms of each sample's cosine similarity to its own prototype and to the
    nearest other prototype (the gap is what the memory loss widens)."""
    fig, ax = plt.subplots(figsize=(3.6, 2.2), dpi=SCREEN_DPI)
    lo = float(min(np.min(own), np.min(other)))
    edges = np.linspace(min(lo, 0.0), 1.0, bins + 1)
    ax.hist(own, bins=edges, alpha=0.6, color="#2ca02c", label="own prototype")
    ax.hist(other, bins=edges, alpha=0.6, color="#d62728", label="nearest other prototype")
    ax.set_xlabel("cosine similarity", fontsize=7)
    ax.set_ylabel("training images", fontsize=7)
    return finish_axes(fig, ax, title, "upper left")
