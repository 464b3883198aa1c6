"""Print the table of named protocols (and whether each one's data is on disk)."""
from __future__ import annotations

import argparse

from ..data.protocols import ALIASES, KINDS, protocol_datasets, protocol_table, readiness_lines
from ..tables import format_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kind", choices=KINDS, default=None, help="only protocols of this kind")
    parser.add_argument("--no-check", action="store_true", help="do not look for the datasets on disk")


def run(args: argparse.Namespace) -> int:
    rows = protocol_table(args.kind, check_data=not args.no_check)
    print(format_table(rows))
    if not args.no_check:
        lines = readiness_lines(protocol_datasets(args.kind))
        if lines:
            print("\nNot ready (a dataset is ready when its folder holds the reader's layout with images):")
            print("\n".join(f"  {line}" for line in lines))
    print("\nShort names: " + ", ".join(f"{k} = {v}" for k, v in ALIASES.items() if k != v))
    print("\nAny other 'src[+src...]->target' over the short names also works "
          "(e.g. ma+ms->d); a bare name (ma) trains and tests on one dataset.")
    return 0
