"""The retrieval explorer: one query's ranked gallery (true / false / junk marked), its AP and INP, the queries
in their own order or worst / best first, with and without k-reciprocal re-ranking."""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import ipywidgets as widgets
import numpy as np

from ..analysis import RetrievalDistances, ranked_gallery, retrieval_distances
from ..eval.rerank import re_ranking
from ..utils import resolve_device
from ..viz import retrieval as vr
from .base import Explorer, View

__all__ = ["ORDERS", "query_order", "retrieval_explorer"]

ORDERS = ("as is", "worst first", "best first")


def query_order(ap: np.ndarray, order: str) -> list[int]:
    """Query indices in the slider's ``order`` (one of :data:`ORDERS`); queries without a true match (NaN AP)
    come last in the sorted orders, ties by lower index."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of {ORDERS}, got {order!r}")
    idx = list(range(len(ap)))
    if order == "as is":
        return idx
    sign = 1.0 if order == "worst first" else -1.0
    return sorted(idx, key=lambda i: (np.isnan(ap[i]), sign * np.nan_to_num(ap[i]), i))


class _Ranking:
    """Every query's whole ranked list for one distance matrix: ``order`` [Q, G] gallery indices by distance,
    ``match`` Bool[Q, G] with the Market rule applied (what AP / INP use), ``ap`` and ``inp`` [Q]."""

    def __init__(self, data: RetrievalDistances, dist: np.ndarray) -> None:
        self.q_pids = np.array([it.pid for it in data.queries])
        self.q_cams = np.array([it.camid for it in data.queries])
        self.g_pids = np.array([it.pid for it in data.gallery])
        self.g_cams = np.array([it.camid for it in data.gallery])
        self.order = np.argsort(dist, axis=1, kind="stable")
        _, self.match = ranked_gallery(dist, self.q_pids, self.g_pids, self.q_cams, self.g_cams, topk=dist.shape[1])
        self.ap = vr.average_precisions(self.match)
        self.inp = vr.inverse_negative_penalties(self.match)

    def top(self, i: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Query ``i``'s first ``k`` gallery items as ranked (junk included): indices, true match, junk [k]."""
        g = self.order[i, :k]
        same = self.g_pids[g] == self.q_pids[i]
        junk = same & (self.g_cams[g] == self.q_cams[i])
        return g, same & ~junk, junk


def retrieval_explorer(runs: str | Path | Sequence[str | Path], target: str | None = None, *, topk: int = 10,
                       n_queries: int = 0, device: str = "cpu") -> Explorer:
    """Explore a finished run's retrieval on ``target`` (default: its protocol's first target): one or several
    run folders (dropdown), the target, a query slider, the query order, a re-ranking toggle.

    ``n_queries``: queries spread over the query set (0: all). The figure is the query and its top ``topk``
    gallery items as ranked (green: same identity, red: another, grey: same identity and camera, which the
    metrics leave out); the info line gives the query's AP and INP on its whole list. ``state`` holds
    ``query_index`` (into the query set), ``ap``, ``inp``, ``gallery`` (the shown indices)."""
    device = str(resolve_device(device))  # "auto" as the notebooks' DEVICE says it
    run_list = [str(r) for r in ([runs] if isinstance(runs, (str, Path)) else runs)]
    if not run_list:
        raise ValueError("retrieval_explorer: give at least one run folder")

    @lru_cache(maxsize=8)
    def distances(run: str, tgt: str | None) -> RetrievalDistances:
        return retrieval_distances(run, tgt, n_queries, device)

    @lru_cache(maxsize=16)
    def ranking(run: str, tgt: str | None, rerank: bool) -> _Ranking:
        d = distances(run, tgt)
        return _Ranking(d, np.asarray(re_ranking(d.qg, d.qq, d.gg), np.float64) if rerank else d.qg)

    first = distances(run_list[0], target)
    targets = [first.target] + [t for t in first.targets if t != first.target]
    controls: dict[str, widgets.ValueWidget] = {
        "run": widgets.Dropdown(options=run_list, value=run_list[0], description="run",
                                layout=widgets.Layout(width="420px")),
        "target": widgets.Dropdown(options=targets, value=first.target, description="target"),
        "order": widgets.Dropdown(options=ORDERS, value="as is", description="order"),
        "query": widgets.IntSlider(value=0, min=0, max=len(first.queries) - 1, description="query",
                                   continuous_update=False),
        "rerank": widgets.Checkbox(value=False, description="re-ranking"),
    }

    def render(v: dict[str, Any]) -> View:
        data = distances(v["run"], v["target"])
        rk = ranking(v["run"], v["target"], v["rerank"])
        controls["query"].max = len(data.queries) - 1  # another target may have fewer queries
        pos = min(v["query"], len(data.queries) - 1)
        i = query_order(rk.ap, v["order"])[pos]
        g, match, junk = rk.top(i, topk)
        q = data.queries[i]
        ap, inp = float(rk.ap[i]), float(rk.inp[i])
        row = f"AP = {ap:.2f}\nINP = {inp:.2f}"
        fig = vr.ranked_lists([q.path], [[data.gallery[j].path for j in g]], match[None],
                              [f"id {q.pid} / c{q.camid + 1}"], [row], junk=junk[None])
        info = (f"{data.target}, query {i + 1} of {len(data.queries)} (id {q.pid}, camera {q.camid + 1}), "
                f"{'re-ranked' if v['rerank'] else 'plain distance'}: AP {ap:.4f}, INP {inp:.4f}; "
                f"mAP over the queries {np.nanmean(rk.ap):.4f}")
        return View(fig, {"query_index": i, "ap": ap, "inp": inp, "gallery": g.tolist(),
                          "match": match.tolist(), "junk": junk.tolist()}, info)

    return Explorer("retrieval", controls, render)

