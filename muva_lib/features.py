"""Batched, gradient-free feature extraction from a test loader, with optional flip averaging.

The feature stage: evaluation (:mod:`muva_lib.eval.evaluator`) and the notebooks' retrieval probe
(:func:`muva_lib.analysis.retrieval_probe`) extract test features here. The training passes
(stage-1 cache, stage-2 memory, pi-VL patch cache) still run ``train.setup.feature_pass``, which
adds masks, AMP and DDP gathering; it is to move here once ``train/`` is reorganised per method.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch
from tqdm.auto import tqdm

__all__ = ["extract_features"]


@torch.no_grad()
def extract_features(encode: Callable[[torch.Tensor], torch.Tensor], loader: Iterable[Mapping[str, Any]],
                     device: torch.device | str, *, flip: bool = False, progress: bool = True,
                     desc: str = "features") -> dict[str, Any]:
    """Run ``encode`` (Tensor[B, 3, H, W] -> Tensor[B, D]) over every batch of ``loader``.

    Batches are dicts with ``img`` [B, 3, H, W], ``pid``, ``camid``, ``key`` (see
    ``muva_lib.batches.loaders``); each image batch is moved to ``device``. With ``flip`` the feature
    is the mean of the image's and its horizontal mirror's. The caller puts the model in eval mode
    and chooses any AMP context. Returns {"feats": float32 [N, D] on CPU, "pids": int64 [N],
    "camids": int64 [N] (NumPy), "keys": list of N str}, in loader order.
    """
    feats: list[torch.Tensor] = []
    pids: list[np.ndarray] = []
    camids: list[np.ndarray] = []
    keys: list[str] = []
    for batch in tqdm(loader, desc=desc, disable=not progress, leave=False):
        img = batch["img"].to(device, non_blocking=True)
        out = encode(img)
        if flip:
            out = (out + encode(torch.flip(img, dims=[3]))) / 2
        if out.ndim != 2 or out.shape[0] != img.shape[0]:
            raise ValueError(f"encode returned shape {tuple(out.shape)} for a batch of {img.shape[0]} "
                             "images; expected [B, D]")
        feats.append(out.float().cpu())
        pids.append(np.asarray(batch["pid"], dtype=np.int64))
        camids.append(np.asarray(batch["camid"], dtype=np.int64))
        keys.extend(batch["key"])
    if not feats:
        raise ValueError(f"{desc}: the loader yielded no batches")
    return {"feats": torch.cat(feats), "pids": np.concatenate(pids), "camids": np.concatenate(camids),
            "keys": keys}
