"""``python -m muva_lib.bench corpus``: pretraining-corpus generation speed per worker count, extrapolated.

Writes a small corpus into a temporary folder once per worker count and prints images/s and the time
the default corpus (``CorpusCfg()``: 3,000 identities x 8 images at 128x64) would take at that rate.
"""
from __future__ import annotations

import argparse
import tempfile
from dataclasses import replace
from typing import Sequence

from .corpus import CorpusCfg, generate_corpus


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m muva_lib.bench corpus", description=__doc__)
    parser.add_argument("--ids", type=int, default=100, help="identities of the measured corpus (default 100)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default 1 2)")
    args = parser.parse_args(argv)
    default = CorpusCfg()
    cfg = replace(default, ids=args.ids, shard_size=max(1, args.ids // 4))
    total = default.ids * default.images_per_id
    print(f"{'workers':>7}  {'images':>6}  {'seconds':>7}  {'images/s':>8}  default corpus ({total:,} images)")
    for workers in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            s = generate_corpus(tmp, seed=0, cfg=cfg, workers=workers)
        rate = s["rendered_images"] / max(s["seconds"], 1e-9)
        print(f"{workers:>7}  {s['rendered_images']:>6}  {s['seconds']:>7.1f}  {rate:>8.1f}  {total / rate / 60:.1f} min")
    return 0
