"""Re-calibrate an existing grounding store (other thresholds: --set fence_k=2.0) and rewrite its masks.

Reads data/grounding/<dataset>/<backend>.jsonl as written by `ground`; grounds nothing. Prints the
calibration reasons per part and, on synthetic domains, the mean IoU of raw vs calibrated boxes.
"""
from __future__ import annotations

import argparse
import sys

from ..config import ConfigError
from .ground import _grid, add_common_arguments, finish, read_items, vge_from_args


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)


def run(args: argparse.Namespace) -> int:
    from ..data.errors import DatasetError
    from ..grounding import GroundingStore, backend_from_cfg

    try:
        vge = vge_from_args(args)
        grid = _grid(args.grid)
        items = read_items(args.dataset, args.root, args.subsets)
        store = GroundingStore(args.dataset, backend_from_cfg(vge, device="cpu").tag, args.store_root)
    except (ConfigError, DatasetError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not store.path.is_file():
        print(f"error: no grounding store at {store.path}: run `python -m muva_lib ground --dataset "
              f"{args.dataset} --backend {vge.backend}` first", file=sys.stderr)
        return 2
    from ..grounding.box_store import StoreError

    try:
        finish(store, items, vge, grid)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0
