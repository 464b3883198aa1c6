"""muva_lib: the reference workbench for vision-language, part-aware person re-identification.

MUVA, CLIP-ReID and pi-VL on one pipeline: grounding -> protocols -> two-stage training ->
evaluation -> tables and figures. The public API is re-exported here; notebooks use only this.
Heavier entry points (``notebook``, ``FeatureExtractor``, ``require_run``, ``execute_notebook``,
``collect_results``) load on first use.

Code map: the stages in import order, from the leaves to the front doors. A module imports from its own
stage and earlier ones only; the order is :data:`muva_lib.layering.ORDER` and ``tests/test_layering.py``
checks it (and that this map lists the same names).

   0  utils            seeding, device and AMP choice, atomic file writes
      paths            where the repository, data, figures and runs live (each overridable by an env var)
      jsonl            append-only JSONL files that survive a kill
      geometry         patch grids, flips, box and mask helpers that every stage uses
      layering         this order and the check of the import graph
   1  config/          dataclass configs with the paper's values, presets, ``key=value`` overrides
   2  data/            item types, dataset readers, the synthetic and real sets, the pretraining corpus, protocols
   3  grounding/       the visual grounding expert (VGE): backends, answer parsing, calibration, masks, store
   4  human_parsing/   human parsing maps (pi-VL's input; was ``parsing/``): sources, grouping, store, labels
   5  batches/         training augmentation, P x K samplers, image loaders (were in ``data/``)
   6  models/          CLIP backbone, AM-MSA image encoder, prompts, heads, the factory, checkpoints
   7  losses           the pure loss functions of both training stages
   8  memory           prototype memories: visual (VPM) and textual (TPM)
      features         the one feature loop: evaluation, the training passes and the notebook probes
   9  eval/            ranking metrics, distances, re-ranking, the chunked evaluator, zero-shot checks of a CLIP
  10  methods/         the method registry and one recipe per method: clipreid, muva, pivl
  11  train/           what every method shares: optimiser, sampler, resume, DDP, epoch loop, run folders
      extract          ``FeatureExtractor.from_run``: a finished run's test features of any images, for other code
  12  pretrain/        contrastive pretraining of the tiny CLIP on the synthetic corpus; the shipped weights
  13  analysis         diagnostics of trained runs (retrieval, memory statistics, mask IoU, attention)
      baselines        training-free baselines: colour histograms, LDA
      reported         the papers' reported numbers as data, with their sources
      tables           results tables: collected metrics, paper layouts, Markdown and LaTeX export
  14  viz/             figures: one module per topic, ``save_figure``
  15  explore/         ipywidgets explorers for JupyterLab: sliders and menus that redraw the viz figures
  16  runs             notebook runs: find or train a config's run, execute notebooks with papermill
      notebook_runs    executing notebooks with papermill: parameters checked, a manifest, resume
      notebook_setup   the notebooks' front door ``muva_lib.notebook(...)``: config, run, device, output folders
      sweep            the committed sweep: its per-run records (figures/sweep/records/) and the tables built from them
  17  commands/        one module per CLI command (``python -m muva_lib <command>``)
      bench            ``python -m muva_lib.bench NAME``: speed and memory benchmarks
      readme           the README's generated blocks (``python -m muva_lib readme``)
  18  __main__         the command line
      __init__         this public API
"""
from __future__ import annotations

import importlib
from typing import Any

from . import config as _config
from .config import PRESETS, RunCfg, load as load_config, resolve
from .utils import resolve_device, seed_everything

__version__ = "0.1.0"

__all__ = ["__version__", "RunCfg", "resolve", "load_config", "seed_everything", "resolve_device",
           "list_methods", "list_presets", "require_run", "find_run", "execute_notebook", "collect_results",
           "SWEEP_METHODS", "notebook", "NotebookSetup", "FeatureExtractor"]

#: lazily imported names -> their module (importing them pulls in torch and the training code)
_LAZY = {"require_run": "runs", "find_run": "runs", "execute_notebook": "runs", "SWEEP_METHODS": "runs",
         "collect_results": "tables", "notebook": "notebook_setup", "NotebookSetup": "notebook_setup",
         "FeatureExtractor": "extract"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def list_methods() -> list[str]:
    return list(_config.METHODS)  # read from the recipes here, not at import (they import torch)


def list_presets() -> list[str]:
    return list(PRESETS)
