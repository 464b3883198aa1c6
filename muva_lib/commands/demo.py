"""Run the quickstart notebook end to end on the synthetic benchmark: synthesise, ground, calibrate, train MUVA and CLIP-ReID, evaluate.

Everything the demo writes lands under runs/ (and the regenerable data/): the notebook
(notebooks/00_quickstart.py) is executed with papermill into runs/demo/notebooks/, its figures go to
runs/demo/figures/ and its results table to runs/demo/tables/quickstart.md (and .tex); --run-dir
sends all three elsewhere. The training runs land in runs/<protocol>/<method>/ (reused when they
exist). The committed figures/ and notebooks/*.ipynb are left alone: `make notebooks` refreshes
them. key=value overrides change the training config.
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

#: wall time of the demo from nothing (no data, no runs; the venv installed), in minutes on 2 CPU cores:
#: the one estimate the command prints before it starts, rounded up from a timed run on a clean clone
#: (time it again there when the pipeline changes). After the run it prints that run's own time.
ESTIMATE_MINUTES = 4


@dataclass(frozen=True)
class DemoPaths:
    """Where one demo writes: the papermill output folder and, inside it, the executed notebook, the
    figures folder and the Markdown table (the .tex beside it)."""

    out: Path
    notebook: Path
    figures: Path
    table: Path


def demo_paths(run_dir: str | Path = "") -> DemoPaths:
    """The demo's output paths: under ``run_dir``, by default ``<runs>/demo`` (``$MUVA_RUNS``)."""
    from ..paths import runs_root
    from ..runs import QUICKSTART, output_dirs

    out = Path(run_dir) if str(run_dir) else runs_root() / "demo"
    figures, tables = output_dirs(out, QUICKSTART)
    return DemoPaths(out, out / "notebooks" / f"{QUICKSTART}.ipynb", figures, tables / "quickstart.md")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", default="synth-a->synth-b", help="a synthetic protocol (default synth-a->synth-b)")
    parser.add_argument("--seed", type=int, default=0, help="run seed (default 0)")
    parser.add_argument("--methods", default="muva,clipreid", help="comma-separated methods (default muva,clipreid)")
    parser.add_argument("--run-dir", default="", help="write the executed notebook, figures and table here "
                        "(default: runs/demo under $MUVA_RUNS)")
    parser.add_argument("--force", action="store_true", help="execute the notebook even if done with these parameters")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (stage2.epochs=2 ...)")


def demo_parameters(args: argparse.Namespace, paths: DemoPaths, protocol: str) -> dict[str, object]:
    """The quickstart notebook's parameters for ``args`` (RUN_DIR: always the demo's folder, never the
    committed figures/)."""
    return {"PROTOCOL": protocol, "SEED": args.seed, "METHODS": args.methods, "RUN_DIR": str(paths.out),
            "OVERRIDES": " ".join(args.overrides)}


def run(args: argparse.Namespace) -> int:
    from ..data.protocols import get_protocol
    from ..paths import runs_root, slug
    from ..runs import QUICKSTART, NotebookError, execute_notebook

    proto = get_protocol(args.protocol)
    if proto.kind != "synthetic":
        print(f"error: the demo runs on synthetic data; {proto.name!r} is a {proto.kind} protocol")
        return 2
    paths = demo_paths(args.run_dir)
    params = demo_parameters(args, paths, proto.name)
    print(f"== executing {QUICKSTART} with papermill into {paths.out}/ (about {ESTIMATE_MINUTES} minutes on 2 CPU "
          "cores from nothing, seconds when its runs exist) ...", flush=True)
    t0 = time.perf_counter()
    try:
        rec = execute_notebook(QUICKSTART, paths.out, params, force=args.force)
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - t0
    print(f"{rec.status} in {seconds:.0f} s ({seconds / 60:.1f} min)" + (
        " (already done with these parameters; --force re-runs)" if rec.status == "skipped" else ""))
    print(f"executed notebook: {rec.output}")
    print(f"figures:           {paths.figures}/ ({', '.join(sorted(p.stem for p in paths.figures.glob('*.png')))})")
    print(f"results table:     {paths.table} (and .tex)")
    print(f"training runs:     {runs_root() / slug(proto.name)}/<method>/ (reused when they exist)")
    print("committed figures/ and notebooks/*.ipynb are untouched (`make notebooks` refreshes them)\n")
    print(paths.table.read_text() if paths.table.is_file() else "(table missing: re-run with --force)")
    return 0
