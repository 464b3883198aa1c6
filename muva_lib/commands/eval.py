"""Evaluate a trained model (a run folder or its checkpoints/final.pt) on a protocol's targets.

The run's config travels inside final.pt (or comes from the run's config.json); key=value overrides
change evaluation settings (eval.flip=true, eval.k1=50 ...). Prints mAP / R1 / R5 / R10 / mINP.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, type=Path, help="a run folder or a checkpoint file")
    parser.add_argument("--protocol", default=None, help="protocol whose targets to test (default: the run's)")
    parser.add_argument("--all-splits", action="store_true",
                        help="small-dataset targets: mean of all 10 splits even where the run's config names one "
                             "(the default unless data.split_index=k)")
    parser.add_argument("--rerank", action="store_true",
                        help="k-reciprocal re-ranking as in the field's tables (eval.k1 / eval.k2 / eval.lambda_value; "
                             "eval.rerank_variant=paper for the paper's definition as written)")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: the run's)")
    parser.add_argument("--write", action="store_true", help="also write metrics/<target>.json into the run folder")
    parser.add_argument("--json", type=Path, default=None, help="write the metrics to this JSON file")
    parser.add_argument("--progress", action="store_true", help="progress bars")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def run(args: argparse.Namespace) -> int:
    """Errors of the checkpoint, config or data propagate to ``python -m muva_lib`` (one line, exit 2)."""
    from ..tables import format_table
    from ..train import evaluate_run
    from ..train.run_eval import metrics_rows

    overrides = list(args.overrides)
    if args.all_splits:
        overrides.append("data.all_splits=true")
    if args.rerank:
        overrides.append("eval.rerank=true")
    metrics = evaluate_run(args.checkpoint, args.protocol, overrides, device=args.device, progress=args.progress,
                           write=args.write)
    print(format_table(metrics_rows(metrics)))
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return 0
