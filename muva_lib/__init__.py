"""muva_lib: the reference workbench for vision-language, part-aware person re-identification.

MUVA, CLIP-ReID and pi-VL on one pipeline: grounding -> protocols -> two-stage training ->
evaluation -> tables and figures. The public API is re-exported here; notebooks use only this.
"""
from __future__ import annotations

from .config import METHODS, PRESETS, RunCfg, load as load_config, resolve
from .utils import resolve_device, seed_everything

__version__ = "0.1.0"

__all__ = ["__version__", "RunCfg", "resolve", "load_config", "seed_everything", "resolve_device",
           "list_methods", "list_presets"]


def list_methods() -> list[str]:
    return list(METHODS)


def list_presets() -> list[str]:
    return list(PRESETS)
