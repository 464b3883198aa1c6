"""Figures about human parsing (pi-VL): an image beside its part-class map and the map's patch labels, with a legend."""
from __future__ import annotations

from typing import Any, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from PIL import Image

from .grounding import SCREEN_DPI

__all__ = ["PARSING_COLOURS", "parsing_figure", "parsing_rows"]

#: colours of part classes 0..; background black-ish, then one per part (cycled beyond)
PARSING_COLOURS: tuple[str, ...] = ("#202020", "#d62728", "#2ca02c", "#1f77b4", "#ff7f0e", "#9467bd", "#8c564b",
                                    "#e377c2", "#bcbd22", "#17becf")


def _class_cmap(n: int) -> ListedColormap:
    """The colour map of part classes 0..n-1 (:data:`PARSING_COLOURS`, cycled)."""
    return ListedColormap([PARSING_COLOURS[i % len(PARSING_COLOURS)] for i in range(n)])


def _rgb(image: Image.Image | np.ndarray) -> np.ndarray:
    return np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)


def _show(ax: Any, data: np.ndarray, cmap: ListedColormap | None) -> None:
    """An image (``cmap`` None) or a class map in the part colours, without ticks."""
    if cmap is None:
        ax.imshow(data)
    else:
        ax.imshow(data, cmap=cmap, vmin=-0.5, vmax=cmap.N - 0.5, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def _finish(fig: Figure, cmap: ListedColormap, names: Sequence[str], title: str, pad: float) -> Figure:
    """The class legend at the right, the title, the layout; returns the closed figure."""
    handles = [Patch(color=cmap(i), label=n) for i, n in enumerate(names)]
    fig.legend(handles=handles, loc="center right", fontsize=6, frameon=False)
    if title:
        fig.suptitle(title, fontsize=8)
    fig.tight_layout(pad=pad, rect=(0, 0, 1 - 1.1 / fig.get_figwidth(), 1))
    plt.close(fig)
    return fig


def parsing_figure(image: Image.Image | np.ndarray, part_map: np.ndarray, class_names: Sequence[str],
                   patch_labels: np.ndarray | None = None, grid_hw: tuple[int, int] | None = None,
                   title: str = "") -> Figure:
    """Image | parsing map [H', W'] (part classes, 0 = background) | optional per-patch labels [h*w] on
    ``grid_hw``, with a legend of ``class_names`` (index = class). Returns the (closed) figure."""
    names = list(class_names)
    cmap = _class_cmap(len(names))
    panels = [("image", _rgb(image), None), ("parsing", np.asarray(part_map), cmap)]
    if patch_labels is not None:
        if grid_hw is None:
            raise ValueError("patch_labels need grid_hw")
        panels.append((f"patches {grid_hw[0]}x{grid_hw[1]}", np.asarray(patch_labels).reshape(grid_hw), cmap))
    fig, axes = plt.subplots(1, len(panels), figsize=(1.3 * len(panels) + 1.2, 2.6), dpi=SCREEN_DPI)
    for ax, (name, data, cm) in zip(np.atleast_1d(axes), panels):
        _show(ax, data, cm)
        ax.set_title(name, fontsize=7)
    return _finish(fig, cmap, names, title, pad=0.4)


def parsing_rows(images: Sequence[Image.Image | np.ndarray], part_maps: Sequence[np.ndarray],
                 class_names: Sequence[str], patch_labels: Sequence[np.ndarray] | None = None,
                 grid_hw: tuple[int, int] | None = None, title: str = "") -> Figure:
    """Several images side by side, each a column of three rows: the image, its parsing map [H', W']
    (part classes, 0 = background) and, when given, its per-patch labels [h*w] on ``grid_hw``; one
    legend of ``class_names``. Returns the (closed) figure."""
    if not images or len(images) != len(part_maps):
        raise ValueError(f"parsing_rows: need as many maps as images, got {len(images)} images and "
                         f"{len(part_maps)} maps")
    if patch_labels is not None and (grid_hw is None or len(patch_labels) != len(images)):
        raise ValueError("parsing_rows: patch_labels need grid_hw and one entry per image")
    names = list(class_names)
    cmap = _class_cmap(len(names))
    nrows = 3 if patch_labels is not None else 2
    fig, axes = plt.subplots(nrows, len(images), squeeze=False, figsize=(0.8 * len(images) + 1.2, 1.5 * nrows),
                             dpi=SCREEN_DPI)
    for j, (image, part_map) in enumerate(zip(images, part_maps)):
        _show(axes[0, j], _rgb(image), None)
        _show(axes[1, j], np.asarray(part_map), cmap)
        if patch_labels is not None:
            assert grid_hw is not None
            _show(axes[2, j], np.asarray(patch_labels[j]).reshape(grid_hw), cmap)
    row_names = ["image", "parsing", f"patches {grid_hw[0]}x{grid_hw[1]}" if grid_hw else ""][:nrows]
    for ax, name in zip(axes[:, 0], row_names):
        ax.set_ylabel(name, fontsize=7)
    return _finish(fig, cmap, names, title, pad=0.3)
