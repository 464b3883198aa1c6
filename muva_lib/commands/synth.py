"""Generate the synthetic multi-domain person benchmark (Market-1501 layout, part boxes, parsing maps).

Same seed and arguments give byte-identical files. A domain already complete with the same
arguments is skipped; a folder made with other arguments is never mixed into: pick another
--out, or pass --overwrite to regenerate the requested domains.
"""
from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

from ..data.synthetic import DOMAINS, SynthCfg, SynthError, generate
from ..paths import synth_root

#: help of each SynthCfg field exposed as --field-name
_HELP = {
    "ids": "identities per domain, train + test",
    "test_fraction": "share of the identities in the test split",
    "images_per_id": "training images per identity",
    "queries_per_id": "at most this many query images per test identity",
    "gallery_per_id": "gallery images per test identity in other cameras",
    "same_camera_gallery": "probability of one more gallery image in the query camera",
    "distractors": "pid-0 gallery images per domain",
    "height": "image height in pixels",
    "width": "image width in pixels",
    "family_size": "identities per family (same outfit, one part differs); 1 turns families off",
    "occlusion": "multiplier on each domain's occluder probability",
    "jitter": "multiplier on each domain's scale, position and crop jitter",
    "degrade": "multiplier on each domain's noise, blur and resolution loss",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder, one sub-folder per domain (default: $MUVA_SYNTH or data/synth)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--domains", nargs="+", choices=list(DOMAINS), default=list(DOMAINS), metavar="DOMAIN",
                        help=f"domains to generate (default: all of {', '.join(DOMAINS)})")
    defaults = SynthCfg()
    for f in fields(SynthCfg):
        value = getattr(defaults, f.name)
        parser.add_argument("--" + f.name.replace("_", "-"), type=type(value), default=value,
                            help=f"{_HELP[f.name]} (default {value:.4g})")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes (the files do not depend on it)")
    parser.add_argument("--overwrite", action="store_true", help="regenerate domains made with other arguments")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    out = args.out if args.out is not None else synth_root()
    try:
        cfg = SynthCfg(**{f.name: getattr(args, f.name) for f in fields(SynthCfg)})
        summary = generate(out, seed=args.seed, domains=args.domains, cfg=cfg, workers=args.workers,
                           overwrite=args.overwrite, progress=not args.quiet)
    except (SynthError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, info in summary["domains"].items():
        c = info["counts"] or {}
        sizes = " / ".join(f"{c[s]['images']} {label}" for s, label in
                           (("bounding_box_train", "train"), ("query", "query"), ("bounding_box_test", "gallery")) if s in c)
        if info["status"] == "skipped":
            print(f"{name}: already complete with these arguments, skipped ({sizes} images)")
        else:
            print(f"{name}: {sizes} images in {info['seconds']:.1f} s")
    print(f"wrote {summary['images']} images in {summary['seconds']:.1f} s under {out}")
    return 0
