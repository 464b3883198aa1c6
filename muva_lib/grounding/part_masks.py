"""Part masks from the grounding store: calibrate the stored boxes, rasterise them; masks for training.

The answers come from :func:`muva_lib.grounding.grounder.ground_items`.
"""
from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
from PIL import Image

from ..data.types import PARTS, Item
from ..geometry.boxes import Box, as_box
from ..geometry.patch_grid import boxes_to_masks
from .backends import backend_from_cfg
from .backends.prior import prior_box
from .box_store import GroundingStore, load_masks, save_masks
from .calibrate import CalibCfg, CalibStats, calibrate_many
from .grounder import ground_items, group_by_dataset

if TYPE_CHECKING:
    from ..config import VgeCfg

__all__ = ["Calibration", "calibrate_store", "store_masks", "part_masks_for", "raw_boxes", "MASK_SOURCES",
           "CALIBRATION_VERSION", "part_masks_with_health"]

#: where mask boxes come from: ``calibrated`` (the default), ``raw`` (parsed boxes, missing parts
#: from the fixed prior bands), ``gt`` (synthetic ground truth)
MASK_SOURCES: tuple[str, ...] = ("calibrated", "raw", "gt")
#: bump when calibration rules change: cached ``__calibrated.json`` files are then rebuilt
CALIBRATION_VERSION = 2  # 2: non-finite stored boxes are dropped when read


# ---------------------------------------------------------------------------------- calibration

@dataclass
class Calibration:
    """A store's calibration: statistics, calibrated boxes and reasons per key (pixels)."""

    stats: CalibStats
    boxes: dict[str, dict[str, Box]]
    reasons: dict[str, dict[str, str]]
    digest: str

    def reason_counts(self) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for per in self.reasons.values():
            for p, r in per.items():
                out[p][r] += 1
        return {p: dict(sorted(v.items())) for p, v in out.items()}


def raw_boxes(records: Mapping[str, Mapping[str, Any]], parts: Sequence[str] = PARTS
              ) -> tuple[list[str], list[tuple[int, int]], list[dict[str, Box | None]]]:
    """``(keys, sizes, boxes)`` of the records with a known image size, in sorted key order."""
    keys = sorted(k for k, r in records.items() if r.get("size"))
    sizes = [tuple(records[k]["size"]) for k in keys]
    boxes = [{p: as_box(records[k]["parts"].get(p, {}).get("box")) for p in parts} for k in keys]
    return keys, sizes, boxes  # type: ignore[return-value]


def _records(store: GroundingStore, keys: Sequence[str] | None) -> dict[str, dict[str, Any]]:
    """The store's records of ``keys`` in their order (keys it lacks are skipped), or all of them for None."""
    records = store.read()
    return records if keys is None else {k: records[k] for k in dict.fromkeys(keys) if k in records}


def _key_digest(keys: Sequence[str] | None) -> str:
    """``all`` or a hash of the sorted key set (so a calibration cache names the images it was fitted on)."""
    if keys is None:
        return "all"
    return hashlib.sha256("\n".join(sorted(set(keys))).encode()).hexdigest()[:16]


