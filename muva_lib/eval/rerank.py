"""k-reciprocal re-ranking (Zhong et al., CVPR 2017): the field's implementation by default, vectorised.

Over all N = Q + G images with distances d (query-query, query-gallery, gallery-gallery), the
default variant ``"zhong"`` follows the public implementation that torchreid, fast-reid, CLIP-ReID
and the MUVA tables use, convention for convention:

0. D = d divided by each column's maximum, transposed: row p of D is column p of d over its
   maximum (d symmetric: row p over its maximum). D replaces d everywhere below, in float32.
1. N(p, k): the k + 1 nearest images of p by D[p], p itself included, ties by index (stable).
2. R(p, k) = {g in N(p, k) : p in N(g, k)} (k-reciprocal neighbours).
3. R*(p, k1) = R(p, k1) united with R(q, k') for every q in R(p, k1) with
   |R(p, k1) & R(q, k')| > 2/3 |R(q, k')| (strict, evaluated in float64), k' = round(k1 / 2)
   rounded half to even (NumPy's ``around``: 5 / 2 -> 2, 7 / 2 -> 4).
4. V[p, g] = exp(-D[p, g]) / sum over R*(p) of exp(-D[p, .]) for g in R*(p, k1), else 0.
5. Local query expansion (when k2 != 1), every row, gallery rows too:
   V[p] <- mean of V[g] over the k2 nearest images g of p (p included).
6. Jaccard distance, for query rows only: d_J(p, g) = 1 - m / (2 - m), m = sum_j min(V[p, j], V[g, j])
   (V's rows sum to one, so 2 - m is the sum of the maxima).
7. Final distance = (1 - lambda) d_J + lambda D, query rows and gallery columns.

The variant ``"paper"`` is the paper's definition as written, which the workbench used before:
d as given (no column normalisation: ``lambda_value=1`` returns d exactly), V unnormalised
(exp(-d) on R*), the Jaccard distance 1 - sum min / sum max, k' = ceil(k1 / 2) and the expansion
test ``>=``. Its kernel assumes distances on the scale of L2-normalised features (squared
Euclidean in [0, 4]). On the same distances it gives other numbers than every paper's tables (see
``python -m muva_lib.bench rerank``); it is kept for comparison, off by default.

Both use a stable tie rule everywhere (the public code's quicksort breaks exact ties arbitrarily)
and take squared Euclidean distances as given: the public ``re_ranking(q_g, q_q, g_g)`` copies
that square their input expect plain Euclidean distances, the feature-based ones (CLIP-ReID,
Zhong's ``re_ranking_feature``) compute squared Euclidean themselves, which is what this takes.
:func:`re_ranking_reference` is the plain per-image loop of the default variant, kept as the
definition and the speed baseline.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = ["RERANK_MAX_N", "RERANK_VARIANTS", "RerankTooLargeError", "rerank_memory_bytes", "check_rerank_size",
           "expansion_k", "column_normalised", "re_ranking", "re_ranking_full",
           "re_ranking_reference"]

#: ``zhong``: the public implementation's conventions (default); ``paper``: the paper as written.
RERANK_VARIANTS: tuple[str, ...] = ("zhong", "paper")

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


def _numpy_knn(dist: np.ndarray, k: int, block: int = 1024) -> np.ndarray:
    """The first k columns of ``np.argsort(dist, axis=1)`` (NumPy's default sort) [N, k], without sorting
    every row: a row whose k + 1 smallest values are all distinct has only one order of its k nearest,
    so only rows with a tied value there are sorted in full, to get NumPy's order of the ties."""
    n, m = dist.shape
    if k >= m:
        return np.argsort(dist, axis=1)[:, :k].astype(np.int64)
    out = np.empty((n, k), dtype=np.int64)
    for s in range(0, n, block):
        rows = dist[s:s + block]
        part = np.argpartition(rows, k, axis=1)[:, :k + 1]  # the k + 1 smallest, unordered
        vals = np.take_along_axis(rows, part, 1)
        order = np.argsort(vals, axis=1, kind="stable")
        vals, part = np.take_along_axis(vals, order, 1), np.take_along_axis(part, order, 1)
        out[s:s + rows.shape[0]] = part[:, :k]
        for r in np.flatnonzero((np.diff(vals, axis=1) == 0).any(axis=1)):
            out[s + r] = np.argsort(rows[r])[:k]
    return out


def _membership(nn: np.ndarray, n: int) -> sp.csr_matrix:
    """Sparse 0/1 [N, N] with row p marking the images listed in nn[p]."""
    rows = np.repeat(np.arange(nn.shape[0]), nn.shape[1])
    return sp.csr_matrix((np.ones(nn.size), (rows, nn.ravel())), shape=(n, n))


def _reciprocal(nn: np.ndarray, n: int) -> sp.csr_matrix:
    """R(p, k) as a sparse 0/1 [N, N]: g in N(p, k) and p in N(g, k)."""
    m = _membership(nn, n)
    return m.multiply(m.T).tocsr()


def expansion_k(k1: int, variant: str = "zhong") -> int:
    """k' of step 3: round(k1 / 2) half to even (``zhong``: NumPy's around) or ceil(k1 / 2) (``paper``)."""
    return int(np.around(k1 / 2.0)) if variant == "zhong" else (k1 + 1) // 2


def _expanded(r: sp.csr_matrix, r_half: sp.csr_matrix, strict: bool = True) -> sp.csr_matrix:
    """R*(p, k) as a sparse 0/1 [N, N] (step 3 of the module docstring).

    A candidate q in R(p, k) adds R(q, k') when |R(p, k) & R(q, k')| > 2/3 |R(q, k')| (``strict``,
    compared in float64 as the public code does) or >= (the paper's "at least two thirds").
    """
    overlap = (r @ r_half.T).multiply(r).tocoo()  # (p, q): |R(p, k) & R(q, k')| for q in R(p, k)
    half_size = np.asarray(r_half.getnnz(axis=1))
    if strict:
        ok = overlap.data > (2.0 / 3.0) * half_size[overlap.col]
    else:
        ok = 3 * overlap.data >= 2 * half_size[overlap.col]
    chosen = sp.csr_matrix((np.ones(int(ok.sum())), (overlap.row[ok], overlap.col[ok])), shape=r.shape)
    star = (r + chosen @ r_half).tocsr()
    star.data[:] = 1.0
    return star


def _min_sums(vq: sp.csr_matrix, vg: sp.csr_matrix) -> np.ndarray:
    """sum_j min(vq[p, j], vg[g, j]) for rows of vq [Q, N] and vg [G, N] -> [Q, G] float64."""
    vq_c, vg_c = vq.tocsc(), vg.tocsc()
    min_sum = np.zeros((vq.shape[0], vg.shape[0]))
    for j in range(vq.shape[1]):  # inverted index: only images sharing column j interact
        qa, qb = vq_c.indptr[j], vq_c.indptr[j + 1]
        ga, gb = vg_c.indptr[j], vg_c.indptr[j + 1]
        if qa == qb or ga == gb:
            continue
        qi, gi = vq_c.indices[qa:qb], vg_c.indices[ga:gb]
        min_sum[np.ix_(qi, gi)] += np.minimum.outer(vq_c.data[qa:qb], vg_c.data[ga:gb])
    return min_sum


def _jaccard(vq: sp.csr_matrix, vg: sp.csr_matrix) -> np.ndarray:
    """1 - sum min / sum max between rows of vq [Q, N] and vg [G, N] -> [Q, G] float64."""
    min_sum = _min_sums(vq, vg)
    max_sum = np.add.outer(np.asarray(vq.sum(1)).ravel(), np.asarray(vg.sum(1)).ravel())
    max_sum -= min_sum  # sum max(a, b) = sum a + sum b - sum min(a, b)
    np.divide(min_sum, max_sum, out=min_sum, where=max_sum > 0)  # min_sum is 0 where max_sum is
    return np.subtract(1.0, min_sum, out=min_sum)


def re_ranking(q_g_dist: Any, q_q_dist: Any, g_g_dist: Any, k1: int = 20, k2: int = 6,
               lambda_value: float = 0.3, *, variant: str = "zhong", max_n: int = RERANK_MAX_N) -> np.ndarray:
    """Re-ranked query-gallery distance [Q, G] from q_g_dist [Q, G], q_q_dist [Q, Q], g_g_dist [G, G].

    Distances as given (squared Euclidean for the field's numbers; see the module docstring).
    ``variant``: ``zhong`` (default, returns float32 like the public code) or ``paper`` (returns
    q_g_dist's float dtype). Deterministic. Raises :class:`RerankTooLargeError` when Q + G > max_n,
    before allocating anything large.
    """
    qg, qq, gg = (np.asarray(x) for x in (q_g_dist, q_q_dist, g_g_dist))
    if qg.ndim != 2 or qq.shape != (qg.shape[0],) * 2 or gg.shape != (qg.shape[1],) * 2:
        raise ValueError(f"expected q_g [Q, G], q_q [Q, Q], g_g [G, G]; got {qg.shape}, {qq.shape}, {gg.shape}")
    nq, ng = qg.shape
    check_rerank_size(nq, ng, max_n)
    dist = np.empty((nq + ng,) * 2, dtype=np.result_type(qg, qq, gg, np.float32))
    dist[:nq, :nq], dist[:nq, nq:], dist[nq:, :nq], dist[nq:, nq:] = qq, qg, qg.T, gg
    out = re_ranking_full(dist, nq, k1, k2, lambda_value, variant=variant, max_n=max_n)
    if variant == "paper":
        return out.astype(qg.dtype if np.issubdtype(qg.dtype, np.floating) else np.float64, copy=False)
    return out


def _checked(dist: Any, num_query: int, k1: int, k2: int, lambda_value: float, *, variant: str, max_n: int
             ) -> np.ndarray:
    """dist as a float NumPy [N, N] after every argument check (shape, k1, k2, lambda, variant, size, NaN)."""
    dist = np.asarray(dist)
    n, nq = dist.shape[0] if dist.ndim else 0, num_query
    if dist.ndim != 2 or dist.shape[1] != n or not 0 <= nq <= n:
        raise ValueError(f"expected a square [N, N] matrix with N >= num_query={nq}, got {dist.shape}")
    if k1 < 1 or k2 < 1 or not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"need k1 >= 1, k2 >= 1 and 0 <= lambda <= 1; got {k1}, {k2}, {lambda_value}")
    if variant not in RERANK_VARIANTS:
        raise ValueError(f"unknown re-ranking variant {variant!r}; choose one of {', '.join(RERANK_VARIANTS)}")
    check_rerank_size(nq, n - nq, max_n)
    if not np.issubdtype(dist.dtype, np.floating):
        dist = dist.astype(np.float64)
    if np.isnan(dist).any():
        raise ValueError("re_ranking: distances contain NaN")
    return dist


