"""pi-VL's stage-1 part phase, setting by setting: find (or train) the pi-VL run of each --part-epochs setting and
seed on one protocol and write the table of their last part epoch (acc and part_acc with their chance levels,
the rate) beside the run's target mAP to figures/tables/pivl_part_phase.md and .tex.

A setting other than the recipe's part_epochs runs as variant part-epochs-<N> (kept out of the main tables);
the recipe's own setting reuses the sweep's run when there is one. Runs are trained only with the smoke
preset (or --train); --no-train only looks them up. key=value overrides change every run's config.
"""
from __future__ import annotations

import argparse
import sys

#: the table's file name under figures/tables/
TABLE_NAME = "pivl_part_phase"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--protocol", default="synth-a->synth-b", help="protocol (default synth-a->synth-b; quote it)")
    parser.add_argument("--preset", default="smoke", help="smoke | paper (default smoke)")
    parser.add_argument("--seeds", nargs="+", default=["0"], help="seeds, one run per setting each (default 0)")
    parser.add_argument("--part-epochs", nargs="+", default=["2", "10"],
                        help="stage1.part_epochs settings, one run per seed each (default 2 10)")
    train = parser.add_mutually_exclusive_group()
    train.add_argument("--train", dest="train", action="store_true", default=None,
                       help="train missing runs whatever the preset (default: only with smoke)")
    train.add_argument("--no-train", dest="train", action="store_false", help="only look finished runs up")
    parser.add_argument("--out-dir", default=None, help="folder of the table (default figures/tables)")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides of every run")


def split_arguments(args: argparse.Namespace) -> tuple[list[int], list[int], list[str]]:
    """Seeds, part-epoch settings and overrides: ``key=value`` items right after ``--seeds`` /
    ``--part-epochs`` belong to the overrides (argparse gives them to the option). ValueError names a bad one."""
    overrides = [a for a in (*args.seeds, *args.part_epochs) if "=" in a] + list(args.overrides)

    def ints(values: list[str], flag: str) -> list[int]:
        try:
            return [int(v) for v in values if "=" not in v]
        except ValueError:
            raise ValueError(f"{flag} {' '.join(values)}: give whole numbers") from None

    seeds, settings = ints(args.seeds, "--seeds"), ints(args.part_epochs, "--part-epochs")
    if not seeds or not settings:
        raise ValueError("give at least one seed (--seeds) and one setting (--part-epochs)")
    return seeds, list(dict.fromkeys(settings)), overrides


def run(args: argparse.Namespace) -> int:
    from ..config import ConfigError
    from ..data.errors import DatasetError
    from ..runs import RunNotFoundError, part_phase_runs
    from ..tables import export_table, part_phase_row, part_phase_table, to_markdown

    try:
        seeds, settings, overrides = split_arguments(args)
        runs = part_phase_runs(args.protocol, settings, seeds, args.preset, overrides, train=args.train,
                               progress=True)
        table = part_phase_table([part_phase_row(r.root) for r in runs])
    except (ValueError, ConfigError, DatasetError, RunNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    caption = (f"pi-VL stage-1 part phase on {args.protocol} ({args.preset} preset): the last part epoch's acc "
               "(identity and part right) and part_acc (part right, any identity) with their chance levels, "
               "and the run's target mAP (%)")
    md, tex = export_table(table, TABLE_NAME, caption, out_dir=args.out_dir)
    print(to_markdown(table))
    print(f"wrote {md} and {tex}")
    return 0
