"""Pretrain the workbench's tiny CLIP on the synthetic corpus (contrastive, open_clip's loss and schedule).

    python -m muva_lib pretrain [--preset default|smoke] [--out RUN] [key=value ...]
    python -m muva_lib pretrain ship RUN          pack RUN's weights into the shipped file + manifest

The run folder (default runs/pretrain/<preset>-<loss>-s<seed>) holds config.json, log.csv, tb/, last.pt,
final.safetensors and summary.json. Run the same command again to resume a killed run (the result is the
same as an uninterrupted run on the same machine and thread count). Under torchrun each process takes its
slice of every global batch. key=value sets any PretrainCfg field (e.g. loss=clip steps=2000 threads=2).
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", default="default", help="starting recipe: default (the shipped run) or smoke")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default runs/pretrain/<preset>-<loss>-s<seed>)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("args", nargs="*", metavar="key=value | ship RUN",
                        help="config overrides, or 'ship RUN' to pack a finished run into the shipped weights")


def run(args: argparse.Namespace) -> int:
    if args.args and args.args[0] == "ship":
        if len(args.args) != 2:
            raise ValueError("usage: python -m muva_lib pretrain ship RUN")
        from ..pretrain.ship import ship

        manifest = ship(Path(args.args[1]), progress=not args.quiet)
        print(f"shipped {manifest['file']} ({manifest['bytes'] / 1e6:.2f} MB, sha256 {manifest['sha256'][:12]}...)")
        return 0
    from ..pretrain import apply_overrides, default_run_dir, preset, pretrain

    cfg = apply_overrides(preset(args.preset), args.args)
    out = args.out if args.out is not None else default_run_dir(f"{args.preset}-{cfg.loss}-s{cfg.seed}")
    s = pretrain(cfg, out, progress=not args.quiet)
    if "wall_s" in s:
        print(f"pretrained {s['steps']} steps ({s['pairs']} pairs) in {s['wall_s']:.0f} s, {s['pairs_per_s']:.1f} "
              f"pairs/s on {s['processes']} process(es) x {s['threads']} thread(s); final loss {s['final_loss']}")
    print(f"run folder: {out}")
    return 0
