"""Re-ID ranking metrics (CMC, mAP, mINP) under the Market-1501 rule: the definition, as a per-query NumPy loop.

Conventions (peers.md section 10, muva_spec.md section 3.3), shared by both implementations:

* For each query, gallery items with the same pid AND the same camid are removed ("junk");
  a same-pid item from another camera is a true match; everything else (other ids, distractor
  pid 0) is a negative.
* Queries with no true match left are skipped; they count in ``num_queries`` but not in
  ``num_valid_queries`` and all means are over valid queries.
* Ties: the gallery is ranked by a stable sort on distance, so equal distances are ordered by
  gallery index (lower index first). Both implementations follow this rule exactly.
* CMC is the first-hit curve cut at ``max_rank``: ``cmc[r]`` is the fraction of valid queries
  whose first true match sits at 0-based rank <= r. When a query's ranked list is shorter than
  ``max_rank`` its curve stays at 1 past the end (it has a hit inside its list).
* AP is non-interpolated (torchreid / fast-reid / CLIP-ReID): the mean over the true matches of
  the precision at each true match. INP = (number of true matches) / (1-based rank of the last
  true match). mAP and mINP are means over valid queries.
* All values are fractions in [0, 1]; ``rankK`` is ``cmc[K - 1]`` (NaN when ``K > max_rank``).

:mod:`muva_lib.eval.rank` is the fast path that gives the same numbers; both share the input checks
and the result dict defined here.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["REPORTED_RANKS", "NoValidQueryError", "evaluate_rank_reference", "evaluate_features_reference"]

#: CMC ranks reported as ``rank1`` ... ``rank20`` in every result dict.
REPORTED_RANKS: tuple[int, ...] = (1, 5, 10, 20)


class NoValidQueryError(ValueError):
    """No query has a true match left in the gallery after removing same-id same-camera items."""


# ----------------------------------------------------------------------------- inputs and results

def _ids(x: Any, name: str, n: int) -> np.ndarray:
    """An integer id vector of length ``n`` as int64 NumPy (tensors are moved to CPU)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name}: expected a vector of length {n}, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"{name}: expected integer ids, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def _check(distmat: Any, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any, max_rank: int
           ) -> tuple[int, int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    shape = tuple(distmat.shape)
    if len(shape) != 2:
        raise ValueError(f"distmat: expected a [num_query, num_gallery] matrix, got shape {shape}")
    if max_rank < 1:
        raise ValueError(f"max_rank must be >= 1, got {max_rank}")
    nq, ng = shape
    return (nq, ng, _ids(q_pids, "q_pids", nq), _ids(g_pids, "g_pids", ng),
            _ids(q_camids, "q_camids", nq), _ids(g_camids, "g_camids", ng))


def _result(cmc: np.ndarray, mAP: float, mINP: float, num_valid: int, num_queries: int) -> dict[str, Any]:
    """The result dict both implementations return (fractions in [0, 1])."""
    if num_valid == 0:
        raise NoValidQueryError(
            f"none of the {num_queries} queries has a true match in the gallery once same-id "
            "same-camera images are removed; check that query and gallery ids/cameras come from "
            "the same dataset and split")
    cmc = np.asarray(cmc, dtype=np.float64)
    out: dict[str, Any] = {"mAP": float(mAP), "mINP": float(mINP), "cmc": cmc}
    for k in REPORTED_RANKS:
        out[f"rank{k}"] = float(cmc[k - 1]) if k <= cmc.shape[0] else float("nan")
    out["num_valid_queries"] = int(num_valid)
    out["num_queries"] = int(num_queries)
    return out


# ----------------------------------------------------------------------------- reference

def _reference_query(dist_row: np.ndarray, q_pid: int, q_camid: int, g_pids: np.ndarray, g_camids: np.ndarray,
                     max_rank: int) -> tuple[np.ndarray, float, float] | None:
    """CMC curve, AP and INP of one query from its distance row [G]; None when it has no valid match."""
    order = np.argsort(dist_row, kind="stable")  # ties: lower gallery index first
    same_pid = g_pids[order] == q_pid
    junk = same_pid & (g_camids[order] == q_camid)
    hits = same_pid[~junk]  # true matches along the junk-free ranked list
    if not hits.any():
        return None
    cmc = np.ones(max_rank)  # padded with 1 past a short list (the hit is inside it)
    first_curve = np.minimum(hits.cumsum(), 1)[:max_rank]
    cmc[: first_curve.shape[0]] = first_curve
    num_rel = hits.sum()
    precision = hits.cumsum() / np.arange(1, hits.shape[0] + 1)
    last = np.flatnonzero(hits)[-1]
    return cmc, float((precision * hits).sum() / num_rel), float(num_rel / (last + 1))


def _reference_result(per_query: list[tuple[np.ndarray, float, float] | None], max_rank: int) -> dict[str, Any]:
    valid = [r for r in per_query if r is not None]
    if not valid:
        return _result(np.zeros(max_rank), 0.0, 0.0, 0, len(per_query))
    return _result(np.mean([r[0] for r in valid], axis=0), np.mean([r[1] for r in valid]),
                   np.mean([r[2] for r in valid]), len(valid), len(per_query))


def evaluate_rank_reference(distmat: Any, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any,
                            max_rank: int = 50) -> dict[str, Any]:
    """The plain per-query NumPy loop that defines the metrics (see the module docstring).

    distmat: [Q, G] (NumPy or torch, smaller = more similar); pids/camids: [Q] and [G] ints.
    Returns {"mAP", "mINP", "cmc" [max_rank], "rank1", "rank5", "rank10", "rank20",
    "num_valid_queries", "num_queries"}.
    """
    nq, _, q_pids, g_pids, q_camids, g_camids = _check(distmat, q_pids, g_pids, q_camids, g_camids, max_rank)
    if isinstance(distmat, torch.Tensor):
        distmat = distmat.detach().cpu()
        distmat = (distmat.float() if distmat.dtype == torch.bfloat16 else distmat).numpy()  # NumPy has no bfloat16
    distmat = np.asarray(distmat)
    if np.isnan(distmat).any():
        raise ValueError("distmat contains NaN")
    return _reference_result([_reference_query(distmat[i], q_pids[i], q_camids[i], g_pids, g_camids, max_rank)
                              for i in range(nq)], max_rank)


def evaluate_features_reference(qf: Any, gf: Any, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any,
                                max_rank: int = 50) -> dict[str, Any]:
    """The straightforward per-query NumPy evaluator, features in: the baseline of ``bench eval``.

    qf [Q, D], gf [G, D] are L2-normalised, then for each query its squared Euclidean distance row
    to the whole gallery is computed with NumPy (``|g|^2 - 2 g.q + |q|^2``) and ranked as in
    :func:`evaluate_rank_reference`. Same result dict; memory O(G x D).
    """
    q = np.asarray(qf.detach().cpu() if isinstance(qf, torch.Tensor) else qf, dtype=np.float32)
    g = np.asarray(gf.detach().cpu() if isinstance(gf, torch.Tensor) else gf, dtype=np.float32)
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
    g = g / np.maximum(np.linalg.norm(g, axis=1, keepdims=True), 1e-12)
    nq, ng = q.shape[0], g.shape[0]
    q_pids, g_pids = _ids(q_pids, "q_pids", nq), _ids(g_pids, "g_pids", ng)
    q_camids, g_camids = _ids(q_camids, "q_camids", nq), _ids(g_camids, "g_camids", ng)
    g_sq = (g * g).sum(axis=1)
    per_query = []
    for i in range(nq):
        row = g_sq - 2.0 * (g @ q[i]) + float(q[i] @ q[i])
        per_query.append(_reference_query(row, q_pids[i], q_camids[i], g_pids, g_camids, max_rank))
    return _reference_result(per_query, max_rank)
