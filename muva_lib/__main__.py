"""The command line: ``python -m muva_lib <command> ...`` (each command is one module in ``commands/``)."""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Sequence

#: command name -> (module under muva_lib.commands, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("synth", "generate the synthetic multi-domain benchmark (Market-1501 layout)"),
    "synth-pretrain": ("synth_pretrain", "generate the pretraining corpus: disjoint identities, randomised domains, "
                                         "varied and part captions, in resumable shards"),
    "protocols": ("list_protocols", "print the table of named protocols"),
    "config": ("config", "print a resolved config: its differences from the defaults and where each came from"),
    "ground": ("ground", "ground a dataset's part boxes with a VGE backend, calibrate, write patch masks"),
    "calibrate": ("recalibrate", "re-calibrate an existing grounding store and rewrite its masks"),
    "demo": ("demo", "run the end-to-end demo on the embedded default"),
    "train": ("train", "train a method on a protocol (both stages) into a run folder; --resume continues one"),
    "eval": ("eval", "evaluate a run folder or checkpoint on a protocol's targets"),
    "real-crops": ("real_crops", "build a small real re-ID set (pseudo-labelled) from OpenCV's vtest.avi"),
    "run": ("run", "train / find a method run and execute its notebooks with papermill (--all-synthetic: the sweep)"),
    "pivl-part-phase": ("pivl_part_phase", "pi-VL's stage-1 part phase per part-epoch setting and seed: the runs "
                                           "(found or trained) and figures/tables/pivl_part_phase.md"),
    "pretrain": ("pretrain", "pretrain the tiny CLIP on the synthetic corpus (open_clip loss + schedule, resumable, "
                             "torchrun); 'pretrain ship RUN' packs the shipped weights"),
    "zeroshot": ("zeroshot", "zero-shot checks of a CLIP on a synthetic domain's unseen identities: text-to-image "
                             "retrieval, attributes, colour binding, part pointing, frozen re-ID (--json)"),
    "readme": ("write_readme", "rewrite the README's generated results blocks from figures/ (--check: only compare)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m muva_lib", description=__doc__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(f"muva_lib.commands.{module}")
        p = sub.add_parser(name, help=help_text, description=mod.__doc__)
        mod.add_arguments(p)
        p.set_defaults(_module=mod)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; the library's own errors (:func:`muva_lib.commands.user_errors`) end it with one
    ``error: <message>`` line on stderr and exit 2 (``MUVA_TRACEBACK=1``: the full traceback instead)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args._module.run(args) or 0)
    except Exception as exc:
        from .commands import user_errors

        if not isinstance(exc, user_errors()) or os.environ.get("MUVA_TRACEBACK", "") not in ("", "0"):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
