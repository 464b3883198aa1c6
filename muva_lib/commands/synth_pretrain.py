"""Generate the pretraining corpus: many identities from the synthetic generator under randomised domains.

Written in shards of --shard-size identities; same seed and arguments give byte-identical files, and
a killed run resumes (finished shards untouched, the interrupted one rendered again). Identities never
wear the outfit of a benchmark identity; the summary counts the benchmark test identities that still
have an attribute twin (and a near twin, one attribute different) in the corpus. --exclude-style NAME
draws no nuisance setting of that benchmark domain (see muva_lib.data.synth.nuisance).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..data.synthetic import DOMAINS, CorpusCfg, generate_corpus
from ..paths import data_root

#: help of each CorpusCfg field exposed as --field-name
_HELP = {
    "ids": "identities",
    "images_per_id": "images per identity, each in its own random scene",
    "height": "image height in pixels",
    "width": "image width in pixels",
    "shard_size": "identities per shard (the unit a killed run redoes)",
    "family_size": "identities per family (same outfit, one part differs); 1: independent identities",
    "part_share": "share of images that also get part captions",
    "benchmark_seed": "seed of the benchmark whose identities are kept out and counted as twins",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: <data>/synth-pretrain)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    defaults = CorpusCfg()
    for name, text in _HELP.items():
        value = getattr(defaults, name)
        parser.add_argument("--" + name.replace("_", "-"), type=type(value), default=value,
                            help=f"{text} (default {value:.4g})")
    parser.add_argument("--exclude-style", action="append", choices=list(DOMAINS), default=[], metavar="DOMAIN",
                        help="draw no nuisance setting of this benchmark domain (repeatable)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1),
                        help="worker processes (the files do not depend on it)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    out = args.out if args.out is not None else data_root() / "synth-pretrain"
    cfg = CorpusCfg(**{name: getattr(args, name) for name in _HELP}, exclude_style=tuple(args.exclude_style))
    s = generate_corpus(out, seed=args.seed, cfg=cfg, workers=args.workers, progress=not args.quiet)
    rate = s["rendered_images"] / s["seconds"] if s["rendered_images"] and s["seconds"] > 0 else 0.0
    kept = s["shards"] - s["rendered_shards"]
    print(f"{s['images']} images of {cfg.ids} identities in {s['shards']} shards under {out}")
    print(f"rendered {s['rendered_images']} images ({s['rendered_shards']} shards, {kept} already complete) "
          f"in {s['seconds']:.1f} s ({rate:.1f} images/s, {args.workers} workers)")
    c = s["captions"]
    print(f"captions: {c['pairs_per_image']:.2f} per image; {c['images_with_parts']:.1%} of images have part "
          f"captions, {c['part_pairs']:.1%} of pairs are part captions")
    for name, info in s["leakage"].items():
        print(f"leakage {name}: {info['twins']} of {info['test_ids']} benchmark test identities have an attribute "
              f"twin in the corpus, {info['near_twins']} a near twin (one attribute differs); benchmark outfits "
              "are kept out of the draw")
    return 0
