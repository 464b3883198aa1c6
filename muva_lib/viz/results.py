"""Figures about finished runs: every seed as a dot, so the spread behind a table's mean ± std is visible.

Both builders take the frame of :func:`muva_lib.tables.collect_results` (one row per run and target,
metrics as fractions) and plot the protocol's own first target only.
"""
from __future__ import annotations

import textwrap
from typing import Iterable, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .grounding import SCREEN_DPI
from .training import RUN_COLOURS

__all__ = ["method_seeds", "ablation_seeds", "paired_seeds"]

_METRIC_NAMES = {"mAP": "mAP", "rank1": "R1", "rank5": "R5", "rank10": "R10", "mINP": "mINP"}


def _strip(ax: Axes, groups: Sequence[tuple[str, np.ndarray]], colours: Sequence[str]) -> None:
    """One column per group: its values (fractions, shown in %) as dots spread a little sideways, a
    short bar at the mean, a thin line for ± one standard deviation (ddof=1) when there are 2+."""
    rng = np.random.default_rng(0)  # fixed jitter: the same figure, byte for byte, on every run
    for i, ((label, values), colour) in enumerate(zip(groups, colours)):
        if len(values) == 0:
            continue
        y = 100 * values
        ax.scatter(i + rng.uniform(-0.12, 0.12, len(y)), y, s=12, color=colour, alpha=0.8, lw=0, zorder=3)
        ax.hlines(y.mean(), i - 0.25, i + 0.25, color=colour, lw=2, zorder=2)
        if len(y) > 1:
            sd = y.std(ddof=1)
            ax.vlines(i, y.mean() - sd, y.mean() + sd, color=colour, lw=0.8, zorder=1)
    ax.set_xticks(range(len(groups)), [g[0] for g in groups], fontsize=6)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.tick_params(labelsize=6)
    ax.grid(axis="y", lw=0.3, alpha=0.5)


def _grid(n: int, ncols: int, panel_w: float, panel_h: float, margin: float = 0.6) -> tuple[Figure, np.ndarray]:
    """``n`` panels in rows of ``ncols`` (at most ``n``), each ``panel_w`` x ``panel_h`` inches, plus ``margin``
    inches of width."""
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    return plt.subplots(nrows, ncols, squeeze=False, figsize=(panel_w * ncols + margin, panel_h * nrows),
                        dpi=SCREEN_DPI)


def _finish(fig: Figure, axes: np.ndarray, n: int, ylabel: str, title: str) -> Figure:
    """The y label on the first column, unused panels off, the title, a tight layout; the closed figure."""
    for ax in axes[:, 0]:
        ax.set_ylabel(ylabel, fontsize=7)
    for ax in axes.flat[n:]:
        ax.axis("off")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.4)
    plt.close(fig)
    return fig


def _own(results: pd.DataFrame, protocol: str) -> pd.DataFrame:
    from ..tables import own_target

    return own_target(results[results["protocol"] == protocol], protocol)


def method_seeds(results: pd.DataFrame, methods: Iterable[str] | None = None,
                 protocols: Sequence[str] | None = None, metric: str = "mAP", ncols: int = 3,
                 title: str = "") -> Figure:
    """One panel per protocol (its first target), one column per method: a dot per seed, a bar at the
    mean, a line for ± one std. Ablation runs (``variant`` set) are left out; ``methods`` fixes the
    column order (a method without runs gets no column), ``protocols`` the panels (default: every protocol with runs, in order of appearance)."""
    from ..tables import METHOD_NAMES

    if metric not in _METRIC_NAMES:
        raise ValueError(f"method_seeds: unknown metric {metric!r}; choose from {sorted(_METRIC_NAMES)}")
    main = results[results["variant"].fillna("") == ""] if not results.empty else results
    if main.empty:
        raise ValueError("method_seeds: no finished runs to plot")
    protocols = list(protocols) if protocols is not None else list(dict.fromkeys(main["protocol"]))
    present = set(main["method"])
    order = [m for m in (methods if methods is not None else sorted(present)) if m in present]
    n = len(protocols)
    fig, axes = _grid(n, ncols, 1.1 * len(order), 2.0)
    colours = [RUN_COLOURS[i % len(RUN_COLOURS)] for i in range(len(order))]
    for ax, protocol in zip(axes.flat, protocols):
        sub = _own(main, protocol)
        groups = [(METHOD_NAMES.get(m, m), sub.loc[sub["method"] == m, metric].dropna().to_numpy(float))
                  for m in order]
        _strip(ax, groups, colours)
        counts = [c for c in (int(sub.loc[sub["method"] == m, "seed"].nunique()) for m in order) if c] or [0]
        seeds = str(counts[0]) if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"
        ax.set_title(f"{protocol} ({seeds} seed{'' if seeds == '1' else 's'})", fontsize=7)
    return _finish(fig, axes, n, f"{_METRIC_NAMES[metric]} (%)", title)