def column_normalised(dist: np.ndarray) -> np.ndarray:
    """Step 0 of the default variant: float32 [N, N] whose row p is dist[:, p] / max(dist[:, p]).

    An all-zero column (identical images only) is left at zero instead of dividing by zero.
    """
    d = dist.astype(np.float32, copy=False)
    top = d.max(axis=0)
    return np.ascontiguousarray((d / np.where(top > 0, top, np.float32(1.0))).T)


def re_ranking_full(dist: Any, num_query: int, k1: int = 20, k2: int = 6, lambda_value: float = 0.3, *,
                    variant: str = "zhong", max_n: int = RERANK_MAX_N) -> np.ndarray:
    """Re-ranked query-gallery distance [Q, G] from all-pairs distances [N, N], queries first (N = Q + G).

    Same as :func:`re_ranking` without assembling the big matrix a second time. ``zhong`` returns
    float32, ``paper`` dist's float dtype.
    """
    dist = _checked(dist, num_query, k1, k2, lambda_value, variant=variant, max_n=max_n)
    n, nq = dist.shape[0], num_query
    zhong = variant == "zhong"
    d = column_normalised(dist) if zhong else dist
    k_big, k_half = min(k1 + 1, n), min(expansion_k(k1, variant) + 1, n)  # self included
    nn = (_numpy_knn if zhong else _stable_knn)(d, max(k_big, min(k2, n)))
    star = _expanded(_reciprocal(nn[:, :k_big], n), _reciprocal(nn[:, :k_half], n), strict=zhong).tocoo()
    weight = np.exp(-d[star.row, star.col].astype(np.float64))
    if zhong:  # each row of V sums to one
        weight /= np.bincount(star.row, weights=weight, minlength=n)[star.row]
    v = sp.csr_matrix((weight, (star.row, star.col)), shape=(n, n))
    if k2 > 1:  # local query expansion over the k2 nearest images (p itself included), every row
        v = (_membership(nn[:, :min(k2, n)], n) / min(k2, n)) @ v
    v = sp.csr_matrix(v)
    if zhong:
        final = _min_sums(v[:nq], v[nq:])
        final = np.subtract(1.0, final / (2.0 - final))
    else:
        final = _jaccard(v[:nq], v[nq:])
    final *= 1.0 - lambda_value
    final += lambda_value * d[:nq, nq:].astype(np.float64)
    if zhong:
        return final.astype(np.float32)
    return final.astype(dist.dtype, copy=False)