def calibrate_store(store: GroundingStore, cfg: CalibCfg = CalibCfg(), parts: Sequence[str] = PARTS,
                    write: bool = True, keys: Sequence[str] | None = None) -> Calibration:
    """Fit the statistics over the records of ``keys`` (default: the whole store) and calibrate them.

    Training passes the keys of its training images, so the fences depend only on those images and
    not on whatever else the store happens to hold (test images grounded for a figure, records of an
    earlier version of the dataset): the same images give the same masks whatever the store's
    history. Keys the store lacks are skipped. The result is cached in ``<tag>__calibrated.json``
    (written atomically) with a digest of the store, ``cfg`` and the key set; it is recomputed when
    any of them changes.
    """
    digest = hashlib.sha256(f"{CALIBRATION_VERSION}|{store.digest()}|{json.dumps(asdict(cfg), sort_keys=True)}|"
                            f"{','.join(parts)}|{_key_digest(keys)}".encode()).hexdigest()
    cached = store.read_json(store.calibrated_path)
    if cached is not None and cached.get("digest") == digest:
        try:
            return Calibration(CalibStats.from_dict(cached["stats"]),
                               {k: {p: as_box(v[p][0]) for p in parts} for k, v in cached["boxes"].items()},
                               {k: {p: v[p][1] for p in parts} for k, v in cached["boxes"].items()}, digest)
        except (KeyError, TypeError, ValueError, IndexError):
            pass  # unreadable cache: rebuilt below
    keys, sizes, boxes = raw_boxes(_records(store, keys), parts)
    stats, fixed = calibrate_many(boxes, sizes, cfg, parts)
    cal = Calibration(stats, {k: {p: f[p][0] for p in parts} for k, f in zip(keys, fixed)},
                      {k: {p: f[p][1] for p in parts} for k, f in zip(keys, fixed)}, digest)
    if write and keys:
        from ..utils import atomic_write_json

        store.write_derived(store.calibrated_path, lambda: atomic_write_json(store.calibrated_path, {
            "digest": digest, "cfg": asdict(cfg), "parts": list(parts), "stats": stats.to_dict(),
            "boxes": {k: {p: [[round(v, 3) for v in cal.boxes[k][p]], cal.reasons[k][p]] for p in parts}
                      for k in keys}}))
    return cal


def _box_source(store: GroundingStore, source: str, cfg: CalibCfg, parts: Sequence[str],
                keys: Sequence[str] | None = None
                ) -> tuple[dict[str, dict[str, Box | None]], dict[str, tuple[int, int]], str]:
    records = _records(store, keys)
    sizes = {k: tuple(r["size"]) for k, r in records.items() if r.get("size")}
    if source == "calibrated":
        cal = calibrate_store(store, cfg, parts, keys=keys)
        return dict(cal.boxes), sizes, cal.digest  # type: ignore[arg-type]
    if source == "raw":
        raw_keys, _, boxes = raw_boxes(records, parts)
        filled = {k: {p: b[p] if b[p] is not None else prior_box(p, sizes[k]) for p in parts}
                  for k, b in zip(raw_keys, boxes)}
        return filled, sizes, f"{store.digest()}|{_key_digest(keys)}"  # type: ignore[return-value]
    raise ValueError(f"mask source must be one of {MASK_SOURCES}, got {source!r}")


