"""Calibration of part boxes (pure): per-part statistics over a dataset, then a fix and a reason per box.

Recipe (muva_spec.md 1.1; the paper's exact thresholds are unrecovered). All quantities are
normalised by the image size (x / W, y / H).

1. :func:`fit_stats`: per part, over the usable raw boxes of the dataset, the *core*
   ``(lo, mid, hi)`` of box ``top``, ``bottom``, ``height`` and ``width``: by default the
   quartiles (q25, median, q75); with ``core="shorth"`` the shortest interval holding half of
   the values (:func:`shorth`), which stays on the main mode when up to half of the boxes are bad
   on one side but splits a genuinely two-mode distribution (short / long hair heads). The *band*
   is the median box (x0, top, x1, bottom) of the inliers (boxes inside every fence). A part
   with fewer than ``min_samples`` boxes uses the fixed
   :data:`~muva_lib.grounding.backends.prior.PRIOR_BANDS` instead (core at +-0.05).
2. Fences per quantity (Tukey's): ``[lo - k*(hi - lo), hi + k*(hi - lo)]``, widened so that
   each lies at least ``min_spread`` from ``mid`` (a very tight distribution must not flag
   normal boxes). Defaults ``k = 1.5``, ``min_spread = 0.05``, ``core = "quartiles"``
   (:class:`CalibCfg`, mirrored in ``VgeCfg``). With quartiles the fences hold while fewer than
   about a quarter of a part's boxes are bad on the same side.
3. :func:`calibrate_image`, per part, first match wins:

   ================== ===================================================================
   reason             rule and fix
   ================== ===================================================================
   ``missing->prior`` no usable box: the band
   ``oversized->band`` height above its fence (the whole person, paper Fig. 5b): clip top /
                      bottom into the band; the band if too little is left
   ``oversplit->band`` height below its fence (a slice, Fig. 5c, d): extend to cover the
                      band vertically; the band if that makes it oversized
   ``out-of-band->band`` top or bottom outside its fence (shifted or swapped parts): the
                      band's top and bottom
   ``ok``             unchanged
   ================== ===================================================================

   Then, for a box changed above only, the width: outside its fence -> the band's width around
   the box's own centre (``+width->band``; a whole-person box is too wide for a head). The
   horizontal extent of an ``ok`` box is kept (step 4 of the spec). Last, part
   order: centres must go head < upper < legs downwards; of a pair out of order, the box
   farther from its band centre becomes the band (``out-of-order->band``).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ..data.types import PARTS
from ..geometry.boxes import Box, box_iou, denormalise, normalise

if TYPE_CHECKING:
    from ..config import VgeCfg

__all__ = ["CalibCfg", "PartStats", "CalibStats", "QUANTITIES", "REASONS", "shorth", "fit_stats", "calibrate_image",
           "calibrate_many", "mean_iou", "quantity"]

QUANTITIES: tuple[str, ...] = ("top", "bottom", "height", "width")
#: primary reason codes, in the order of the rules; a width fix appends ``+width->band``
REASONS: tuple[str, ...] = ("ok", "missing->prior", "oversized->band", "oversplit->band", "out-of-band->band",
                            "out-of-order->band")
CORES: tuple[str, ...] = ("quartiles", "shorth")
_PRIOR_HALF_IQR = 0.05


@dataclass(frozen=True)
class CalibCfg:
    """Calibration thresholds (see the module docstring)."""

    fence_k: float = 1.5
    min_spread: float = 0.05
    min_samples: int = 20
    core: str = "quartiles"  # quartiles | shorth

    def __post_init__(self) -> None:
        if self.core not in CORES:
            raise ValueError(f"calibration core must be one of {CORES}, got {self.core!r}")

    @classmethod
    def from_vge(cls, vge: VgeCfg) -> "CalibCfg":
        return cls(fence_k=vge.fence_k, min_spread=vge.min_spread, min_samples=vge.min_samples,
                   core=vge.fence_core)


def quantity(nbox: Box, name: str) -> float:
    """``top``, ``bottom``, ``height`` or ``width`` of a normalised box."""
    x0, y0, x1, y1 = nbox
    return {"top": y0, "bottom": y1, "height": y1 - y0, "width": x1 - x0}[name]


@dataclass(frozen=True)
class PartStats:
    """One part's distribution: ``core[q] = (lo, mid, hi)`` per quantity (see :func:`shorth`) and
    the ``band``, the median box of the inliers (normalised)."""

    n: int
    from_prior: bool
    core: dict[str, tuple[float, float, float]]
    band: Box

    def fence(self, name: str, cfg: CalibCfg) -> tuple[float, float]:
        lo, mid, hi = self.core[name]
        spread = hi - lo
        return min(lo - cfg.fence_k * spread, mid - cfg.min_spread), max(hi + cfg.fence_k * spread, mid + cfg.min_spread)


@dataclass(frozen=True)
class CalibStats:
    """Per-part statistics of one dataset (JSON round trip with :meth:`to_dict` / :meth:`from_dict`)."""

    parts: dict[str, PartStats]

    def to_dict(self) -> dict[str, Any]:
        return {p: asdict(s) for p, s in self.parts.items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "CalibStats":
        return cls({p: PartStats(int(s["n"]), bool(s["from_prior"]),
                                 {k: tuple(map(float, v)) for k, v in s["core"].items()},
                                 tuple(map(float, s["band"]))) for p, s in d.items()})


def _prior_stats(part: str, n: int) -> PartStats:
    from .backends.prior import PRIOR_BANDS

    band = PRIOR_BANDS[part]
    q = {name: (quantity(band, name) - _PRIOR_HALF_IQR, quantity(band, name), quantity(band, name) + _PRIOR_HALF_IQR)
         for name in QUANTITIES}
    return PartStats(n, True, q, band)


def shorth(values: np.ndarray) -> tuple[float, float, float]:
    """``(lo, mid, hi)``: the shortest interval holding half of ``values`` and the median inside it.

    For a clean symmetric distribution ``[lo, hi]`` is the inter-quartile range; unlike the
    quartiles it stays on the main mode when up to half of the values are outliers on one side
    (whole-person boxes pull every quartile of leg heights upwards); of two real modes it keeps
    only the larger one.
    """
    v = np.sort(np.asarray(values, dtype=np.float64))
    m = (len(v) + 1) // 2
    i = int(np.argmin(v[m - 1:] - v[:len(v) - m + 1]))
    return float(v[i]), float(np.median(v[i:i + m])), float(v[i + m - 1])


def _columns(norm: np.ndarray) -> dict[str, np.ndarray]:
    return {"top": norm[:, 1], "bottom": norm[:, 3], "height": norm[:, 3] - norm[:, 1], "width": norm[:, 2] - norm[:, 0]}


def fit_stats(boxes: Sequence[Mapping[str, Box | None]], sizes: Sequence[tuple[int, int]],
              cfg: CalibCfg = CalibCfg(), parts: Sequence[str] = PARTS) -> CalibStats:
    """Per-part statistics over a dataset: ``boxes[i][part]`` in pixels (``None``: unusable),
    ``sizes[i] = (W, H)`` of image ``i``."""
    if len(boxes) != len(sizes):
        raise ValueError(f"fit_stats: {len(boxes)} box sets but {len(sizes)} sizes")
    out: dict[str, PartStats] = {}
    for p in parts:
        norm = np.array([normalise(b[p], s) for b, s in zip(boxes, sizes) if b.get(p) is not None],
                        dtype=np.float64).reshape(-1, 4)
        if len(norm) < cfg.min_samples:
            out[p] = _prior_stats(p, len(norm))
            continue
        cols = _columns(norm)
        core = {k: shorth(c) if cfg.core == "shorth" else tuple(float(v) for v in np.quantile(c, [0.25, 0.5, 0.75]))
                for k, c in cols.items()}
        st = PartStats(len(norm), False, core, (0.0, 0.0, 1.0, 1.0))
        inside = np.ones(len(norm), dtype=bool)
        for k, c in cols.items():
            lo, hi = st.fence(k, cfg)
            inside &= (c >= lo) & (c <= hi)
        band = tuple(float(v) for v in np.median(norm[inside] if inside.sum() >= cfg.min_samples else norm, axis=0))
        out[p] = PartStats(len(norm), False, core, band)  # type: ignore[arg-type]
    return CalibStats(out)


def _fix_one(nbox: Box | None, st: PartStats, cfg: CalibCfg) -> tuple[Box, str]:
    bl, bt, br, bb = st.band
    if nbox is None:
        return st.band, "missing->prior"
    l, t, r, b = nbox
    lo_h, hi_h = st.fence("height", cfg)
    lo_t, hi_t = st.fence("top", cfg)
    lo_b, hi_b = st.fence("bottom", cfg)
    if b - t > hi_h:
        t, b = max(t, bt), min(b, bb)
        if b - t < lo_h:
            t, b = bt, bb
        reason = "oversized->band"
    elif b - t < lo_h:
        t, b = min(t, bt), max(b, bb)
        if b - t > hi_h:
            t, b = bt, bb
        reason = "oversplit->band"
    elif not (lo_t <= t <= hi_t and lo_b <= b <= hi_b):
        t, b, reason = bt, bb, "out-of-band->band"
    else:
        reason = "ok"
    lo_w, hi_w = st.fence("width", cfg)
    if reason != "ok" and not lo_w <= r - l <= hi_w:
        half, c = (br - bl) / 2, (l + r) / 2
        c = min(max(c, half), 1.0 - half)
        l, r = c - half, c + half
        reason = "width->band" if reason == "ok" else reason + "+width->band"
    return (l, t, r, b), reason


def calibrate_image(boxes: Mapping[str, Box | None], size_wh: tuple[int, int], stats: CalibStats,
                    cfg: CalibCfg = CalibCfg(), parts: Sequence[str] = PARTS) -> dict[str, tuple[Box, str]]:
    """Calibrated ``{part: (box in pixels, reason)}`` for one image (``boxes`` in pixels, ``None`` =
    unusable). Every part gets a box."""
    fixed = {p: _fix_one(None if boxes.get(p) is None else normalise(boxes[p], size_wh), stats.parts[p], cfg)
             for p in parts}

    def centre(p: str) -> float:
        return (fixed[p][0][1] + fixed[p][0][3]) / 2

    for a, c in zip(parts, parts[1:]):
        if centre(a) >= centre(c):
            dev = {p: abs(centre(p) - (stats.parts[p].band[1] + stats.parts[p].band[3]) / 2) for p in (a, c)}
            worst = a if dev[a] >= dev[c] else c
            fixed[worst] = (stats.parts[worst].band, "out-of-order->band")
    return {p: (denormalise(nb, size_wh), reason) for p, (nb, reason) in fixed.items()}


def calibrate_many(boxes: Sequence[Mapping[str, Box | None]], sizes: Sequence[tuple[int, int]],
                   cfg: CalibCfg = CalibCfg(), parts: Sequence[str] = PARTS,
                   stats: CalibStats | None = None) -> tuple[CalibStats, list[dict[str, tuple[Box, str]]]]:
    """Fit (unless ``stats`` is given) and apply over a dataset: ``(stats, [calibrated per image])``."""
    stats = fit_stats(boxes, sizes, cfg, parts) if stats is None else stats
    return stats, [calibrate_image(b, s, stats, cfg, parts) for b, s in zip(boxes, sizes)]


def mean_iou(pred: Mapping[str, Mapping[str, Box | None]], truth: Mapping[str, Mapping[str, Box | None]],
             parts: Sequence[str] = PARTS) -> dict[str, tuple[float, int]]:
    """Per part ``(mean IoU, count)`` over the keys of ``truth`` whose part is visible (true box
    not ``None``); a missing prediction counts as IoU 0. Keys absent from ``pred`` are skipped."""
    out: dict[str, tuple[float, int]] = {}
    for p in parts:
        vals = [box_iou(pred[k].get(p), t[p]) for k, t in truth.items() if k in pred and t.get(p) is not None]
        out[p] = (float(np.mean(vals)) if vals else float("nan"), len(vals))
    return out