def re_ranking_reference(dist: Any, num_query: int, k1: int = 20, k2: int = 6, lambda_value: float = 0.3, *,
                         max_n: int = RERANK_MAX_N) -> np.ndarray:
    """The default variant as a plain loop over images with a dense float32 V [N, N]: the definition
    :func:`re_ranking_full` is tested against and the baseline of ``python -m muva_lib.bench rerank``.

    dist: [N, N], queries first; returns [Q, G] float32. O(N^2) memory and Python loops: slow.
    """
    dist = _checked(dist, num_query, k1, k2, lambda_value, variant="zhong", max_n=max_n)
    n, nq = dist.shape[0], num_query
    d = column_normalised(dist)
    ranked = np.argsort(d, axis=1)
    k_half = expansion_k(k1)

    def reciprocal(p: int, k: int) -> np.ndarray:
        forward = ranked[p, :k + 1]
        return forward[(ranked[forward, :k + 1] == p).any(axis=1)]

    v = np.zeros((n, n), dtype=np.float32)
    for p in range(n):
        r_p = reciprocal(p, k1)
        star = [r_p]
        for q in r_p:
            r_q = reciprocal(int(q), k_half)
            if len(np.intersect1d(r_q, r_p)) > 2.0 / 3.0 * len(r_q):
                star.append(r_q)
        cols = np.unique(np.concatenate(star))
        w = np.exp(-d[p, cols])
        v[p, cols] = w / w.sum()
    if k2 != 1:
        v = np.stack([v[ranked[p, :k2]].mean(axis=0) for p in range(n)])
    jaccard = np.empty((nq, n - nq), dtype=np.float32)
    for p in range(nq):
        m = np.minimum(v[p], v[nq:]).sum(axis=1)
        jaccard[p] = 1.0 - m / (2.0 - m)
    return (jaccard * (1.0 - lambda_value) + d[:nq, nq:] * lambda_value).astype(np.float32)
