"""Rewrite the README's generated results blocks from the table files under figures/ (--check: only say which are stale).

Each block between '<!-- results:NAME:start ... -->' and '<!-- results:NAME:end -->' is the text of
the files a command writes (figures/tables/*.md from the notebooks, figures/sweep/*.md from the sweep);
muva_lib.readme.BLOCKS lists them. Run it after `make notebooks` or a sweep.
"""
from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 when a block differs from its files")
    parser.add_argument("--readme", default="", help="the README to update (default: the repository's README.md)")


def run(args: argparse.Namespace) -> int:
    from ..readme import BLOCKS, ReadmeError, readme_path, update_readme

    path = args.readme or readme_path()
    try:
        stale = update_readme(path, check=args.check)
    except (OSError, ReadmeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not stale:
        print(f"{path}: all {len(BLOCKS)} generated blocks are up to date")
        return 0
    if args.check:
        print(f"{path}: stale block(s) {', '.join(stale)}; rewrite them with: python -m muva_lib readme",
              file=sys.stderr)
        return 1
    print(f"{path}: rewrote {', '.join(stale)}")
    return 0
