"""Figure of calibration's robustness: mean IoU to the truth against a VGE failure rate, raw vs calibrated."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..data.types import PARTS
from .grounding import PART_COLOURS, SCREEN_DPI

__all__ = ["iou_vs_rate"]


def iou_vs_rate(rows: Sequence[Mapping[str, Any]], parts: Sequence[str] = PARTS) -> Figure:
    """One panel per swept rate: mean IoU per part against the rate, calibrated (solid) and raw
    (dashed). ``rows`` are those of :func:`muva_lib.grounding.failure_sweep.sweep_failure_rate`
    (several rates may be concatenated)."""
    rates = list(dict.fromkeys(r["rate"] for r in rows))
    if not rates:
        raise ValueError("iou_vs_rate: no rows")
    fig, axes = plt.subplots(1, len(rates), figsize=(2.9 * len(rates), 2.5), sharey=True, squeeze=False,
                             dpi=SCREEN_DPI)
    for ax, rate in zip(axes[0], rates):
        for part in parts:
            sel = [r for r in rows if r["rate"] == rate and r["part"] == part]
            x = [r["value"] for r in sel]
            colour = PART_COLOURS.get(part, "k")
            ax.plot(x, [r["calibrated"] for r in sel], "-o", ms=3, lw=1.4, color=colour, label=f"{part} calibrated")
            ax.plot(x, [r["raw"] for r in sel], "--", lw=1.0, color=colour, label=f"{part} raw")
        ax.set_title(f"vge.noise_{rate}", fontsize=9)
        ax.set_xlabel("failure rate (every part)", fontsize=8)
        ax.set_ylim(0.0, 1.0)
        ax.grid(alpha=0.3, lw=0.5)
        ax.tick_params(labelsize=7)
    axes[0][0].set_ylabel("mean IoU to the truth", fontsize=8)
    axes[0][-1].legend(fontsize=6, frameon=False, loc="lower left")
    fig.tight_layout(pad=0.4)
    plt.close(fig)
    return fig
