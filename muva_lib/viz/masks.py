"""Figures about AM-MSA: predicted vs VGE patch masks per block and part, mask IoU per block, token attention over the patch grid."""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from PIL import Image

from ..data.types import PARTS
from .grounding import PART_COLOURS, SCREEN_DPI, THUMB_HW, draw_boxes
from .training import finish_axes

__all__ = ["load_thumbs", "part_masks_grid", "mask_layers", "iou_per_layer", "attention_maps", "boxes_and_masks",
           "block_view"]


def load_thumbs(paths: Sequence[str], hw: tuple[int, int] = THUMB_HW) -> list[np.ndarray]:
    """Images resized (plainly, as the model input) to ``hw`` (H, W): uint8 [H, W, 3] each."""
    out = []
    for p in paths:
        with Image.open(p) as im:
            out.append(np.asarray(im.convert("RGB").resize((hw[1], hw[0]), Image.BILINEAR)))
    return out


def _overlay(ax: Axes, thumb: np.ndarray, mask: np.ndarray, grid_hw: tuple[int, int], colour: str) -> None:
    """The image dimmed, the patches of a boolean mask [h*w] tinted with ``colour``."""
    h, w = thumb.shape[:2]
    cells = np.asarray(mask, bool).reshape(grid_hw)
    up = np.kron(cells, np.ones((h // grid_hw[0], w // grid_hw[1]), bool))
    img = thumb.astype(np.float32) / 255.0 * 0.55
    tint = np.asarray(to_rgb(colour), np.float32)
    img[up] = 0.45 * img[up] / 0.55 + 0.55 * tint
    ax.imshow(img, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def part_masks_grid(thumbs: Sequence[np.ndarray], masks: np.ndarray, grid_hw: tuple[int, int],
                    parts: Sequence[str] = PARTS) -> Figure:
    """The VGE patch masks the encoder is taught: one column per image, one row per part.
    masks Bool[n, R, L] with L = h * w of ``grid_hw``."""
    n, r = masks.shape[:2]
    if len(thumbs) != n:
        raise ValueError(f"{len(thumbs)} images for masks {masks.shape}")
    fig, axes = plt.subplots(r, n, squeeze=False, figsize=(0.62 * n + 0.4, 1.12 * r), dpi=SCREEN_DPI)
    for j in range(r):
        for i in range(n):
            _overlay(axes[j][i], thumbs[i], masks[i, j], grid_hw, PART_COLOURS.get(parts[j], "#ff7f0e"))
        axes[j][0].set_ylabel(parts[j], fontsize=7)
    fig.subplots_adjust(wspace=0.05, hspace=0.06, left=0.08, right=0.99, top=0.99, bottom=0.01)
    plt.close(fig)
    return fig


def mask_layers(thumbs: Sequence[np.ndarray], vge: np.ndarray, pred: np.ndarray, grid_hw: tuple[int, int],
                parts: Sequence[str] = PARTS) -> Figure:
    """Rows: each image x each part; columns: the VGE mask, then the predicted mask of every block.

    thumbs: images at the model input size; vge Bool[n, R, L]; pred Bool[n, blocks, R, L] (the offline
    gate of each block, sigmoid(A_i) > 0.5); L = h * w of ``grid_hw``."""
    n, blocks, r = pred.shape[:3]
    if vge.shape[:2] != (n, r) or len(thumbs) != n:
        raise ValueError(f"vge {vge.shape} / pred {pred.shape} / {len(thumbs)} images do not match")
    fig, axes = plt.subplots(n * r, 1 + blocks, squeeze=False, figsize=(0.62 * (1 + blocks) + 0.5, 1.12 * n * r),
                             dpi=SCREEN_DPI)
    for i in range(n):
        for j in range(r):
            row = axes[i * r + j]
            colour = PART_COLOURS.get(parts[j], "#ff7f0e")
            _overlay(row[0], thumbs[i], vge[i, j], grid_hw, colour)
            for b in range(blocks):
                _overlay(row[1 + b], thumbs[i], pred[i, b, j], grid_hw, colour)
            row[0].set_ylabel(f"image {i + 1}\n{parts[j]}", fontsize=6)
    for c, name in enumerate(["VGE", *(f"block {b + 1}" for b in range(blocks))]):
        axes[0][c].set_title(name, fontsize=7)
    fig.subplots_adjust(wspace=0.05, hspace=0.08, left=0.12, right=0.99, top=0.95, bottom=0.01)
    plt.close(fig)
    return fig


def iou_per_layer(iou: np.ndarray, parts: Sequence[str] = PARTS, title: str = "") -> Figure:
    """Mean IoU of each block's predicted mask with the VGE mask: iou [blocks, R] (one line per part,
    the mean over parts dashed)."""
    iou = np.asarray(iou, float)
    x = np.arange(1, iou.shape[0] + 1)
    fig, ax = plt.subplots(figsize=(3.2, 2.2), dpi=SCREEN_DPI)
    for j in range(iou.shape[1]):
        ax.plot(x, iou[:, j], marker="o", ms=3, color=PART_COLOURS.get(parts[j], "0.5"), label=parts[j])
    ax.plot(x, iou.mean(1), ls="--", color="k", lw=1, label="mean")
    ax.set_xticks(x)
    ax.set_xlabel("block", fontsize=7)
    ax.set_ylabel("mask IoU with the VGE", fontsize=7)
    ax.set_ylim(0, 1)
    return finish_axes(fig, ax, title)


def attention_maps(thumbs: Sequence[np.ndarray], maps: np.ndarray, names: Sequence[str]) -> Figure:
    """Rows: images; columns: the image, then the attention of each token (CLS, parts) over the patch
    grid as a heat map on the image. maps [n, tokens, gh, gw] (each map sums to 1 over the patches)."""
    maps = np.asarray(maps, float)
    n, k = maps.shape[:2]
    if len(names) != k or len(thumbs) != n:
        raise ValueError(f"maps {maps.shape} vs {len(names)} names / {len(thumbs)} images")
    fig, axes = plt.subplots(n, 1 + k, squeeze=False, figsize=(0.7 * (1 + k) + 0.3, 1.3 * n), dpi=SCREEN_DPI)
    for i in range(n):
        h, w = thumbs[i].shape[:2]
        axes[i][0].imshow(thumbs[i])
        for t in range(k):
            ax = axes[i][1 + t]
            ax.imshow(thumbs[i], alpha=0.5)
            ax.imshow(maps[i, t], cmap="magma", alpha=0.6, extent=(0, w, h, 0), interpolation="nearest")
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
    for c, name in enumerate(["image", *names]):
        axes[0][c].set_title(name, fontsize=7)
    fig.subplots_adjust(wspace=0.05, hspace=0.06, left=0.01, right=0.99, top=0.9, bottom=0.01)
    plt.close(fig)
    return fig


def boxes_and_masks(thumb: np.ndarray, image_wh: tuple[int, int],
                    boxes: Mapping[str, tuple[float, float, float, float] | None],
                    masks: np.ndarray, grid_hw: tuple[int, int], parts: Sequence[str] = PARTS,
                    title: str = "") -> Figure:
    """One image: its part boxes (pixels of the original ``image_wh`` (W, H); None: no box), then each part's
    patch mask on the grid. thumb uint8 [H', W', 3] at the model input size; masks Bool[R, L], L = h * w."""
    masks = np.asarray(masks, bool)
    if masks.shape[0] != len(parts):
        raise ValueError(f"masks {masks.shape} for {len(parts)} parts")
    fig, axes = plt.subplots(1, 1 + len(parts), squeeze=False, figsize=(0.9 * (1 + len(parts)) + 0.3, 2.0),
                             dpi=SCREEN_DPI)
    row = axes[0]
    row[0].imshow(thumb, extent=(0, image_wh[0], image_wh[1], 0))
    row[0].set_xlim(0, image_wh[0])
    row[0].set_ylim(image_wh[1], 0)
    row[0].set_xticks([])
    row[0].set_yticks([])
    draw_boxes(row[0], boxes)
    row[0].set_title("boxes", fontsize=7)
    for j, part in enumerate(parts):
        _overlay(row[1 + j], thumb, masks[j], grid_hw, PART_COLOURS.get(part, "#ff7f0e"))
        row[1 + j].set_title(f"{part} ({int(masks[j].sum())})", fontsize=7)
    if title:
        fig.suptitle(title, fontsize=7)
    fig.subplots_adjust(wspace=0.05, left=0.01, right=0.99, top=0.82 if title else 0.9, bottom=0.01)
    plt.close(fig)
    return fig


def block_view(thumb: np.ndarray, vge: np.ndarray, pred: np.ndarray, maps: np.ndarray, iou: np.ndarray,
               block: int, part: int, grid_hw: tuple[int, int], parts: Sequence[str] = PARTS) -> Figure:
    """One image, one block, one part: the VGE mask, that block's predicted mask, the CLS and the part token's
    attention over the patches, and the mask IoU per block with ``block`` marked.

    vge, pred Bool[L] (L = h * w of ``grid_hw``); maps [2, gh, gw] (CLS, part token; each sums to one);
    iou [blocks, R] (mean IoU per block and part); ``block``, ``part``: 0-based indices."""
    iou = np.asarray(iou, float)
    colour = PART_COLOURS.get(parts[part], "#ff7f0e")
    fig = plt.figure(figsize=(6.4, 2.3), dpi=SCREEN_DPI)
    grid = fig.add_gridspec(1, 5, width_ratios=[1, 1, 1, 1, 2.6], wspace=0.08)
    h, w = thumb.shape[:2]
    axes = [fig.add_subplot(grid[0, c]) for c in range(5)]
    _overlay(axes[0], thumb, vge, grid_hw, colour)
    _overlay(axes[1], thumb, pred, grid_hw, colour)
    for ax, m in zip(axes[2:4], maps):
        ax.imshow(thumb, alpha=0.5)
        ax.imshow(np.asarray(m, float), cmap="magma", alpha=0.6, extent=(0, w, h, 0), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax, name in zip(axes, ["VGE", f"block {block + 1}", "CLS attn", f"{parts[part]} attn"]):
        ax.set_title(name, fontsize=7)
    ax = axes[4]
    x = np.arange(1, iou.shape[0] + 1)
    ax.plot(x, iou[:, part], marker="o", ms=3, color=colour, label=parts[part])
    ax.plot(x, iou.mean(1), ls="--", color="k", lw=1, label="mean")
    ax.axvline(block + 1, color="0.5", lw=1, ls=":")
    ax.plot([block + 1], [iou[block, part]], marker="o", ms=7, mfc="none", mec="k")
    ax.set_xticks(x)
    ax.set_ylim(0, 1)
    ax.set_xlabel("block", fontsize=7)
    ax.set_ylabel("mask IoU with the VGE", fontsize=7)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=6, frameon=False)
    fig.subplots_adjust(left=0.01, right=0.98, top=0.88, bottom=0.18)
    plt.close(fig)
    return fig
