"""Ground a dataset's images with a VGE backend, calibrate the boxes and rasterise them to patch masks.

Resumable: images already in the store (data/grounding/<dataset>/<backend>.jsonl) are skipped, so
an interrupted run is finished by running the same command again. Closes with a summary: answers
parsed / fell back / failed per part, calibration reasons, and the mean IoU of raw and calibrated
boxes to the ground truth when the dataset has it (synthetic domains).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any, Sequence

from ..config import ConfigError, RunCfg, VgeCfg, apply_overrides, parse_overrides, validate
from ..data.types import Item

__all__ = ["add_arguments", "run", "add_common_arguments", "vge_from_args", "read_items", "finish"]


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``ground`` and ``calibrate``: which dataset, which backend's store."""
    from ..grounding.backends import list_backends

    d = RunCfg().vge
    parser.add_argument("--dataset", required=True, help="dataset registry name (synth-a, market1501, ...)")
    parser.add_argument("--root", default=None, help="dataset folder (default: the reader's own)")
    parser.add_argument("--subsets", choices=("train", "all"), default="train",
                        help="ground the training split (default) or every image of the dataset")
    parser.add_argument("--backend", default=d.backend, choices=list_backends(),
                        help=f"VGE backend (default {d.backend})")
    parser.add_argument("--noise", default=d.noise, help=f"synthetic backend noise preset (default {d.noise}); "
                        "set single failure rates with --set noise_missing=0.2 (one value, or head,upper,legs)")
    parser.add_argument("--model", default=d.model, help="mllm / detector: hub id or local directory")
    parser.add_argument("--store-root", default=None,
                        help="grounding store folder (default data/grounding; MUVA_DATA moves data/)")
    parser.add_argument("--grid", default="16x8", help="patch grid HxW of the masks (default 16x8: 256x128, patch 16)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="any VgeCfg field, e.g. --set fence_k=2.0 --set max_new_tokens=64 (repeatable)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--trust-remote-code", action="store_true", help="allow the model's own code (off by default)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N (default auto)")
    parser.add_argument("--limit", type=int, default=None, help="ground at most N new images (smoke runs)")
    parser.add_argument("--batch-size", type=int, default=None, help="images per backend call")
    parser.add_argument("--retry-failed", action="store_true", help="re-ground images whose backend call raised")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def vge_from_args(args: argparse.Namespace) -> Any:
    """The VgeCfg of the command line: defaults, then the flags, then ``--set`` overrides."""
    flags = {"vge.backend": args.backend, "vge.noise": args.noise, "vge.model": args.model}
    if getattr(args, "trust_remote_code", False):
        flags["vge.trust_remote_code"] = True
    extra = {k if k.startswith("vge.") else f"vge.{k}": v for k, v in parse_overrides(args.overrides).items()}
    return validate(apply_overrides(RunCfg(), {**flags, **extra})).vge


def read_items(dataset: str, root: str | None, subsets: str) -> list[Item]:
    """The dataset's training items, or every image once (``subsets="all"``)."""
    from ..data.readers import read_dataset

    split = read_dataset(dataset, root=root)
    if subsets == "train":
        return list(split.train)
    seen: dict[str, Item] = {}
    for it in (*split.train, *split.query, *split.gallery):
        seen.setdefault(it.key, it)
    return list(seen.values())


def _grid(text: str) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in text.lower().split("x"))
        return h, w
    except ValueError:
        raise ConfigError(f"--grid must look like 16x8, got {text!r}") from None


def finish(store: Any, items: Sequence[Item], vge: VgeCfg, grid: tuple[int, int]) -> None:
    """Calibrate, write masks, print reasons and the IoU table (shared with ``calibrate``)."""
    from ..grounding import CalibCfg, calibrate_store, store_iou, store_masks
    from ..tables import format_table

    cfg = CalibCfg.from_vge(vge)
    keys = [it.key for it in items]  # fitted on the images asked for, as training does
    cal = calibrate_store(store, cfg, keys=keys)
    source = "calibrated" if vge.calibrate else "raw"
    masks = store_masks(store, grid, source, cfg=cfg, ensure_one=vge.ensure_one_patch, keys=keys)
    print(f"\ncalibration ({store.calibrated_path.name}):")
    for part, counts in cal.reason_counts().items():
        print(f"  {part:<6} " + ", ".join(f"{r} {n}" for r, n in counts.items()))
    print(f"masks: {len(masks)} x [3, {grid[0] * grid[1]}] "
          f"({source}) -> {store.masks_path(source, grid)}")
    rows = store_iou(store, items, cal)
    if rows is not None:
        print("\nmean IoU to ground truth (missing raw boxes count 0):")
        print(format_table([{k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.items()} for r in rows]))


def run(args: argparse.Namespace) -> int:
    from ..data.errors import DatasetError
    from ..grounding import GroundingStore, backend_from_cfg, ground_items
    from ..grounding.box_store import StoreError

    try:
        vge = vge_from_args(args)
        grid = _grid(args.grid)
        items = read_items(args.dataset, args.root, args.subsets)
        backend = backend_from_cfg(vge, device=args.device)
    except (ConfigError, DatasetError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        reports = ground_items(items, backend, root=args.store_root, progress=not args.quiet,
                               retry_failed=args.retry_failed, limit=args.limit, batch_size=args.batch_size)
        for rep in reports:
            print(rep.summary())
            t = rep.totals()
            print(f"  total  parsed {t['ok']}, fell back {t['fallback']}, failed {t['failed']} (answers)")
            warning = rep.fallback_warning(vge.max_fallback_share)
            if warning:
                print(f"warning: {warning}", file=sys.stderr)
        finish(GroundingStore(args.dataset, backend.tag, args.store_root), items, vge, grid)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
