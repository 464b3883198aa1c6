"""Views of a grounded dataset for the CLI and the notebooks: answer counts, reasons, IoU to the truth,
failure cases and box-height distributions."""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ..data.types import PARTS, Item
from ..geometry.boxes import Box, as_box
from ..utils import evenly_spaced
from .backends import Backend, backend_from_cfg
from .box_store import GroundingStore
from .calibrate import CalibCfg, calibrate_many, mean_iou, quantity
from .grounder import group_by_dataset, ground_items
from .part_masks import Calibration, raw_boxes

if TYPE_CHECKING:
    from ..config import VgeCfg

__all__ = ["iou_table", "store_iou", "GroundingView", "Case", "build_views", "training_sample"]


def iou_table(keys: Sequence[str], raw: Mapping[str, Mapping[str, Box | None]],
              calibrated: Mapping[str, Mapping[str, Box | None]],
              truth: Mapping[str, Mapping[str, Box | None]], parts: Sequence[str] = PARTS
              ) -> list[dict[str, Any]]:
    """Rows ``{part, n, raw, calibrated, gain}`` of mean IoU to the truth over ``keys`` (+ a ``mean``
    row over parts); raw missing boxes count as 0 (see :func:`muva_lib.grounding.calibrate.mean_iou`)."""
    sub = {k: truth[k] for k in keys if k in truth}
    r, c = mean_iou(raw, sub, parts), mean_iou(calibrated, sub, parts)
    rows = [{"part": p, "n": r[p][1], "raw": r[p][0], "calibrated": c[p][0], "gain": c[p][0] - r[p][0]}
            for p in parts]
    rows.append({"part": "mean", "n": sum(x["n"] for x in rows),
                 "raw": float(np.mean([x["raw"] for x in rows])),
                 "calibrated": float(np.mean([x["calibrated"] for x in rows])),
                 "gain": float(np.mean([x["gain"] for x in rows]))})
    return rows


def _truth(items: Sequence[Item]) -> dict[str, dict[str, Box | None]] | None:
    from .backends.noisy_truth import gt_boxes

    try:
        return gt_boxes(items)
    except FileNotFoundError:
        return None


def store_iou(store: GroundingStore, items: Sequence[Item], calibration: Calibration,
              parts: Sequence[str] = PARTS) -> list[dict[str, Any]] | None:
    """:func:`iou_table` of a store's raw and calibrated boxes against the synthetic ground truth,
    over the ``items`` present in the store; ``None`` when the dataset has no ground truth."""
    records = store.read()
    its = [it for it in items if it.key in records and it.key in calibration.boxes]
    truth = _truth(its)
    if truth is None:
        return None
    keys, _, boxes = raw_boxes({it.key: records[it.key] for it in its}, parts)
    return iou_table(keys, dict(zip(keys, boxes)), calibration.boxes, truth, parts)


@dataclass(frozen=True)
class Case:
    """One part of one image, as a figure shows it: raw and calibrated boxes, answer and reasons."""

    item: Item
    part: str
    raw_box: Box | None
    calibrated_box: Box | None
    answer: str
    status: str
    reason: str  # the parse / backend reason
    calibration: str  # the calibration reason code


