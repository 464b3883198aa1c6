"""The run configs (:mod:`.rules` holds the former ``config.py`` for one commit, so that its history follows
the move; the next commit splits it into modules of one job each)."""
from __future__ import annotations

from typing import Any

from . import rules as _rules
from .rules import (CROSS_RULES, FIELD_RULES, FIELDS_ADDED_LATER, PRESETS, Ablation, ConfigError, DataCfg, EvalCfg,
                    ModelCfg, ParsingCfg, Rule, RunCfg, Stage1Cfg, Stage2Cfg, VgeCfg, __all__, _get, ablation_overrides,
                    apply_overrides, config_hash, config_keys, from_dict, load, parse_overrides, resolve, resolve_layers,
                    resolve_with_sources, save, to_dict, validate, validation_errors, ACTIVATIONS, MASK_LOSSES)


def __getattr__(name: str) -> Any:
    return getattr(_rules, name)
