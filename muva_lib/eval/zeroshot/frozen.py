"""Re-ID with a frozen CLIP image encoder (no re-ID training): the zero-shot row beside the colour baselines."""
from __future__ import annotations

from typing import Any, Sequence

import torch

from ...config import DataCfg, EvalCfg
from ...data.types import Item
from ...utils import resolve_device
from ..evaluator import evaluate_features
from .encoder import encode_images, load_zeroshot_model

__all__ = ["rank_features", "frozen_encoder_metrics"]


def rank_features(q_feats: torch.Tensor, g_feats: torch.Tensor, query: Sequence[Item], gallery: Sequence[Item], *,
                  device: torch.device | str = "cpu") -> dict[str, Any]:
    """Frozen features ranked by the workbench's evaluator: query [Q, d] against gallery [G, d] by cosine, the
    same-identity same-camera images left out (Market rule); the metrics of :func:`evaluate_features`."""
    return evaluate_features(q_feats, g_feats, [it.pid for it in query], [it.pid for it in gallery],
                             [it.camid for it in query], [it.camid for it in gallery], cfg=EvalCfg(), device=device)


def frozen_encoder_metrics(query: Sequence[Item], gallery: Sequence[Item], *, weights: str = "synth",
                           arch: str = "muva-tiny", image_size: tuple[int, int] = (128, 64), device: torch.device | str = "auto",
                           seed: int = 0, batch_size: int = 128) -> dict[str, float]:
    """The CLIP's pooled image features of ``query`` and ``gallery`` ranked by cosine with the workbench's
    evaluator (Market rule: same identity and camera is junk); keys as :func:`evaluate_features` (mAP, rank1,
    ..., mINP), fractions. ``weights``: ``synth`` (the shipped pretrained model), ``random`` or a file."""
    dev = resolve_device(str(device))
    model = load_zeroshot_model(weights, arch=arch, image_size=image_size, seed=seed, device=dev)
    feats, _ = encode_images(model, list(query) + list(gallery), DataCfg(height=image_size[0], width=image_size[1],
                                                                          test_batch_size=batch_size))
    return rank_features(feats[:len(query)], feats[len(query):], query, gallery, device=dev)
