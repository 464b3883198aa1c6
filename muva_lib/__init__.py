"""muva_lib: the reference workbench for vision-language, part-aware person re-identification.

MUVA, CLIP-ReID and pi-VL on one pipeline: grounding -> protocols -> two-stage training ->
evaluation -> tables and figures. The public API is re-exported here; notebooks use only this.
Heavier entry points (``require_run``, ``execute_notebook``, ``collect_results``) load on first use.
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
