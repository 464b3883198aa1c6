"""Query-gallery distances (squared Euclidean or cosine) in torch on a device, one chunk of queries at a time."""
from __future__ import annotations

from typing import Any, Iterator

import torch
import torch.nn.functional as F

__all__ = ["METRICS", "as_features", "distance_chunks", "pairwise_distance"]

METRICS = ("euclidean", "cosine")


def as_features(x: Any, name: str, device: torch.device | str | None = None) -> torch.Tensor:
    """A float32 [N, D] tensor on ``device`` (a tensor already there is not copied)."""
    t = torch.as_tensor(x)
    if t.ndim != 2:
        raise ValueError(f"{name}: expected a [N, D] feature matrix, got shape {tuple(t.shape)}")
    return t.to(device=device if device is not None else t.device, dtype=torch.float32)


def _prepare(qf: Any, gf: Any, metric: str, normalize: bool, device: torch.device | str | None
             ) -> tuple[torch.Tensor, torch.Tensor, bool]:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    q, g = as_features(qf, "qf", device), as_features(gf, "gf", device)
    if q.shape[1] != g.shape[1]:
        raise ValueError(f"query features have dim {q.shape[1]} but gallery features dim {g.shape[1]}")
    unit = normalize or metric == "cosine"  # cosine is scale-free: it always uses unit vectors
    if unit:
        q, g = F.normalize(q, dim=1), F.normalize(g, dim=1)
    return q, g, unit


def _block(q: torch.Tensor, g: torch.Tensor, g_sq: torch.Tensor | None, metric: str) -> torch.Tensor:
    """Distances of query rows q [c, D] to g [G, D] -> [c, G]."""
    dot = q @ g.T
    if g_sq is None:  # unit vectors: cosine distance 1 - cos, squared Euclidean 2 - 2 cos = 2 (1 - cos)
        dist = dot.neg_().add_(1.0)
        return dist.mul_(2.0) if metric == "euclidean" else dist
    return dot.mul_(-2.0).add_(q.pow(2).sum(1, keepdim=True)).add_(g_sq).clamp_(min=0.0)


def distance_chunks(qf: Any, gf: Any, metric: str = "euclidean", normalize: bool = True, *,
                    chunk_size: int = 512, device: torch.device | str | None = None
                    ) -> Iterator[tuple[int, int, torch.Tensor]]:
    """Yield ``(start, stop, dist[stop - start, G])`` on ``device`` for consecutive query chunks.

    qf: [Q, D], gf: [G, D]. ``euclidean`` is the squared distance; with ``normalize`` the features
    are L2-normalised first and it equals exactly twice the cosine distance (same ranking, same
    ties). ``cosine`` = 1 - cos always normalises. Only the non-normalised Euclidean is clamped at 0.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    q, g, unit = _prepare(qf, gf, metric, normalize, device)
    g_sq = None if unit else g.pow(2).sum(1)[None, :]
    for s in range(0, q.shape[0], chunk_size):
        e = min(s + chunk_size, q.shape[0])
        yield s, e, _block(q[s:e], g, g_sq, metric)


def pairwise_distance(qf: Any, gf: Any, metric: str = "euclidean", normalize: bool = False, *,
                      chunk_size: int = 512, device: torch.device | str | None = None) -> torch.Tensor:
    """The full [Q, G] distance matrix (float32, on CPU), computed chunk by chunk on ``device``."""
    out = torch.empty(len(qf), len(gf), dtype=torch.float32)
    for s, e, d in distance_chunks(qf, gf, metric, normalize, chunk_size=chunk_size, device=device):
        out[s:e] = d.cpu()
    return out
