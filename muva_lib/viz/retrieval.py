"""Figures about retrieval: a query and its top-k gallery items with green (true match) / red borders."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from .grounding import SCREEN_DPI
from .masks import load_thumbs

__all__ = ["MATCH_COLOUR", "MISS_COLOUR", "ranked_lists"]

MATCH_COLOUR = "#2ca02c"
MISS_COLOUR = "#d62728"


def _frame(ax: plt.Axes, colour: str, width: float) -> None:
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_visible(True)
        spine.set_edgecolor(colour)
        spine.set_linewidth(width)


def ranked_lists(queries: Sequence[str], gallery: Sequence[Sequence[str | None]], matches: np.ndarray,
                 labels: Sequence[str] | None = None) -> Figure:
    """One row per query: the query image (black frame), a gap, then its ranked gallery images (the
    Market rule already applied, see :func:`muva_lib.analysis.ranked_gallery`), framed green for a
    true match and red otherwise. ``gallery[i][r]`` is an image path (None: list shorter than k),
    ``matches`` Bool[n, k]; ``labels`` go under the queries (e.g. the query's AP)."""
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
        for r in range(k):
            ax = row[2 + r]
            path = gallery[i][r]
            if path is None:
                ax.axis("off")
                continue
            ax.imshow(load_thumbs([path])[0])
            _frame(ax, MATCH_COLOUR if matches[i, r] else MISS_COLOUR, 2.5)
            if i == 0:
                ax.set_title(str(r + 1), fontsize=7)
    axes[0][0].set_title("query", fontsize=7)
    fig.subplots_adjust(wspace=0.08, hspace=0.15, left=0.01, right=0.99, top=0.9, bottom=0.06)
    plt.close(fig)
    return fig
