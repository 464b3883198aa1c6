"""Train a method on a protocol (or find its finished run) and execute the per-run notebooks into its folder with papermill.

A method run is runs/<protocol>/<method>/<stamp>-<preset>-s<seed>/; the executed notebooks go to its
notebooks/ folder with a manifest (parameters, status, timings, git commit), and a notebook already
done with the same parameters is skipped (an interrupted sweep resumes). --all-synthetic runs every
synthetic protocol for every method, then 06_results once over all runs of the preset
(runs/_results/<preset>/). key=value overrides change the config (stage2.epochs=2 ...).
"""
from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..runs import RUN_NOTEBOOKS

    parser.add_argument("--protocol", default=None, help="protocol name, e.g. ma->d or synth-a->synth-b")
    parser.add_argument("--method", default="muva", help="muva | clipreid (default muva)")
    parser.add_argument("--preset", default="smoke", help="smoke | paper (default smoke)")
    parser.add_argument("--seeds", nargs="+", default=["0"], help="seeds, one run each (default 0)")
    parser.add_argument("--notebooks", nargs="*", default=[s[:2] for s in RUN_NOTEBOOKS],
                        help="notebooks to execute per run (default 03 04 05; none: train only; 06 runs once at the end)")
    parser.add_argument("--all-synthetic", action="store_true",
                        help="every synthetic protocol x every method, then 06_results")
    parser.add_argument("--prepare-only", action="store_true",
                        help="check and inject the parameters, write the notebooks, run nothing")
    parser.add_argument("--force", action="store_true", help="re-execute notebooks already done")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")


def _jobs(args: argparse.Namespace) -> list[tuple[str, str]]:
    from ..data.protocols import synthetic_protocols
    from ..runs import SWEEP_METHODS

    if args.all_synthetic:
        return [(p, m) for p in synthetic_protocols() for m in SWEEP_METHODS]
    if not args.protocol:
        raise ValueError("give --protocol (and --method), or --all-synthetic")
    return [(args.protocol, args.method)]


def run(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..runs import (RESULTS_NOTEBOOK, NotebookError, RunNotFoundError, UnknownParameterError, notebook_stem,
                        run_method, run_results)

    # key=value items right after --seeds / --notebooks belong to the overrides
    overrides = [a for a in (*args.seeds, *args.notebooks) if "=" in a] + list(args.overrides)
    try:
        seeds = [int(s) for s in args.seeds if "=" not in s]
        jobs = _jobs(args)
        stems = [notebook_stem(n) for n in args.notebooks if "=" not in n]
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = args.all_synthetic or RESULTS_NOTEBOOK in stems
    per_run = [s for s in stems if s != RESULTS_NOTEBOOK]
    try:
        for protocol, method in jobs:
            for seed in seeds:
                print(f"== {protocol} / {method} / {args.preset} / seed {seed}", flush=True)
                run_dir, records = run_method(protocol, method, args.preset, seed, per_run, overrides,
                                              args.device, force=args.force, prepare_only=args.prepare_only)
                print(f"  run folder: {run_dir.root if run_dir is not None else '(none yet: notebooks prepared only)'}")
                for rec in records:
                    print(f"  {rec.notebook:<20} {rec.status:<8} {rec.seconds:6.0f} s  {rec.output}", flush=True)
        if results:
            protocol, method = jobs[0]
            rec = run_results(args.preset, protocol, method, seeds[0], args.device,
                              prepare_only=args.prepare_only)
            print(f"== {RESULTS_NOTEBOOK}: {rec.status} in {rec.seconds:.0f} s -> {rec.output}")
    except (ConfigError, RunNotFoundError, UnknownParameterError, NotImplementedError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except NotebookError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