@dataclass
class GroundingView:
    """One backend's answers on a list of items, calibrated over exactly those items.

    Fitting on the items (not the whole store) keeps a notebook's numbers independent of what
    else was grounded before. ``truth`` holds the synthetic ground truth, or ``None``.
    """

    tag: str
    items: list[Item]
    records: dict[str, dict[str, Any]]
    calibration: Calibration
    truth: dict[str, dict[str, Box | None]] | None
    parts: tuple[str, ...] = PARTS
    cfg: CalibCfg = CalibCfg()

    @classmethod
    def build(cls, items: Sequence[Item], backend: Backend, cfg: CalibCfg = CalibCfg(),
              root: str | Path | None = None, progress: bool = False) -> "GroundingView":
        """Ground what the store lacks, then calibrate over ``items``."""
        ground_items(items, backend, root=root, progress=progress)
        records: dict[str, dict[str, Any]] = {}
        for dataset, its in group_by_dataset(items).items():
            stored = GroundingStore(dataset, backend.tag, root).read()
            records.update({it.key: stored[it.key] for it in its if it.key in stored})
        cal = _calibrate(records, cfg, backend.parts)
        kept = [it for it in items if it.key in cal.boxes]
        return cls(backend.tag, kept, records=records, calibration=cal, truth=_truth(kept),
                   parts=tuple(backend.parts), cfg=cfg)

    def recalibrated(self, cfg: CalibCfg) -> "GroundingView":
        """The same answers calibrated with other thresholds (fitted again over the same items; nothing grounded)."""
        return replace(self, calibration=_calibrate(self.records, cfg, self.parts), cfg=cfg)

    # ------------------------------------------------------------------ per image

    def raw(self, key: str) -> dict[str, Box | None]:
        return {p: as_box(self.records[key]["parts"][p]["box"]) for p in self.parts}

    def calibrated(self, key: str) -> dict[str, Box]:
        return self.calibration.boxes[key]

    def size(self, key: str) -> tuple[int, int]:
        return tuple(self.records[key]["size"])  # type: ignore[return-value]

    def case(self, item: Item, part: str) -> Case:
        a = self.records[item.key]["parts"][part]
        return Case(item, part, raw_box=as_box(a["box"]), calibrated_box=self.calibration.boxes[item.key][part],
                    answer=a["raw"], status=a["status"], reason=a["reason"],
                    calibration=self.calibration.reasons[item.key][part])

    # ------------------------------------------------------------------ tables

    def count_rows(self) -> list[dict[str, Any]]:
        """Per part: answers parsed / fell back / failed over the items."""
        rows = []
        for p in self.parts:
            c = Counter(self.records[it.key]["parts"][p]["status"] for it in self.items)
            rows.append({"part": p, "parsed": c["ok"], "fell back": c["fallback"], "failed": c["failed"]})
        return rows

    def stats_rows(self) -> list[dict[str, Any]]:
        """Per part: boxes fitted, the core (lo, mid, hi) of the normalised height and its fences,
        and the band's top and bottom."""
        rows = []
        for p, st in self.calibration.stats.parts.items():
            lo, mid, hi = st.core["height"]
            flo, fhi = st.fence("height", self.cfg)
            rows.append({"part": p, "boxes": st.n, "prior": st.from_prior, "height lo": lo, "mid": mid, "hi": hi,
                         "fence lo": flo, "fence hi": fhi, "band top": st.band[1], "band bottom": st.band[3]})
        return rows

    def reason_rows(self) -> list[dict[str, Any]]:
        """Per part and calibration reason code: how many boxes (sorted by part, then reason)."""
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for it in self.items:
            for p in self.parts:
                counts[(p, self.calibration.reasons[it.key][p])] += 1
        order = {p: i for i, p in enumerate(self.parts)}
        return [{"part": p, "reason": r, "boxes": n} for (p, r), n in sorted(counts.items(),
                                                                           key=lambda kv: (order[kv[0][0]], kv[0][1]))]

    def reason_totals(self, prefix: str) -> dict[str, int]:
        """Per part: boxes whose calibration reason starts with ``prefix`` (``"oversized"``, ...)."""
        return {p: sum(self.calibration.reasons[it.key][p].startswith(prefix) for it in self.items)
                for p in self.parts}

    def iou_rows(self) -> list[dict[str, Any]] | None:
        """:func:`iou_table` over the items, or ``None`` without ground truth."""
        if self.truth is None:
            return None
        keys = [it.key for it in self.items]
        return iou_table(keys, {k: self.raw(k) for k in keys}, self.calibration.boxes, self.truth, self.parts)

    # ------------------------------------------------------------------ selections

    def heights(self, which: str = "raw") -> dict[str, np.ndarray]:
        """Normalised box heights (``h / H``) per part of ``raw``, ``calibrated`` or ``truth`` boxes
        (missing boxes left out)."""
        out: dict[str, list[float]] = {p: [] for p in self.parts}
        for it in self.items:
            w, h = self.size(it.key)
            if which == "raw":
                boxes: Mapping[str, Box | None] = self.raw(it.key)
            elif which == "calibrated":
                boxes = self.calibrated(it.key)
            elif which == "truth" and self.truth is not None:
                boxes = self.truth[it.key]
            else:
                raise ValueError(f"heights of raw | calibrated | truth (with ground truth), got {which!r}")
            for p in self.parts:
                if boxes.get(p) is not None:
                    out[p].append(quantity((0.0, boxes[p][1] / h, 1.0, boxes[p][3] / h), "height"))
        return {p: np.asarray(v) for p, v in out.items()}

    def cases(self, calibration: str | None = None, status: str | None = None, part: str | None = None,
              limit: int = 6) -> list[Case]:
        """Up to ``limit`` cases in item order whose calibration reason starts with ``calibration``
        and / or whose answer status is ``status``, optionally of one ``part``."""
        out = []
        for it in self.items:
            for p in self.parts if part is None else (part,):
                c = self.case(it, p)
                if (calibration is None or c.calibration.startswith(calibration)) and \
                        (status is None or c.status == status):
                    out.append(c)
                    if len(out) == limit:
                        return out
        return out

    def failures(self, limit: int = 8) -> list[Case]:
        """A varied gallery: cases whose answer was not used as is or whose box calibration changed,
        taking one per (status, reason, calibration) kind in turn, in item order."""
        kinds: dict[tuple[str, str, str], list[Case]] = defaultdict(list)
        for it in self.items:
            for p in self.parts:
                c = self.case(it, p)
                if c.status != "ok" or c.calibration != "ok":
                    kinds[(c.status, c.reason.split(" (")[0], c.calibration)].append(c)
        out: list[Case] = []
        queues = [kinds[k] for k in sorted(kinds)]
        while len(out) < limit and any(queues):
            for q in queues:
                if q and len(out) < limit:
                    out.append(q.pop(0))
        return out