def store_masks(store: GroundingStore, grid_hw: tuple[int, int], source: str = "calibrated", *,
                cfg: CalibCfg = CalibCfg(), parts: Sequence[str] = PARTS, ensure_one: bool = True,
                keys: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Masks ``{key: bool [R, h*w]}`` of the records of ``keys`` (default: every record; calibrated over
    the same records, :func:`calibrate_store`), cached in the store's ``.npz`` file."""
    boxes, sizes, digest = _box_source(store, source, cfg, parts, keys)
    digest = f"{digest}:{int(ensure_one)}"
    path = store.masks_path(source, grid_hw)
    if path.is_file():
        masks, saved_parts, saved = load_masks(path)
        if saved == digest and saved_parts == tuple(parts):
            return masks
    masks = {k: boxes_to_masks(b, (sizes[k][1], sizes[k][0]), grid_hw, parts, ensure_one) for k, b in boxes.items()}
    if masks:
        store.write_derived(path, lambda: save_masks(path, masks, parts, digest))
    return masks


def _gt_masks(items: Sequence[Item], grid_hw: tuple[int, int], parts: Sequence[str], ensure_one: bool
              ) -> dict[str, np.ndarray]:
    from .backends.noisy_truth import gt_boxes

    truth = gt_boxes(items)
    out = {}
    for it in items:
        with Image.open(it.path) as im:
            w, h = im.size
        out[it.key] = boxes_to_masks(truth[it.key], (h, w), grid_hw, parts, ensure_one)
    return out


def part_masks_for(items: Sequence[Item], vge: VgeCfg, grid_hw: tuple[int, int] = (16, 8), *,
                   device: Any = "auto", root: str | Path | None = None, progress: bool = False,
                   parts: Sequence[str] = PARTS) -> dict[str, np.ndarray]:
    """Part masks for training: ``{item.key: bool [R, h*w]}`` for every item (``R = len(parts)``).

    ``vge`` is a :class:`muva_lib.config.VgeCfg`: ``vge.source`` picks the boxes (``calibrated``:
    ground with ``vge.backend`` what the store lacks, calibrate over the records of ``items`` (per
    dataset; never over other records the store holds), rasterise; ``raw``: parsed boxes, missing parts from the fixed prior bands; ``gt``:
    the synthetic ground truth, no store). ``grid_hw`` is the patch grid of the model input
    (``(16, 8)`` for 256 x 128 at patch 16; see :func:`muva_lib.geometry.patch_grid.grid_for`).
    Row ``r`` is ``parts[r]`` (head, upper, legs); ``True`` = the patch centre lies in the box;
    flip with :func:`muva_lib.geometry.patch_grid.joint_hflip`. Masks of a store are cached in
    ``<data>/grounding/<dataset>/<tag>__masks_<source>_<h>x<w>.npz``; a second call only reads.
    Items whose image cannot be read are left out (a warning says how many). More than
    ``vge.max_fallback_share`` of the images of a dataset without a usable box for a part, or
    non-finite stored boxes, warn (:func:`part_masks_with_health` also returns the numbers).
    """
    return part_masks_with_health(items, vge, grid_hw, device=device, root=root, progress=progress,
                                  parts=parts)[0]


def part_masks_with_health(items: Sequence[Item], vge: VgeCfg, grid_hw: tuple[int, int] = (16, 8), *,
                           device: Any = "auto", root: str | Path | None = None, progress: bool = False,
                           parts: Sequence[str] = PARTS) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """:func:`part_masks_for`, plus what a run manifest records about the boxes behind the masks:
    ``{"source", "backend", "fallback_share": {dataset: {part: share}}, "dropped_boxes": {dataset: n},
    "max_fallback_share", "warnings": [...]}`` (each warning is also raised as a ``UserWarning``)."""
    import warnings

    if vge.source not in MASK_SOURCES:
        raise ValueError(f"vge.source must be one of {MASK_SOURCES}, got {vge.source!r}")
    if vge.source == "gt":
        return _gt_masks(items, grid_hw, parts, vge.ensure_one_patch), {"source": "gt", "warnings": []}
    source = "calibrated" if vge.calibrate and vge.source == "calibrated" else "raw"
    backend = backend_from_cfg(vge, device=device)
    reports = ground_items(items, backend, root=root, progress=progress)
    health: dict[str, Any] = {"source": source, "backend": backend.tag, "max_fallback_share": vge.max_fallback_share,
                              "fallback_share": {r.dataset: {p: round(v, 4) for p, v in r.fallback_share().items()}
                                                 for r in reports},
                              "dropped_boxes": {r.dataset: r.dropped for r in reports}, "warnings": []}
    for r in reports:
        if r.dropped:
            health["warnings"].append(f"grounding {r.dataset} [{r.tag}]: {r.dropped} stored box(es) were not "
                                      "finite and were dropped; those parts fall back")
        msg = r.fallback_warning(vge.max_fallback_share)
        if msg:
            health["warnings"].append(msg)
    for msg in health["warnings"]:
        warnings.warn(msg, stacklevel=3)
    cfg = CalibCfg.from_vge(vge)
    out: dict[str, np.ndarray] = {}
    for dataset, its in group_by_dataset(items).items():
        masks = store_masks(GroundingStore(dataset, backend.tag, root), grid_hw, source, cfg=cfg, parts=parts,
                            ensure_one=vge.ensure_one_patch, keys=[it.key for it in its])
        out.update({it.key: masks[it.key] for it in its if it.key in masks})
    if len(out) < len(items):
        warnings.warn(f"part_masks_for: {len(items) - len(out)} of {len(items)} images have no mask "
                      "(unreadable image); they are left out", stacklevel=3)
    return out, health