def ablation_seeds(results: pd.DataFrame, protocol: str = "synth-a->synth-b", metric: str = "mAP",
                   methods: Iterable[str] | None = None, title: str = "") -> Figure:
    """One panel per method with ablation runs on ``protocol``: its full recipe first (grey), then each of
    its ablations (:data:`muva_lib.config.ABLATIONS`) with runs, a dot per seed, a bar at the mean and
    a dashed line at the recipe's mean, so a change can be read against the seed spread."""
    from ..config import ABLATIONS
    from ..tables import METHOD_NAMES

    if metric not in _METRIC_NAMES:
        raise ValueError(f"ablation_seeds: unknown metric {metric!r}; choose from {sorted(_METRIC_NAMES)}")
    sub = _own(results, protocol) if not results.empty else results
    sub = sub.assign(variant=sub["variant"].fillna("")) if not sub.empty else sub
    order = list(methods) if methods is not None else sorted({a.method for a in ABLATIONS.values()})
    panels = [m for m in order if not sub.empty and (sub.loc[sub["method"] == m, "variant"] != "").any()]
    if not panels:
        raise ValueError(f"ablation_seeds: no ablation runs on {protocol}")
    widths = [1 + sum(a.method == m for a in ABLATIONS.values()) for m in panels]
    fig, axes = plt.subplots(1, len(panels), squeeze=False, figsize=(0.75 * sum(widths) + 0.8, 2.6),
                             dpi=SCREEN_DPI, gridspec_kw={"width_ratios": widths})
    for ax, method in zip(axes[0], panels):
        s = sub[sub["method"] == method]
        variants = [("", "full recipe")] + [(k, a.label) for k, a in ABLATIONS.items() if a.method == method]
        variants = [(k, label) for k, label in variants if (s["variant"] == k).any()]
        groups = [(textwrap.fill(label, 16),
                   s.loc[s["variant"] == k, metric].dropna().to_numpy(float)) for k, label in variants]
        _strip(ax, groups, ["0.45"] + [RUN_COLOURS[i % len(RUN_COLOURS)] for i in range(len(groups) - 1)])
        base = s.loc[s["variant"] == "", metric].dropna()
        if len(base):
            ax.axhline(100 * base.mean(), color="0.45", ls="--", lw=0.8, zorder=0)
        ax.set_title(f"{METHOD_NAMES.get(method, method)} on {protocol}", fontsize=7)
        ax.tick_params(axis="x", labelsize=5)
    axes[0][0].set_ylabel(f"{_METRIC_NAMES[metric]} (%)", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(pad=0.4)
    plt.close(fig)
    return fig


def paired_seeds(results: pd.DataFrame, protocols: Sequence[str] | None = None, metric: str = "mAP",
                 ncols: int = 3, title: str = "") -> Figure:
    """One panel per protocol, one column per paired comparison of :func:`muva_lib.tables.paired_comparisons`
    (each method pretrained minus random init; MUVA and pi-VL minus CLIP-ReID under each init): a dot per
    seed's difference (points), a bar at the mean, a line for ± one std, and the zero line, so a difference
    can be read against its seed spread."""
    from ..tables import paired_comparisons, paired_differences

    if metric not in _METRIC_NAMES:
        raise ValueError(f"paired_seeds: unknown metric {metric!r}; choose from {sorted(_METRIC_NAMES)}")
    if results.empty:
        raise ValueError("paired_seeds: no finished runs to plot")
    protocols = list(protocols) if protocols is not None else list(dict.fromkeys(results["protocol"]))
    comps = paired_comparisons()
    n = len(protocols)
    fig, axes = _grid(n, ncols, 0.5 * len(comps), 2.6, margin=0.8)
    colours = [RUN_COLOURS[i % len(RUN_COLOURS)] for i in range(len(comps))]
    for ax, protocol in zip(axes.flat, protocols):
        groups = [(textwrap.fill(label, 18), np.asarray(paired_differences(results, a, b, protocol, metric)["diffs"])
                   / 100.0) for label, a, b in comps]
        _strip(ax, groups, colours)
        ax.axhline(0.0, color="0.3", lw=0.6, zorder=0)
        ax.tick_params(axis="x", labelsize=4.5, rotation=90)
        ax.set_title(protocol, fontsize=7)
    return _finish(fig, axes, n, f"{_METRIC_NAMES[metric]} difference (points)", title)
