"""Run the quickstart notebook end to end on the synthetic benchmark: synthesise, ground, calibrate, train MUVA and CLIP-ReID, evaluate.

The notebook (notebooks/00_quickstart.py) is executed with papermill into runs/demo/notebooks/; the
training runs land in runs/<protocol>/<method>/ (reused when they exist), the figures in
figures/00_quickstart/ and the results table in figures/tables/quickstart.md (and .tex), unless
--run-dir sends figures and table there. key=value overrides change the training config.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", default="synth-a->synth-b", help="a synthetic protocol (default synth-a->synth-b)")
    parser.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    parser.add_argument("--methods", default="muva,clipreid", help="comma-separated methods (default muva,clipreid)")
    parser.add_argument("--run-dir", default="", help="write figures and table here instead of figures/")
    parser.add_argument("--force", action="store_true", help="execute the notebook even if done with these parameters")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (stage2.epochs=2 ...)")


def run(args: argparse.Namespace) -> int:
    from ..data.protocols import get_protocol
    from ..paths import figures_root, runs_root
    from ..runs import QUICKSTART, NotebookError, execute_notebook

    proto = get_protocol(args.protocol)
    if proto.kind != "synthetic":
        print(f"error: the demo runs on synthetic data; {proto.name!r} is a {proto.kind} protocol")
        return 2
    out = runs_root() / "demo"
    params = {"PROTOCOL": proto.name, "SEED": args.seed, "METHODS": args.methods, "RUN_DIR": args.run_dir,
              "OVERRIDES": " ".join(args.overrides)}
    print(f"== executing {QUICKSTART} with papermill (about 5 minutes on 2 CPU cores from nothing) ...", flush=True)
    t0 = time.time()
    try:
        rec = execute_notebook(QUICKSTART, out, params, force=args.force)
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    figures = Path(args.run_dir) / "figures" if args.run_dir else figures_root() / QUICKSTART
    table = (Path(args.run_dir) if args.run_dir else figures_root()) / "tables" / "quickstart.md"
    print(f"{rec.status} in {time.time() - t0:.0f} s" + (" (already done with these parameters; --force re-runs)"
                                                         if rec.status == "skipped" else ""))
    print(f"executed notebook: {rec.output}")
    print(f"figures:           {figures}/ ({', '.join(sorted(p.stem for p in figures.glob('*.png')))})")
    print(f"results table:     {table} (and .tex)\n")
    print(table.read_text() if table.is_file() else "(table missing: re-run with --force)")
    return 0
