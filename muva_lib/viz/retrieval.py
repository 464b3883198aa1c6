"""Figures about retrieval: a query and its top-k gallery items with green (true match) / red borders, and which
queries to show (best, median and worst by AP)."""
from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .grounding import SCREEN_DPI
from .masks import load_thumbs

__all__ = ["MATCH_COLOUR", "MISS_COLOUR", "JUNK_COLOUR", "average_precisions", "inverse_negative_penalties",
           "first_match_ranks", "pick_by_ap", "pick_names",
           "ranked_lists", "ranked_by_ap"]

MATCH_COLOUR = "#2ca02c"
MISS_COLOUR = "#d62728"
JUNK_COLOUR = "#a0a0a0"  # same identity and camera as the query: left out of the metrics (Market rule)


def _frame(ax: plt.Axes, colour: str, width: float) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_edgecolor(colour)
        spine.set_linewidth(width)


def average_precisions(match: np.ndarray) -> np.ndarray:
    """AP of each query from its whole ranked list: ``match`` Bool[n, G] (true match at each rank, the
    Market rule applied, as :func:`muva_lib.analysis.ranked_gallery` gives with k = G) -> Float[n], the
    mean over the true matches of the precision at each (as :mod:`muva_lib.eval.rank_reference` defines AP);
    NaN for a query with no true match."""
    match = np.asarray(match, bool)
    if match.ndim != 2 or match.shape[1] == 0:
        raise ValueError(f"match must be Bool[n, G] with G >= 1, got shape {match.shape}")
    hits = match.cumsum(1)  # [n, G] true matches up to each rank
    num = hits[:, -1]
    ap = np.full(match.shape[0], np.nan)
    ok = num > 0
    ap[ok] = (hits / np.arange(1, match.shape[1] + 1) * match).sum(1)[ok] / num[ok]
    return ap


def inverse_negative_penalties(match: np.ndarray) -> np.ndarray:
    """INP of each query from its whole ranked list: ``match`` Bool[n, G] (Market rule applied) -> Float[n],
    true matches / rank of the hardest (last) true match, as mINP averages it; NaN with no true match."""
    match = np.asarray(match, bool)
    if match.ndim != 2 or match.shape[1] == 0:
        raise ValueError(f"match must be Bool[n, G] with G >= 1, got shape {match.shape}")
    num = match.sum(1)
    last = match.shape[1] - np.argmax(match[:, ::-1], axis=1)  # 1-based rank of the last true match
    return np.where(num > 0, num / np.maximum(last, 1), np.nan)


def first_match_ranks(match: np.ndarray) -> np.ndarray:
    """1-based rank of each query's first true match in ``match`` Bool[n, k] (0: none in the list)."""
    match = np.asarray(match, bool)
    return np.where(match.any(1), match.argmax(1) + 1, 0)


