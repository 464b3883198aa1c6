"""``python -m muva_lib.bench NAME``: speed and memory benchmarks that print ratios measured in one run.

Each benchmark lives next to what it measures and is listed here by name.
"""
from __future__ import annotations

import importlib
import sys
from typing import Sequence

#: name -> "module:function" taking argv and returning an exit code
BENCHMARKS: dict[str, str] = {
    "corpus": "muva_lib.data.synth.bench_corpus:main",
    "eval": "muva_lib.eval.bench_rank:main",
    "rerank": "muva_lib.eval.bench_rerank:main",
    "encoder": "muva_lib.models.bench_encoder:main",
    "pretrain": "muva_lib.pretrain.bench:main",
    "train": "muva_lib.train.bench_step:main",
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        print("benchmarks: " + ", ".join(sorted(BENCHMARKS)))
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}; choose one of: {', '.join(sorted(BENCHMARKS))}", file=sys.stderr)
        return 2
    module, func = BENCHMARKS[name].split(":")
    return int(getattr(importlib.import_module(module), func)(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
