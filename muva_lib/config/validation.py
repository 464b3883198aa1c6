"""Checking a whole config before any work: every field against its :data:`FIELD_RULES` rule, then the
rules over several fields (:data:`CROSS_RULES`)."""
from __future__ import annotations

from typing import Callable

from .rules import FIELD_RULES
from .schema import ConfigError, RunCfg, _get, config_keys

__all__ = ["CROSS_RULES", "validation_errors", "validate"]


def _divides(a: str, b: str) -> Callable[[RunCfg], str | None]:
    def check(cfg: RunCfg) -> str | None:
        x, y = _get(cfg, a), _get(cfg, b)
        return None if x % y == 0 else f"{a}={x} must be a multiple of {b}={y} (whole identities of {y} images a batch)"
    return check


def _stage1_pk(cfg: RunCfg) -> str | None:
    if cfg.stage1.loss != "cluster_nce" or cfg.stage1.batch_size % cfg.data.num_instances == 0:
        return None
    return (f"stage1.batch_size={cfg.stage1.batch_size} must be a multiple of data.num_instances="
            f"{cfg.data.num_instances} with stage1.loss=cluster_nce (PK batches of labels)")


def _le(a: str, b: str, why: str) -> Callable[[RunCfg], str | None]:
    def check(cfg: RunCfg) -> str | None:
        x, y = _get(cfg, a), _get(cfg, b)
        return None if x <= y else f"{a}={x!r} must be <= {b}={y!r} ({why})"
    return check


def _fusion_grid(cfg: RunCfg) -> str | None:
    s, d = cfg.stage2.fusion_stride, cfg.data
    if cfg.stage2.w_fusion <= 0 or (d.height % s == 0 and d.width % s == 0):
        return None
    return (f"stage2.fusion_stride={s} must divide data.height={d.height} and data.width={d.width} "
            f"when stage2.w_fusion > 0")


_STAGE2_WEIGHTS = ("stage2.w_id", "stage2.w_memory", "stage2.w_i2t", "stage2.w_mask", "stage2.w_triplet",
                   "stage2.w_fusion")


#: Rules over several fields: (the keys they read, a check returning a message or None). A cross rule is
#: skipped when one of its keys already broke its own rule.
CROSS_RULES: list[tuple[tuple[str, ...], Callable[[RunCfg], str | None]]] = [
    (("stage2.w_mask", "model.num_parts"),
     lambda c: None if not c.stage2.w_mask or c.model.num_parts else
     f"stage2.w_mask={c.stage2.w_mask} needs part tokens (model.num_parts > 0; it is 0): set stage2.w_mask=0"),
    (_STAGE2_WEIGHTS,
     lambda c: None if any(_get(c, k) > 0 for k in _STAGE2_WEIGHTS) else
     f"stage2 has no loss term: one of {', '.join(_STAGE2_WEIGHTS)} must be > 0"),
    (("data.batch_size", "data.num_instances"), _divides("data.batch_size", "data.num_instances")),
    (("stage1.batch_size", "data.num_instances", "stage1.loss"), _stage1_pk),
    (("stage1.warmup_epochs", "stage1.epochs"),
     _le("stage1.warmup_epochs", "stage1.epochs", "a warm-up longer than stage 1 never reaches stage1.lr")),
    (("stage1.min_lr", "stage1.lr"), _le("stage1.min_lr", "stage1.lr", "the cosine decays from lr to min_lr")),
    (("eval.ranks", "eval.max_rank"),
     lambda c: None if not c.eval.ranks or max(c.eval.ranks) <= c.eval.max_rank else
     f"eval.ranks={list(c.eval.ranks)} must not go past eval.max_rank={c.eval.max_rank} (the CMC is cut there)"),
    (("stage2.fusion_stride", "data.height", "data.width", "stage2.w_fusion"), _fusion_grid),
]


def validation_errors(cfg: RunCfg) -> list[str]:
    """One line per value that breaks its :data:`FIELD_RULES` rule or a :data:`CROSS_RULES` rule."""
    errors, bad = [], set()
    for key in config_keys():
        if key not in FIELD_RULES:
            errors.append(f"{key}: no validation rule (add one to muva_lib.config.FIELD_RULES)")
            continue
        value, rule = _get(cfg, key), FIELD_RULES[key]
        if not rule.check(value):
            hint = rule.hint(value) if rule.hint is not None else ""
            shown = list(value) if isinstance(value, tuple) else value
            errors.append(f"{key}={shown!r}: expected {rule.describe()}" + (f"; {hint}" if hint else ""))
            bad.add(key)
    for keys, check in CROSS_RULES:
        if not bad.intersection(keys):
            message = check(cfg)
            if message:
                errors.append(message)
    return errors


def validate(cfg: RunCfg) -> RunCfg:
    """Check every value of ``cfg`` (:func:`validation_errors`) before any work; ConfigError naming each
    bad key, its value and what is allowed, all in one message. Returns ``cfg``."""
    errors = validation_errors(cfg)
    if len(errors) == 1:
        raise ConfigError(f"invalid config value: {errors[0]}")
    if errors:
        raise ConfigError(f"{len(errors)} invalid config values:\n  " + "\n  ".join(errors))
    return cfg
