"""Evaluate a model on a protocol's targets with the method's test feature (callers pass the last epoch)."""
from __future__ import annotations

from typing import Any, Callable, Mapping

import numpy as np
import torch

from ..config import RunCfg, config_hash
from ..data.types import Split
from ..eval import average_results, evaluate_split
from ..models.factory import ReidModel
from ..utils import autocast

__all__ = ["test_encoder", "evaluate_model", "metrics_record", "metrics_rows", "SUMMARY_KEYS"]

#: the numbers a metrics row / table shows (fractions in [0, 1])
SUMMARY_KEYS = ("mAP", "rank1", "rank5", "rank10", "mINP")


def test_encoder(model: ReidModel, cfg: RunCfg, device: torch.device, amp: bool = False
                 ) -> Callable[[torch.Tensor], torch.Tensor]:
    """images [B, 3, H, W] -> test features [B, F] (MUVA: BN(f); CLIP-ReID: concat(cls_hidden, f) before BN,
    as ``cfg.eval.after_bn`` / ``cfg.eval.with_hidden`` say). Puts the model in eval mode."""
    model.eval()

    def encode(images: torch.Tensor) -> torch.Tensor:
        with autocast(device, amp):
            return model.encode_image_for_eval(images, after_bn=cfg.eval.after_bn,
                                               with_hidden=cfg.eval.with_hidden).float()
    return encode


def metrics_record(result: Mapping[str, Any], **extra: Any) -> dict[str, Any]:
    """A JSON-ready copy of an evaluator result (arrays become lists) plus ``extra`` fields."""
    out: dict[str, Any] = {}
    for k, v in result.items():
        out[k] = v.tolist() if isinstance(v, np.ndarray) else (float(v) if isinstance(v, np.floating) else v)
    out.update(extra)
    return out


def evaluate_model(model: ReidModel, targets: Mapping[str, tuple[Split, ...]], cfg: RunCfg,
                   device: torch.device | str, *, amp: bool = False, progress: bool = False
                   ) -> dict[str, dict[str, Any]]:
    """Metrics per target: one split, or the mean (and ``<key>_std``) of several (small-dataset protocols).

    Each value is :func:`metrics_record` of the evaluator's result plus ``target``, ``config_hash``,
    ``feature`` (``bn`` or ``pre-bn``, with ``+cls`` for CLIP-ReID's concatenation), ``num_splits`` and
    ``splits`` (the split indices evaluated)."""
    device = torch.device(device)
    was_training = model.training
    encode = test_encoder(model, cfg, device, amp)
    feature = ("bn" if cfg.eval.after_bn else "pre-bn") + ("+cls" if cfg.eval.with_hidden else "")
    out = {}
    for target, splits in targets.items():
        results = [evaluate_split(encode, s, cfg.data, cfg.eval, device, progress=progress) for s in splits]
        res = results[0] if len(results) == 1 else average_results(results)
        out[target] = metrics_record(res, target=target, config_hash=config_hash(cfg), feature=feature,
                                     num_splits=len(results), splits=[s.split_index for s in splits])
    model.train(was_training)
    return out


def metrics_rows(metrics: Mapping[str, Mapping[str, Any]]) -> list[dict[str, str]]:
    """What ``train`` and ``eval`` print: a row per target with the number of splits evaluated and
    :data:`SUMMARY_KEYS` in percent, ``mean ± std`` over the splits where there are several."""
    from ..utils import fmt_pct

    def value(m: Mapping[str, Any], key: str) -> str:
        std = m.get(f"{key}_std") if m.get("num_splits", 1) > 1 else None
        return fmt_pct(m.get(key)) + ("" if std is None else f" ± {fmt_pct(std)}")
    return [{"target": target, "splits": str(m.get("num_splits", 1)), **{k: value(m, k) for k in SUMMARY_KEYS}}
            for target, m in metrics.items()]