def _calibrate(records: Mapping[str, Mapping[str, Any]], cfg: CalibCfg, parts: Sequence[str]) -> Calibration:
    """Fit the calibration over ``records`` (store records by key) and apply it: boxes and reasons per key."""
    keys, sizes, boxes = raw_boxes(records, parts)
    stats, fixed = calibrate_many(boxes, sizes, cfg, parts)
    return Calibration(stats, boxes={k: {p: f[p][0] for p in parts} for k, f in zip(keys, fixed)},
                       reasons={k: {p: f[p][1] for p in parts} for k, f in zip(keys, fixed)}, digest="")


def training_sample(dataset: str, n: int = 0, root: str | Path | None = None) -> list[Item]:
    """A dataset's training items sorted by relpath, ``n`` of them evenly spaced (0: all).

    A synthetic domain missing from ``muva_lib.paths.synth_root()`` is generated first (with the
    generator's defaults; an existing one is reused).
    """
    from ..data.readers import read_dataset
    from ..data.synthetic import DOMAINS, generate
    from ..paths import synth_root

    if dataset in DOMAINS and root is None:
        generate(synth_root(), domains=(dataset,), workers=2)
    items = sorted(read_dataset(dataset, root=root).train, key=lambda it: it.relpath)
    return evenly_spaced(items, n)


def build_views(items: Sequence[Item], vge: VgeCfg, backends: Sequence[str], models: Mapping[str, str] | None = None,
                device: Any = "auto", root: str | Path | None = None, progress: bool = False
                ) -> dict[str, GroundingView]:
    """A :class:`GroundingView` per backend name, all with ``vge``'s options (``dataclasses.replace``
    of the backend and, from ``models``, the model); a backend that needs a model and has none in
    ``models`` (or ``vge.model``) is left out."""
    from dataclasses import replace

    models = dict(models or {})
    out: dict[str, GroundingView] = {}
    for name in backends:
        model = models.get(name) or (vge.model if name == vge.backend else "")
        if name in ("mllm", "detector") and not model:
            continue
        cfg = replace(vge, backend=name, model=model)
        out[name] = GroundingView.build(items, backend_from_cfg(cfg, device=device), CalibCfg.from_vge(cfg),
                                        root=root, progress=progress)
    return out

