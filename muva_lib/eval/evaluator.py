"""The chunked evaluator: features in, metrics out, never holding the full Q x G matrix (unless re-ranking)."""
from __future__ import annotations

from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from ..batches.loaders import make_test_loader
from ..config import DataCfg, EvalCfg
from ..data.types import Split
from ..features import extract_features
from .distance import as_features, distance_chunks, pairwise_distance
from .rank import GalleryIndex, accumulate, evaluate_rank
from .rerank import RERANK_MAX_N, check_rerank_size, re_ranking_full

__all__ = ["evaluate_features", "evaluate_split"]


def evaluate_features(qf: Any, gf: Any, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any, *,
                      cfg: EvalCfg | None = None, device: torch.device | str | None = None,
                      progress: bool = False, rerank_max_n: int = RERANK_MAX_N) -> dict[str, Any]:
    """CMC / mAP / mINP of query features qf [Q, D] against gallery features gf [G, D].

    The settings come from the evaluation slice ``cfg`` (default ``EvalCfg()``): distances
    (``metric``, ``feat_norm``: see :func:`~muva_lib.eval.distance.distance_chunks`) are computed on
    ``device`` (default: qf's device, CPU for arrays) ``chunk_size`` queries at a time and ranked
    immediately, so memory stays at O(chunk_size x G) beyond the features. With ``rerank`` the full
    matrices are built for k-reciprocal re-ranking (``rerank_variant``, ``k1``, ``k2``,
    ``lambda_value``, see :mod:`~muva_lib.eval.rerank`; refused above ``rerank_max_n`` = Q + G).
    ``flip`` and the feature choice act before this point. Returns the dict of
    :func:`~muva_lib.eval.rank.evaluate_rank`.
    """
    cfg = cfg if cfg is not None else EvalCfg()
    if device is None:
        device = qf.device if isinstance(qf, torch.Tensor) else torch.device("cpu")
    nq, ng = len(qf), len(gf)
    if len(q_pids) != nq or len(g_pids) != ng:
        raise ValueError(f"{nq} query / {ng} gallery features but {len(q_pids)} / {len(g_pids)} pids")
    chunk_size = cfg.chunk_size
    if cfg.rerank:
        check_rerank_size(nq, ng, rerank_max_n)
        feats = torch.cat([as_features(qf, "qf", device), as_features(gf, "gf", device)])
        dist = pairwise_distance(feats, feats, cfg.metric, cfg.feat_norm, chunk_size=chunk_size,
                                 device=device).numpy()
        dist = re_ranking_full(dist, nq, k1=cfg.k1, k2=cfg.k2, lambda_value=cfg.lambda_value,
                               variant=cfg.rerank_variant, max_n=rerank_max_n)
        return evaluate_rank(dist, q_pids, g_pids, q_camids, g_camids, cfg.max_rank, chunk_size=chunk_size)
    gallery = GalleryIndex.build(g_pids, g_camids, device)
    chunks = distance_chunks(qf, gf, cfg.metric, cfg.feat_norm, chunk_size=chunk_size, device=device)
    chunks = tqdm(chunks, total=-(-nq // chunk_size), desc="rank", disable=not progress, leave=False)
    return accumulate(chunks, q_pids, q_camids, gallery, cfg.max_rank)


def evaluate_split(encode: Callable[[torch.Tensor], torch.Tensor], split: Split, data_cfg: DataCfg,
                   eval_cfg: EvalCfg, device: torch.device | str, *, progress: bool = False
                   ) -> dict[str, Any]:
    """Extract features for ``split.query`` and ``split.gallery`` with ``encode`` and evaluate them.

    ``encode``: Tensor[B, 3, H, W] -> Tensor[B, D] (put the model in eval mode first; AMP, if any,
    is the caller's context). Images follow ``data_cfg`` (test size, mean/std, interpolation,
    batch size, workers); metric, normalisation, flip and re-ranking follow ``eval_cfg``.
    """
    device = torch.device(device)
    feats = {}
    for name, items in (("query", split.query), ("gallery", split.gallery)):
        if not items:
            raise ValueError(f"{split.dataset} split {split.split_index}: the {name} set is empty")
        feats[name] = extract_features(encode, make_test_loader(items, data_cfg, device), device,
                                       flip=eval_cfg.flip, progress=progress, desc=f"{split.dataset} {name}")
    q, g = feats["query"], feats["gallery"]
    return evaluate_features(q["feats"], g["feats"], q["pids"], g["pids"], q["camids"], g["camids"],
                             cfg=eval_cfg, device=device, progress=progress)
