"""Re-ID ranking metrics, the fast path: the numbers of :mod:`muva_lib.eval.rank_reference` (whose
docstring states the conventions), vectorised in torch.

The fast path never sorts the gallery: for each query it keeps only the gallery items not farther
than its farthest true match (everything beyond cannot change any metric), counts them in a
per-query distance histogram and sorts exactly, by (distance, index), only the few that share a
bin with a true match; that gives the exact rank of every true match. It runs in torch on the
distances' device, a block of query rows at a time, and :func:`accumulate` lets callers feed it
distance chunks that are never assembled into a full matrix (see ``muva_lib.eval.evaluator``).
"""
from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import numpy as np
import torch

from .rank_reference import (REPORTED_RANKS, NoValidQueryError, _check, _ids, _result, evaluate_features_reference,
                             evaluate_rank_reference)

__all__ = [
    "REPORTED_RANKS", "evaluate_rank_reference", "evaluate_features_reference", "evaluate_rank", "RankStats", "GalleryIndex",
    "rank_stats", "accumulate", "NoValidQueryError",
]

#: Distances (query rows x G) handled together in the fast path: large enough to keep the number
#: of torch calls low, small enough to bound its memory to about 50 bytes each in the worst case.
BLOCK_ELEMENTS = 2**22

#: Distance bins per query row used to count candidates instead of sorting them.
HIST_BINS = 4096

#: Above this fraction of candidates in a block, bins are computed densely (no index lists).
DENSE_FRACTION = 0.3

#: torch CPU threads while ranking (0: leave torch's setting). The ranking is a string of short
#: memory-bound torch calls: extra threads gain little there, and on a shared machine each
#: multi-threaded call waits for its thread that landed on a busy core, so every call pays the
#: stall. Distances (one large matrix product) keep every thread.
RANK_CPU_THREADS = 1


# ----------------------------------------------------------------------------- fast path

@dataclass
class RankStats:
    """Sums from which the metrics of a set of queries follow; add two to merge disjoint query sets.

    ``first_hit[r]`` counts valid queries whose first true match is at 0-based rank ``r`` (< max_rank).
    """

    max_rank: int
    num_queries: int = 0
    num_valid: int = 0
    ap_sum: float = 0.0
    inp_sum: float = 0.0
    first_hit: np.ndarray = field(default=None)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.first_hit is None:
            self.first_hit = np.zeros(self.max_rank, dtype=np.int64)

    def __add__(self, other: "RankStats") -> "RankStats":
        if other.max_rank != self.max_rank:
            raise ValueError(f"cannot merge RankStats with max_rank {self.max_rank} and {other.max_rank}")
        return RankStats(self.max_rank, num_queries=self.num_queries + other.num_queries,
                         num_valid=self.num_valid + other.num_valid, ap_sum=self.ap_sum + other.ap_sum,
                         inp_sum=self.inp_sum + other.inp_sum, first_hit=self.first_hit + other.first_hit)

    def result(self) -> dict[str, Any]:
        """The metric dict of :func:`evaluate_rank_reference`."""
        nv = max(self.num_valid, 1)
        return _result(np.cumsum(self.first_hit) / nv, self.ap_sum / nv, self.inp_sum / nv,
                       self.num_valid, self.num_queries)


