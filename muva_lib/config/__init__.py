"""Dataclass configs with the paper's values as defaults, presets, methods and ``key=value`` overrides.

One resolved :class:`RunCfg` describes a run completely; it is written to the run folder as JSON
and can be read back with :func:`load`. There is no global config object: each constructor takes
the one sub-config (or the explicit values) it needs.

Resolution order (later wins): dataclass defaults (the paper's values, MUVA on ViT-B/16) ->
preset (``paper`` or ``smoke``) -> method recipe (:mod:`muva_lib.methods`: ``clipreid``, then the
recipe built on it, ``muva`` or ``pivl``) -> the few adjustments a preset makes to one method
(:data:`PRESET_METHODS`) -> an ablation -> user overrides (``stage2.epochs=2 model.num_parts=0``);
:func:`resolve_with_sources` also says which of them set each key.

The package, in its import order: :mod:`.schema` (the dataclasses, :class:`ConfigError`) ->
:mod:`.presets` (``PRESETS`` and the method registry's tables) -> :mod:`.overrides` (``key=value``
parsing, type coercion, applying) -> :mod:`.rules` (:class:`Rule`, :data:`FIELD_RULES`) ->
:mod:`.validation` (:data:`CROSS_RULES`, :func:`validate`) -> :mod:`.files` (``config.json`` save and
load, :data:`FIELDS_ADDED_LATER`, the hash) -> :mod:`.resolution` (:func:`resolve`). Every name is
re-exported here: import from ``muva_lib.config``.
"""
from __future__ import annotations

from typing import Any

from . import presets as _presets
from .files import FIELDS_ADDED_LATER, config_hash, from_dict, load, save, to_dict
from .overrides import apply_overrides, parse_overrides
from .presets import PRESETS, Ablation, ablation_overrides
from .resolution import resolve, resolve_layers, resolve_with_sources
from .rules import ACTIVATIONS, FIELD_RULES, GRID_INTERPOLATIONS, MASK_LOSSES, STAGE1_LOSSES, Rule
from .schema import (ConfigError, DataCfg, EvalCfg, ModelCfg, ParsingCfg, RunCfg, Stage1Cfg, Stage2Cfg, VgeCfg,
                     _get, config_keys)
from .validation import CROSS_RULES, validate, validation_errors

__all__ = [
    "DataCfg", "VgeCfg", "ParsingCfg", "ModelCfg", "Stage1Cfg", "Stage2Cfg", "EvalCfg", "RunCfg",
    "PRESETS", "METHODS", "PRESET_METHODS", "Ablation", "ABLATIONS", "ablation_overrides",
    "resolve", "resolve_with_sources", "resolve_layers", "apply_overrides", "parse_overrides", "to_dict", "from_dict",
    "FIELDS_ADDED_LATER", "save", "load", "config_hash", "ConfigError", "Rule", "FIELD_RULES", "CROSS_RULES", "config_keys",
    "validation_errors", "validate",
]


def __getattr__(name: str) -> Any:
    """``METHODS``, ``PRESET_METHODS`` and ``ABLATIONS``: read from the recipes on each use (:mod:`.presets`)."""
    if name in ("METHODS", "PRESET_METHODS", "ABLATIONS"):
        return getattr(_presets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
