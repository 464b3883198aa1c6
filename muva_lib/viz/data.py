"""Figures about datasets: sample identities across cameras and domains."""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from PIL import Image

from ..data.types import Item

__all__ = ["identity_grid", "pick_identity_images"]


def pick_identity_images(items: Sequence[Item], num_ids: int, per_id: int) -> list[tuple[int, list[Item]]]:
    """The first ``num_ids`` identities (sorted pid) with ``per_id`` images each, one per camera first."""
    by_pid: dict[int, list[Item]] = defaultdict(list)
    for it in items:
        by_pid[it.pid].append(it)
    out = []
    for pid in sorted(by_pid)[:num_ids]:
        ordered = sorted(by_pid[pid], key=lambda it: it.relpath)
        chosen: list[Item] = []
        seen_cams: set[int] = set()
        for it in ordered:
            if it.camid not in seen_cams:
                chosen.append(it)
                seen_cams.add(it.camid)
        chosen += [it for it in ordered if it not in chosen]
        out.append((pid, chosen[:per_id]))
    return out


def identity_grid(groups: dict[str, Sequence[Item]], ids_per_group: int = 3, images_per_id: int = 4,
                  thumb_hw: tuple[int, int] = (128, 64)) -> Figure:
    """Groups (e.g. domains) side by side; in each, one row per identity, ``images_per_id`` images.

    Identities come in sorted pid order and cameras are spread first, so the figure is
    deterministic and shows the same person across cameras. Titles give ``id / camera``.
    """
    blocks = {label: pick_identity_images(items, ids_per_group, images_per_id) for label, items in groups.items()}
    if not any(blocks.values()):
        raise ValueError("identity_grid: no items to show")
    h, w = thumb_hw
    ncols = len(blocks) * (images_per_id + 1) - 1  # one spacer column between groups
    ratios = (([1.0] * images_per_id + [0.3]) * len(blocks))[:ncols]
    fig, axes = plt.subplots(ids_per_group, ncols, squeeze=False, figsize=(sum(ratios) * 0.8, ids_per_group * 1.75),
                             gridspec_kw={"width_ratios": ratios})
    for ax in axes.flat:
        ax.axis("off")
    for g, (label, rows) in enumerate(blocks.items()):
        c0 = g * (images_per_id + 1)
        axes[0][c0 + images_per_id // 2].set_title(label, fontsize=9, loc="left", pad=14)
        for r, (pid, items) in enumerate(rows):
            for c, it in enumerate(items):
                ax = axes[r][c0 + c]
                with Image.open(it.path) as im:
                    ax.imshow(im.convert("RGB").resize((w, h), Image.BILINEAR))
                ax.text(0.5, 1.02, f"id {pid} / c{it.camid + 1}", transform=ax.transAxes,
                        ha="center", va="bottom", fontsize=5.5)
    fig.subplots_adjust(wspace=0.08, hspace=0.22, left=0.01, right=0.99, top=0.9, bottom=0.01)
    plt.close(fig)
    return fig