def pick_by_ap(ap: Sequence[float], n: int = 3) -> list[int]:
    """Which queries to show: ``n`` spread evenly over the queries ranked by AP, best first (n = 3:
    the best, the median and the worst). The ranking is AP descending, ties by lower query index;
    position ``p * (m - 1) // (n - 1)`` of the ``m`` queries with an AP (NaN: no true match, left
    out) for ``p = 0 .. n-1``, so the median of an even count is the upper-ranked of the middle two.
    Returns query indices."""
    ap = np.asarray(ap, dtype=np.float64)
    valid = [i for i in range(len(ap)) if not np.isnan(ap[i])]
    if n < 1 or len(valid) < n:
        raise ValueError(f"pick_by_ap: {n} queries asked, {len(valid)} of {len(ap)} have a true match (n >= 1)")
    order = sorted(valid, key=lambda i: (-ap[i], i))
    return [order[p * (len(order) - 1) // (n - 1)] if n > 1 else order[0] for p in range(n)]


def pick_names(n: int) -> list[str]:
    """Row names of :func:`pick_by_ap`'s ``n`` picks: best ... worst, ``median`` in the middle of an odd
    count, ``pick p/n`` elsewhere."""
    return ["best" if p == 0 else "worst" if p == n - 1 else "median" if 2 * p == n - 1 else f"pick {p + 1}/{n}"
            for p in range(n)]


def ranked_by_ap(probe: Any, n: int = 3, topk: int = 10) -> tuple[Figure, list[int], np.ndarray]:
    """The ranked-list figure of a :class:`muva_lib.analysis.RetrievalProbe` holding every query's whole
    ranked list (``retrieval_probe(run, 0, 0)``): the queries :func:`pick_by_ap` picks, each row labelled
    with its name, AP and the rank of its first true match, the top ``topk`` of each list. Returns the
    figure, the picked query indices and every query's AP."""
    ap = average_precisions(probe.match)
    picks = pick_by_ap(ap, n)
    first = first_match_ranks(probe.match[picks])
    gallery = [[probe.gallery[j].path if j >= 0 else None for j in probe.index[i, :topk]] for i in picks]
    labels = [f"id {probe.queries[i].pid} / c{probe.queries[i].camid + 1}" for i in picks]
    rows = [f"{name} AP = {ap[i]:.2f}\nfirst match: rank {r}" for name, i, r in zip(pick_names(n), picks, first)]
    fig = ranked_lists([probe.queries[i].path for i in picks], gallery, probe.match[picks, :topk], labels, rows)
    return fig, picks, ap


def ranked_lists(queries: Sequence[str], gallery: Sequence[Sequence[str | None]], matches: np.ndarray,
                 labels: Sequence[str] | None = None, row_labels: Sequence[str] | None = None,
                 junk: np.ndarray | None = None) -> Figure:
    """One row per query: the query image (black frame), a gap, then its ranked gallery images (the
    Market rule already applied, see :func:`muva_lib.analysis.ranked_gallery`), framed green for a
    true match and red otherwise. ``gallery[i][r]`` is an image path (None: list shorter than k),
    ``matches`` Bool[n, k]; ``junk`` Bool[n, k] (optional) frames grey the items the metrics leave out (same
    identity and camera, when the list shows them); ``labels`` go under the queries (e.g. the query's id),
    ``row_labels`` left of
    each row (e.g. which query and its AP)."""
    matches = np.asarray(matches, bool)
    n, k = matches.shape
    if len(queries) != n or len(gallery) != n:
        raise ValueError(f"{len(queries)} queries / {len(gallery)} lists for matches {matches.shape}")
    ratios = [1.0, 0.25] + [1.0] * k
    fig, axes = plt.subplots(n, k + 2, squeeze=False, figsize=(0.55 * sum(ratios) + 0.2, 1.2 * n),
                             gridspec_kw={"width_ratios": ratios}, dpi=SCREEN_DPI)
    for i in range(n):
        row = axes[i]
        row[1].axis("off")
        row[0].imshow(load_thumbs([queries[i]])[0])
        _frame(row[0], "k", 1.5)
        if labels is not None:
            row[0].set_xlabel(labels[i], fontsize=6)
        if row_labels is not None:
            row[0].set_ylabel(row_labels[i], fontsize=6, rotation=0, ha="right", va="center", labelpad=4)
        for r in range(k):
            ax = row[2 + r]
            path = gallery[i][r]
            if path is None:
                ax.axis("off")
                continue
            ax.imshow(load_thumbs([path])[0])
            is_junk = junk is not None and bool(junk[i, r])
            _frame(ax, JUNK_COLOUR if is_junk else MATCH_COLOUR if matches[i, r] else MISS_COLOUR, 2.5)
            if i == 0:
                ax.set_title(str(r + 1), fontsize=7)
    axes[0][0].set_title("query", fontsize=7)
    fig.subplots_adjust(wspace=0.08, hspace=0.15, left=0.01, right=0.99, top=0.9, bottom=0.06)
    plt.close(fig)
    return fig
