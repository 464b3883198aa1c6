"""Robustness of calibration to the VGE's failures: sweep one synthetic failure rate, mean IoU raw vs calibrated.

No store and no training: the synthetic backend answers in memory (the same answers it would
store), calibration is fitted over the given items at each rate, and both box sets are scored
against the synthetic ground truth with :func:`muva_lib.grounding.report.iou_table`. A few
hundred images take a second or two per rate on a CPU.
"""
from __future__ import annotations

from typing import Any, Sequence

from PIL import Image

from ..data.types import PARTS, Item
from .backends.noisy_truth import NOISE_RATES, SyntheticBackend, gt_boxes
from .calibrate import CalibCfg, calibrate_many
from .report import iou_table

__all__ = ["sweep_failure_rate"]


def sweep_failure_rate(items: Sequence[Item], rate: str, values: Sequence[float], *, preset: str = "paper",
                       cfg: CalibCfg = CalibCfg(), seed: int = 0, parts: Sequence[str] = PARTS
                       ) -> list[dict[str, Any]]:
    """Mean IoU to the ground truth, raw and calibrated, per part, as one failure rate varies.

    ``rate`` is a :data:`~muva_lib.grounding.backends.noisy_truth.NOISE_RATES` name (``missing``,
    ``oversize``, ...); each of ``values`` replaces it for every part, the other rates stay the
    ``preset``'s. ``items`` must be synthetic (their domains hold ``gt/parts.jsonl``). Returns
    the rows of :func:`~muva_lib.grounding.report.iou_table` (``part``, ``n``, ``raw``,
    ``calibrated``, ``gain``, with a ``mean`` row per value) with ``rate`` and ``value`` added;
    a missing raw box counts IoU 0.
    """
    if rate not in NOISE_RATES:
        raise ValueError(f"unknown failure rate {rate!r}; known: {', '.join(NOISE_RATES)}")
    truth = gt_boxes(items)
    sizes = {}
    for it in items:
        with Image.open(it.path) as im:
            sizes[it.key] = im.size
    keys = sorted(sizes)
    rows: list[dict[str, Any]] = []
    for value in values:
        backend = SyntheticBackend(preset, seed, parts, rates={rate: (float(value),)})
        raw = {it.key: {p: a.box for p, a in backend.answers(it, truth[it.key], sizes[it.key]).items()}
               for it in items}
        _, fixed = calibrate_many([raw[k] for k in keys], [sizes[k] for k in keys], cfg, parts)
        calibrated = {k: {p: f[p][0] for p in parts} for k, f in zip(keys, fixed)}
        rows += [{"rate": rate, "value": float(value), **r} for r in iou_table(keys, raw, calibrated, truth, parts)]
    return rows
