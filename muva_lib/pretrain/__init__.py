"""Contrastive image-caption pretraining of the workbench's tiny CLIP on the synthetic corpus, and shipping it."""
from __future__ import annotations

from .cfg import LOSSES, PRESETS, PretrainCfg, apply_overrides, cfg_from_dict, preset
from .loop import LOG_FIELDS, default_run_dir, pretrain, read_log, read_summary, train_step
from .model import build_model, init_token_table, make_loss, param_groups
from .pairs import PairData, load_pairs, make_batch, plan_batch

__all__ = ["LOSSES", "PRESETS", "PretrainCfg", "apply_overrides", "cfg_from_dict", "preset", "LOG_FIELDS",
           "default_run_dir", "pretrain", "read_log", "read_summary", "train_step", "build_model",
           "init_token_table", "make_loss", "param_groups", "PairData", "load_pairs", "make_batch", "plan_batch"]