@dataclass(frozen=True)
class GalleryIndex:
    """Gallery ids and cameras on a device, grouped by pid so each query finds its same-pid items.

    pids, camids: [G]; order: [G] gallery indices sorted by (pid, index); uniq/start/count: [U].
    """

    pids: torch.Tensor
    camids: torch.Tensor
    order: torch.Tensor
    uniq: torch.Tensor
    start: torch.Tensor
    count: torch.Tensor

    @classmethod
    def build(cls, g_pids: Any, g_camids: Any, device: torch.device | str = "cpu") -> "GalleryIndex":
        pids = torch.as_tensor(_ids(g_pids, "g_pids", len(g_pids)), device=device)
        camids = torch.as_tensor(_ids(g_camids, "g_camids", pids.shape[0]), device=device)
        order = torch.sort(pids, stable=True).indices
        uniq, count = torch.unique_consecutive(pids[order], return_counts=True)
        start = torch.cumsum(count, 0) - count
        return cls(pids, camids, order=order, uniq=uniq, start=start, count=count)

    @property
    def size(self) -> int:
        return int(self.pids.shape[0])

    def same_pid(self, q_pids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For query pids [c]: gallery indices of the same pid [c, S] (ascending) and a validity mask [c, S]."""
        if self.uniq.numel() == 0:
            empty = torch.zeros(q_pids.shape[0], 0, dtype=torch.long, device=q_pids.device)
            return empty, empty.bool()
        loc = torch.searchsorted(self.uniq, q_pids).clamp_(max=self.uniq.numel() - 1)
        found = self.uniq[loc] == q_pids
        count = torch.where(found, self.count[loc], torch.zeros_like(loc))
        width = int(count.max()) if count.numel() else 0
        slot = torch.arange(width, device=q_pids.device)
        ok = slot[None, :] < count[:, None]
        pos = torch.where(ok, self.start[loc][:, None] + slot[None, :], torch.zeros_like(ok, dtype=torch.long))
        return self.order[pos], ok


def _order_code(vals: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Order-preserving int64 codes of float values [N] (equal values share a code) and their bit width.

    float32: the IEEE bits mapped monotonically onto [0, 2^32) (-0.0 folded into +0.0, as in a
    comparison sort). Other dtypes: the index of the value among the sorted distinct values.
    """
    if vals.dtype == torch.float32:
        bits = (vals + 0.0).view(torch.int32).to(torch.int64)  # + 0.0 turns -0.0 into +0.0
        return torch.where(bits >= 0, bits + 2**31, -1 - bits), 32
    codes = torch.unique(vals, return_inverse=True)[1]
    return codes, max(int(vals.shape[0]).bit_length(), 1)


def _pack(rows: torch.Tensor, code: torch.Tensor, code_bits: int, cols: torch.Tensor, col_bits: int
          ) -> torch.Tensor:
    """One int64 key per (row, distance code, gallery index), ordered like the tie rule."""
    if int(rows.max()).bit_length() + code_bits + col_bits > 63:
        raise ValueError("too many gallery images or distinct distances for the packed ranking keys")
    return (rows << (code_bits + col_bits)) | (code << col_bits) | cols


def _match_ranks(dist: torch.Tensor, cand: torch.Tensor, far: torch.Tensor, m_rows: torch.Tensor,
                 m_cols: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """0-based ranks of the true matches among the candidates of their row, by (distance, index).

    dist, cand: [b, G]; far: [b] largest true-match distance per row; m_rows, m_cols: [M] the
    true matches (all candidates). Returns (rows, ranks) [M], sorted by row then rank.

    Counting, not sorting: each candidate falls into one of HIST_BINS equal-width distance bins of
    its row (bin monotone in distance); a per-row histogram counts the candidates in the bins
    below a match's bin, and only candidates sharing a bin with some match are sorted exactly.
    """
    b, g = dist.shape
    nb = max(16, min(HIST_BINS, g))
    lo = dist.amin(1)
    span = far - lo
    scale = torch.where(torch.isfinite(span) & (span > 0), (nb - 1) / span, torch.zeros_like(span))
    offset = torch.arange(b, device=dist.device) * nb

    def bins(v: torch.Tensor, lo: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
        """Global bin row * nb + bin of distances v: monotone in v within a row (inf * 0 -> NaN -> 0)."""
        x = torch.nan_to_num_((v - lo).mul_(scale), nan=0.0).clamp_(0, nb - 1)
        return x.to(torch.int64).add_(offset)

    m_flat = bins(dist[m_rows, m_cols], lo[m_rows], scale[m_rows], offset[m_rows])
    shared = torch.zeros(b * nb + 1, dtype=torch.bool, device=dist.device)  # last: non-candidates
    shared[m_flat] = True
    if int(torch.count_nonzero(cand)) > DENSE_FRACTION * cand.numel():  # most items are candidates
        flat = bins(dist, lo[:, None], scale[:, None], offset[:, None]).masked_fill_(~cand, b * nb)
        hist = torch.bincount(flat.reshape(-1), minlength=b * nb + 1)[: b * nb]
        s_rows, s_cols = shared[flat].nonzero(as_tuple=True)
        s_flat = flat[s_rows, s_cols]
    else:
        rows, cols = cand.nonzero(as_tuple=True)
        flat = bins(dist[rows, cols], lo[rows], scale[rows], offset[rows])
        hist = torch.bincount(flat, minlength=b * nb)
        sel = shared[flat].nonzero().squeeze(1)  # candidates sharing a bin with some true match
        s_rows, s_cols, s_flat = rows[sel], cols[sel], flat[sel]
    hist = hist.view(b, nb)
    below = (torch.cumsum(hist, 1) - hist).view(-1)  # candidates of the row in lower bins
    code, code_bits = _order_code(torch.cat([dist[s_rows, s_cols], dist[m_rows, m_cols]]))
    col_bits = max(g - 1, 1).bit_length()
    s_key = _pack(s_rows, code[: s_rows.shape[0]], code_bits, s_cols, col_bits)
    m_key = _pack(m_rows, code[s_rows.shape[0]:], code_bits, m_cols, col_bits)
    m_key, order = torch.sort(m_key, stable=True)  # keys are unique: row-major, rank order
    m_rows, m_flat = m_rows[order], m_flat[order]
    # rank = (row's candidates in lower bins) + (same-bin candidates with a smaller key); the
    # second term is (selected with a smaller key) - (selected in lower bins of the row or in
    # earlier rows) since a smaller key never sits in a higher bin.
    within = (torch.searchsorted(torch.sort(s_key, stable=True).values, m_key)
              - torch.searchsorted(torch.sort(s_flat, stable=True).values, m_flat))
    return m_rows, below[m_flat] + within


def _rank_block(dist: torch.Tensor, q_pids: torch.Tensor, q_camids: torch.Tensor,
                gallery: GalleryIndex, max_rank: int) -> RankStats:
    """Metric sums of one block of queries. dist: [b, G]; q_pids, q_camids: [b] on dist.device."""
    b = dist.shape[0]
    sp_idx, sp_ok = gallery.same_pid(q_pids)  # [b, S]
    sp_junk = sp_ok & (gallery.camids[sp_idx] == q_camids[:, None])
    sp_match = sp_ok & ~sp_junk
    n_match = sp_match.sum(1)
    valid = n_match > 0
    num_valid = int(valid.sum())
    if num_valid == 0:
        return RankStats(max_rank, num_queries=b)
    if num_valid < b:  # drop queries without a true match before touching the gallery
        keep = valid.nonzero().squeeze(1)
        dist, n_match = dist[keep], n_match[keep]
        sp_idx, sp_junk, sp_match = sp_idx[keep], sp_junk[keep], sp_match[keep]
    # Candidates: items not farther than the query's farthest true match, junk removed. Items
    # beyond it rank after every true match, so they change neither CMC, AP nor INP.
    sp_dist = dist.gather(1, sp_idx).masked_fill_(~sp_match, -float("inf"))
    far = sp_dist.amax(1)
    cand = dist <= far[:, None]
    jr, js = sp_junk.nonzero(as_tuple=True)
    cand[jr, sp_idx[jr, js]] = False
    mr, ms = sp_match.nonzero(as_tuple=True)
    m_rows, m_rank = _match_ranks(dist, cand, far, mr, sp_idx[mr, ms])
    m_start = torch.cumsum(n_match, 0) - n_match
    k = torch.arange(m_rows.shape[0], device=dist.device) - m_start[m_rows]  # 0-based match ordinal
    m_rank64 = m_rank.to(torch.float64)
    ap = torch.zeros(num_valid, dtype=torch.float64, device=dist.device).index_add_(
        0, m_rows, (k + 1).to(torch.float64) / (m_rank64 + 1)) / n_match
    first = m_rank[k == 0]
    last = m_rank64[k == n_match[m_rows] - 1]
    inp = n_match.to(torch.float64) / (last + 1)
    hist = torch.bincount(first.clamp(max=max_rank), minlength=max_rank + 1)[:max_rank]
    return RankStats(max_rank, num_queries=b, num_valid=num_valid, ap_sum=float(ap.sum()),
                     inp_sum=float(inp.sum()), first_hit=hist.cpu().numpy().astype(np.int64))


def rank_stats(dist: torch.Tensor, q_pids: torch.Tensor, q_camids: torch.Tensor, gallery: GalleryIndex,
               max_rank: int = 50) -> RankStats:
    """Metric sums for a chunk of queries against the whole gallery.

    dist: [c, G] on any device, any strides and dtype; q_pids, q_camids: [c] int64 on the same
    device; gallery built on it.
    """
    if dist.ndim != 2 or dist.shape[1] != gallery.size:
        raise ValueError(f"dist: expected [c, {gallery.size}], got {tuple(dist.shape)}")
    dist = dist.detach()
    if not dist.is_floating_point():
        dist = dist.to(torch.float32)
    elif dist.dtype in (torch.float16, torch.bfloat16):
        dist = dist.float()  # exact and order-preserving
    if dist.numel() and torch.isnan(dist.amax()):  # amax propagates NaN: one cheap pass
        raise ValueError("distance matrix contains NaN (NaN features?)")
    stats = RankStats(max_rank)
    rows = max(1, BLOCK_ELEMENTS // max(gallery.size, 1))
    with _cpu_threads(dist.device, RANK_CPU_THREADS):
        for s in range(0, dist.shape[0], rows):
            e = s + rows
            # One contiguous block (a copy only for transposed, sliced or expanded layouts): the
            # ranking flattens and reshapes its [b, G] arrays, which needs row-major memory.
            block = dist[s:e].contiguous()
            stats = stats + _rank_block(block, q_pids[s:e], q_camids[s:e], gallery, max_rank)
    return stats


@contextmanager
def _cpu_threads(device: torch.device, n: int) -> Iterator[None]:
    """Run the block with n torch CPU threads (0 or a non-CPU device: leave the setting alone)."""
    before = torch.get_num_threads()
    if device.type != "cpu" or n <= 0 or n >= before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def accumulate(chunks: Iterable[tuple[int, int, torch.Tensor]], q_pids: Any, q_camids: Any,
               gallery: GalleryIndex, max_rank: int = 50) -> dict[str, Any]:
    """Metrics from distance chunks ``(start, stop, dist[stop - start, G])`` covering every query once."""
    device = gallery.pids.device
    qp = torch.as_tensor(_ids(q_pids, "q_pids", len(q_pids)), device=device)
    qc = torch.as_tensor(_ids(q_camids, "q_camids", qp.shape[0]), device=device)
    stats, seen = RankStats(max_rank), 0
    for start, stop, dist in chunks:
        stats = stats + rank_stats(dist.to(device), qp[start:stop], qc[start:stop], gallery, max_rank)
        seen += stop - start
    if seen != qp.shape[0]:
        raise ValueError(f"distance chunks covered {seen} queries, expected {qp.shape[0]}")
    return stats.result()


def evaluate_rank(distmat: Any, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any,
                  max_rank: int = 50, *, chunk_size: int = 1024) -> dict[str, Any]:
    """Same metrics, signature and result as :func:`evaluate_rank_reference`, vectorised in torch.

    distmat: [Q, G] NumPy array or tensor (computed on its device) in any memory layout (C or
    Fortran order, transposed, sliced, negative or zero strides) and any real dtype, taken
    ``chunk_size`` query rows at a time; only a chunk at a time is ever copied (row-major, native
    byte order) and a row-major array not at all.
    """
    _check(distmat, q_pids, g_pids, q_camids, g_camids, max_rank)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    device = distmat.device if isinstance(distmat, torch.Tensor) else torch.device("cpu")
    gallery = GalleryIndex.build(g_pids, g_camids, device)
    nq = distmat.shape[0]
    chunks = ((s, min(s + chunk_size, nq), _rows(distmat, s, s + chunk_size)) for s in range(0, nq, chunk_size))
    return accumulate(chunks, q_pids, q_camids, gallery, max_rank)


def _rows(distmat: Any, start: int, stop: int) -> torch.Tensor:
    """Rows start:stop of a [Q, G] tensor or array-like as a tensor (NumPy: a row-major native-order view or copy)."""
    if isinstance(distmat, torch.Tensor):
        return distmat[start:stop]
    rows = np.asarray(distmat[start:stop])
    return torch.from_numpy(np.ascontiguousarray(rows, dtype=rows.dtype.newbyteorder("=")))
