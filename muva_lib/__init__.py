"""muva_lib: the reference workbench for vision-language, part-aware person re-identification.

MUVA, CLIP-ReID and pi-VL on one pipeline: grounding -> protocols -> two-stage training ->
evaluation -> tables and figures. The public API is re-exported here; notebooks use only this.
Heavier entry points (``require_run``, ``execute_notebook``, ``collect_results``) load on first use.

Code map, in pipeline order (each stage builds on the ones above it)::

    paths, utils, jsonl  where things live; seeding, devices, atomic writes, small helpers; kill-safe JSONL
    config               the typed run config, methods' overrides, presets, validation
    geometry/            boxes, the patch grid, box -> patch masks, the joint flip (a leaf)
    data/                item types and errors, readers, synthetic benchmark (synth/), real set (real/), protocols
    grounding/           the VGE: backends, model answers, calibration, part masks, the box store
    human_parsing/       parsing maps (pi-VL): sources, class grouping, the map store, per-patch labels
    batches/             transforms, P x K samplers, loaders
    models/              CLIP backbone, AMMSA encoder, prompt learner, heads, weights on disk
    losses, memory       loss functions; prototype memories
    features             test-feature extraction (evaluation and the probes)
    eval/                distances, ranking metrics, re-ranking, the chunked evaluator
    train/               the two training stages, optimisers, resume state, DDP, run folders
    runs, analysis       notebook runs; diagnostics of finished runs
    baselines, tables    training-free baselines; results tables
    readme, viz/         the README's generated blocks; figures
    commands/, bench     the command line (python -m muva_lib) and the benchmarks (python -m muva_lib.bench)
"""
from __future__ import annotations

import importlib
from typing import Any

from .config import METHODS, PRESETS, RunCfg, load as load_config, resolve
from .utils import resolve_device, seed_everything

__version__ = "0.1.0"

__all__ = ["__version__", "RunCfg", "resolve", "load_config", "seed_everything", "resolve_device",
           "list_methods", "list_presets", "require_run", "find_run", "execute_notebook", "collect_results",
           "SWEEP_METHODS"]

#: lazily imported names -> their module (importing them pulls in torch and the training code)
_LAZY = {"require_run": "runs", "find_run": "runs", "execute_notebook": "runs", "SWEEP_METHODS": "runs",
         "collect_results": "tables"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def list_methods() -> list[str]:
    return list(METHODS)


def list_presets() -> list[str]:
    return list(PRESETS)
