"""Figures about human parsing (pi-VL): an image beside its part-class map and the map's patch labels, with a legend."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from PIL import Image

from .grounding import SCREEN_DPI

__all__ = ["PARSING_COLOURS", "parsing_figure"]

#: colours of part classes 0..; background black-ish, then one per part (cycled beyond)
PARSING_COLOURS: tuple[str, ...] = ("#202020", "#d62728", "#2ca02c", "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b",
                                    "#e377c2", "#bcbd22", "#17becf")


def parsing_figure(image: Image.Image | np.ndarray, part_map: np.ndarray, class_names: Sequence[str],
                   patch_labels: np.ndarray | None = None, grid_hw: tuple[int, int] | None = None,
                   title: str = "") -> Figure:
    """Image | parsing map [H', W'] (part classes, 0 = background) | optional per-patch labels [h*w] on
    ``grid_hw``, with a legend of ``class_names`` (index = class). Returns the (closed) figure."""
    img = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    names = list(class_names)
    cmap = ListedColormap([PARSING_COLOURS[i % len(PARSING_COLOURS)] for i in range(len(names))])
    panels = [("image", img, None), ("parsing", np.asarray(part_map), cmap)]
    if patch_labels is not None:
        if grid_hw is None:
            raise ValueError("patch_labels need grid_hw")
        panels.append((f"patches {grid_hw[0]}x{grid_hw[1]}", np.asarray(patch_labels).reshape(grid_hw), cmap))
    fig, axes = plt.subplots(1, len(panels), figsize=(1.3 * len(panels) + 1.2, 2.6), dpi=SCREEN_DPI)
    for ax, (name, data, cm) in zip(np.atleast_1d(axes), panels):
        if cm is None:
            ax.imshow(data)
        else:
            ax.imshow(data, cmap=cm, vmin=-0.5, vmax=len(names) - 0.5, interpolation="nearest")
        ax.set_title(name, fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    handles = [Patch(color=cmap(i), label=n) for i, n in enumerate(names)]
    fig.legend(handles=handles, loc="center right", fontsize=6, frameon=False)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout(pad=0.4, rect=(0, 0, 1 - 1.1 / fig.get_figwidth(), 1))
    plt.close(fig)
    return fig
