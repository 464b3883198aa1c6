"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), written from the paper's equations; needs all (Q+G)^2 distances.

Over all N = Q + G images with original distance d (query-query, query-gallery, gallery-gallery):

1. N(p, k): the k + 1 nearest images of p by d, p itself included, ties by index (stable).
2. R(p, k) = {g in N(p, k) : p in N(g, k)} (k-reciprocal neighbours).
3. R*(p, k) = R(p, k) united with R(q, k') for every q in R(p, k) with
   |R(p, k) & R(q, k')| >= 2/3 |R(q, k')|, where k' = ceil(k / 2).
4. V[p, g] = exp(-d(p, g)) for g in R*(p, k1), else 0 (the Gaussian-kernel encoding).
5. Local query expansion: V[p] <- mean of V[g] over the k2 nearest images g of p (p included).
6. Jaccard distance d_J(p, g) = 1 - sum_j min(V[p, j], V[g, j]) / sum_j max(V[p, j], V[g, j]).
7. Final distance = (1 - lambda) d_J + lambda d, for query rows and gallery columns.

Following the paper rather than the widely copied reference code, d is used as given (no division
by column maxima, no normalisation of V rows), so ``lambda_value=1`` returns the original distance
exactly; numbers therefore differ from torchreid's / fast-reid's ``re_ranking``. The kernel exp(-d)
assumes distances on the scale of L2-normalised features (squared Euclidean in [0, 4]).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["RERANK_MAX_N", "RerankTooLargeError", "rerank_memory_bytes", "check_rerank_size", "re_ranking",
           "re_ranking_full"]

#: Largest Q + G accepted by default: the (Q+G)^2 float32 matrix is then about 2.3 GiB.
RERANK_MAX_N = 25_000


class RerankTooLargeError(ValueError):
    """Re-ranking was asked for a problem whose full (Q+G)^2 distance matrix exceeds the size limit."""


def rerank_memory_bytes(num_query: int, num_gallery: int) -> int:
    """Rough peak memory of :func:`re_ranking`: the (Q+G)^2 float32 matrix plus two Q x G float64 ones."""
    n = num_query + num_gallery
    return 4 * n * n + 2 * 8 * num_query * num_gallery


def check_rerank_size(num_query: int, num_gallery: int, max_n: int = RERANK_MAX_N) -> None:
    """Raise :class:`RerankTooLargeError`, with the memory it would need, when Q + G > max_n."""
    n = num_query + num_gallery
    if n > max_n:
        need = rerank_memory_bytes(num_query, num_gallery) / 2**30
        raise RerankTooLargeError(
            f"re-ranking {num_query} queries x {num_gallery} gallery images needs the full "
            f"(Q+G)^2 = {n}^2 distance matrix, about {need:.1f} GiB with its Q x G work arrays; "
            f"Q + G = {n} is above max_n = {max_n}. Evaluate without re-ranking, re-rank a subset, "
            "or raise max_n (rerank_max_n) on a machine with that much memory.")


def _stable_knn(dist: np.ndarray, k: int, block: int = 1024) -> np.ndarray:
    """Indices [N, k] of the k smallest entries of each row of dist [N, M], by (distance, index)."""
    out = np.empty((dist.shape[0], k), dtype=np.int64)
    for s in range(0, dist.shape[0], block):
        rows = dist[s:s + block]
        kth = np.partition(rows, k - 1, axis=1)[:, k - 1:k]  # k-th smallest value per row
        less = rows < kth
        tied = rows == kth
        need = k - less.sum(1, keepdims=True)  # how many tied entries to take, lowest index first
        take = less | (tied & (np.cumsum(tied, axis=1) <= need))
        cols = np.nonzero(take)[1].reshape(-1, k)  # exactly k per row, ascending index
        order = np.argsort(np.take_along_axis(rows, cols, 1), axis=1, kind="stable")
        out[s:s + rows.shape[0]] = np.take_along_axis(cols, order, 1)
    return out


def _membership(nn: np.ndarray, n: int) -> sp.csr_matrix:
    """Sparse 0/1 [N, N] with row p marking the images listed in nn[p]."""
    rows = np.repeat(np.arange(nn.shape[0]), nn.shape[1])
    return sp.csr_matrix((np.ones(nn.size), (rows, nn.ravel())), shape=(n, n))


def _reciprocal(nn: np.ndarray, n: int) -> sp.csr_matrix:
    """R(p, k) as a sparse 0/1 [N, N]: g in N(p, k) and p in N(g, k)."""
    m = _membership(nn, n)
    return m.multiply(m.T).tocsr()


def _expanded(r: sp.csr_matrix, r_half: sp.csr_matrix) -> sp.csr_matrix:
    """R*(p, k) as a sparse 0/1 [N, N] (step 3 of the module docstring)."""
    overlap = (r @ r_half.T).multiply(r).tocoo()  # (p, q): |R(p, k) & R(q, k')| for q in R(p, k)
    half_size = np.asarray(r_half.getnnz(axis=1))
    ok = 3 * overlap.data >= 2 * half_size[overlap.col]
    chosen = sp.csr_matrix((np.ones(int(ok.sum())), (overlap.row[ok], overlap.col[ok])), shape=r.shape)
    star = (r + chosen @ r_half).tocsr()
    star.data[:] = 1.0
    return star


def _jaccard(vq: sp.csr_matrix, vg: sp.csr_matrix) -> np.ndarray:
    """1 - sum min / sum max between rows of vq [Q, N] and vg [G, N] -> [Q, G] float64."""
    vq_c, vg_c = vq.tocsc(), vg.tocsc()
    min_sum = np.zeros((vq.shape[0], vg.shape[0]))
    for j in range(vq.shape[1]):  # inverted index: only images sharing column j interact
        qa, qb = vq_c.indptr[j], vq_c.indptr[j + 1]
        ga, gb = vg_c.indptr[j], vg_c.indptr[j + 1]
        if qa == qb or ga == gb:
            continue
        qi, gi = vq_c.indices[qa:qb], vg_c.indices[ga:gb]
        min_sum[np.ix_(qi, gi)] += np.minimum.outer(vq_c.data[qa:qb], vg_c.data[ga:gb])
    max_sum = np.add.outer(np.asarray(vq.sum(1)).ravel(), np.asarray(vg.sum(1)).ravel())
    max_sum -= min_sum  # sum max(a, b) = sum a + sum b - sum min(a, b)
    np.divide(min_sum, max_sum, out=min_sum, where=max_sum > 0)  # min_sum is 0 where max_sum is
    return np.subtract(1.0, min_sum, out=min_sum)


def re_ranking(q_g_dist: Any, q_q_dist: Any, g_g_dist: Any, k1: int = 20, k2: int = 6,
               lambda_value: float = 0.3, *, max_n: int = RERANK_MAX_N) -> np.ndarray:
    """Re-ranked query-gallery distance [Q, G] from q_g_dist [Q, G], q_q_dist [Q, Q], g_g_dist [G, G].

    Deterministic (stable tie rule everywhere); returned in q_g_dist's float dtype. Raises
    :class:`RerankTooLargeError` when Q + G > max_n, before allocating anything large.
    """
    qg, qq, gg = (np.asarray(x) for x in (q_g_dist, q_q_dist, g_g_dist))
    if qg.ndim != 2 or qq.shape != (qg.shape[0],) * 2 or gg.shape != (qg.shape[1],) * 2:
        raise ValueError(f"expected q_g [Q, G], q_q [Q, Q], g_g [G, G]; got {qg.shape}, {qq.shape}, {gg.shape}")
    nq, ng = qg.shape
    check_rerank_size(nq, ng, max_n)
    dist = np.empty((nq + ng,) * 2, dtype=np.result_type(qg, qq, gg, np.float32))
    dist[:nq, :nq], dist[:nq, nq:], dist[nq:, :nq], dist[nq:, nq:] = qq, qg, qg.T, gg
    out = re_ranking_full(dist, nq, k1, k2, lambda_value, max_n=max_n)
    return out.astype(qg.dtype if np.issubdtype(qg.dtype, np.floating) else np.float64, copy=False)


def re_ranking_full(dist: Any, num_query: int, k1: int = 20, k2: int = 6, lambda_value: float = 0.3, *,
                    max_n: int = RERANK_MAX_N) -> np.ndarray:
    """Re-ranked query-gallery distance [Q, G] from all-pairs distances [N, N], queries first (N = Q + G).

    Same as :func:`re_ranking` without assembling the big matrix a second time; returned in its dtype.
    """
    dist = np.asarray(dist)
    n, nq = dist.shape[0], num_query
    if dist.ndim != 2 or dist.shape[1] != n or not 0 <= nq <= n:
        raise ValueError(f"expected a square [N, N] matrix with N >= num_query={nq}, got {dist.shape}")
    if k1 < 1 or k2 < 1 or not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"need k1 >= 1, k2 >= 1 and 0 <= lambda <= 1; got {k1}, {k2}, {lambda_value}")
    check_rerank_size(nq, n - nq, max_n)
    if np.isnan(dist).any():
        raise ValueError("re_ranking: distances contain NaN")
    k_big, k_half = min(k1 + 1, n), min((k1 + 1) // 2 + 1, n)  # k + 1 and ceil(k/2) + 1, self included
    nn = _stable_knn(dist, max(k_big, min(k2, n)))
    star = _expanded(_reciprocal(nn[:, :k_big], n), _reciprocal(nn[:, :k_half], n)).tocoo()
    v = sp.csr_matrix((np.exp(-dist[star.row, star.col].astype(np.float64)), (star.row, star.col)),
                      shape=(n, n))
    if k2 > 1:  # local query expansion over the k2 nearest images (p itself included)
        v = (_membership(nn[:, :min(k2, n)], n) / min(k2, n)) @ v
    v = sp.csr_matrix(v)
    final = _jaccard(v[:nq], v[nq:])
    final *= 1.0 - lambda_value
    final += lambda_value * dist[:nq, nq:].astype(np.float64)
    return final.astype(dist.dtype if np.issubdtype(dist.dtype, np.floating) else np.float64, copy=False)
