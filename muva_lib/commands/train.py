"""Train a method on a protocol (stage 1 prompts, stage 2 encoder, final evaluation) into a run folder.

The folder is runs/<protocol>/<method>/<timestamp>-<preset>-s<seed>/ (see muva_lib.train.rundir).
--resume continues the newest unfinished run of the same protocol and method (or RUN_DIR) from its
last completed epoch; a run whose config differs is refused, naming the differences.
Under `torchrun --nproc_per_node N -m muva_lib train ...` the run is distributed (DDP).
"""
from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", required=True,
                        help="protocol name, quoted in a shell: e.g. 'ma->d' or 'synth-a->synth-b'")
    parser.add_argument("--method", default="muva", help="muva | clipreid | pivl (default muva)")
    parser.add_argument("--preset", default="paper", help="paper | smoke (default paper)")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: the config's, 1234)")
    parser.add_argument("--device", default=None, help="auto | cpu | cuda | cuda:N (default: the config's, auto)")
    parser.add_argument("--resume", nargs="?", const="", default=None, metavar="RUN_DIR",
                        help="continue the newest unfinished run of this protocol/method, or RUN_DIR")
    parser.add_argument("--run-dir", default=None, help="write the new run into this folder")
    parser.add_argument("--eval-period", type=int, default=None,
                        help="evaluate the target every K epochs of stage 2 (default 0: only at the end)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides (stage2.epochs=2 ...)")


def run(args: argparse.Namespace) -> int:
    """Errors of the config, the data or the run folder propagate to ``python -m muva_lib`` (one line, exit 2)."""
    from ..config import resolve
    from ..tables import format_table
    from ..train import train
    from ..train.ddp import from_env, shutdown
    from ..train.run_eval import metrics_rows

    overrides = list(args.overrides)
    if args.resume and "=" in args.resume and not Path(args.resume).exists():  # `--resume key=value ...`
        overrides, args.resume = [args.resume, *overrides], ""
    if args.device is not None:
        overrides.append(f"device={args.device}")
    if args.eval_period is not None:
        overrides.append(f"stage2.eval_period={args.eval_period}")
    cfg = resolve(args.method, args.preset, args.protocol, args.seed, overrides)
    main = from_env().is_main
    resume = args.resume is not None
    run_dir = args.resume or args.run_dir or None
    try:
        result = train(cfg, run_dir=run_dir, resume=resume, progress=not args.no_progress)
    finally:
        shutdown()
    if main:
        print(f"run folder: {result.run_dir}")
        if result.already_finished:
            print("the run had already finished with this config: nothing was trained; its results:")
        for name in ("stage1", "stage2"):
            rows = getattr(result, name)
            if rows:
                last = rows[-1]
                terms = "  ".join(f"{k[5:]} {v:.4f}" for k, v in last.items() if k.startswith("loss_"))
                print(f"{name}: {len(rows)} epochs, last epoch loss {last['loss']:.4f} ({terms})")
        if result.timings:
            print("seconds: " + ", ".join(f"{k[:-2]} {v:.1f}" for k, v in result.timings.items()))
        if result.metrics:
            print(format_table(metrics_rows(result.metrics)))
    return 0
