"""``python -m muva_lib.bench rerank``: k-reciprocal re-ranking, vectorised vs its plain loop, both variants.

One synthetic problem with re-ID structure (default 600 queries x 2,400 gallery images, the size
the re-ranking issue was measured on), squared Euclidean distances of L2-normalised features,
k1 20, k2 6, lambda 0.3. Everything measured in one run:

* mAP / rank-1 without re-ranking, with the default variant (``zhong``, the public implementation's
  conventions) and with the ``paper`` variant (the paper's definition as written);
* agreement of the vectorised default with :func:`~muva_lib.eval.rerank.re_ranking_reference`, the
  plain per-image loop: the largest difference of re-ranked distances and of any metric;
* wall time of each and the speed ratio of the vectorised default over the loop.

``--compare FILE`` also runs another implementation of the public ``re_ranking(q_g, q_q, g_g)``
(for example torchreid's ``torchreid/reid/utils/rerank.py``, which squares its inputs first, so it
is fed plain Euclidean distances) and prints the same agreement against it.
"""
from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from ..utils import set_threads
from .bench_rank import max_metric_diff, synthetic_problem, timed
from .distance import pairwise_distance
from .rank import evaluate_rank
from .rerank import re_ranking_full, re_ranking_reference

__all__ = ["main", "load_public_rerank"]

METRIC_KEYS = ("mAP", "mINP", "rank1", "rank5", "rank10", "cmc")


def load_public_rerank(path: str | Path) -> Callable[..., np.ndarray]:
    """``re_ranking(q_g_dist, q_q_dist, g_g_dist, k1, k2, lambda_value)`` from a Python file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--compare {path}: no such file (a copy of the public rerank.py)")
    spec = importlib.util.spec_from_file_location("public_rerank", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    if not hasattr(module, "re_ranking"):
        raise ValueError(f"--compare {path}: the file defines no re_ranking function")
    return module.re_ranking


def _public_run(path: str, dist: np.ndarray, nq: int, params: dict, ids: tuple, results: dict, rows: list
                ) -> tuple[np.ndarray, np.ndarray, float]:
    """Run the public ``re_ranking`` of ``path`` and ours on exactly the distances it sees; adds their
    metrics to ``results`` ("public", "fast_seen") and a table row. Returns (public, ours, public's seconds)."""
    public_fn = load_public_rerank(path)
    plain = np.sqrt(np.maximum(dist, 0.0))  # the public q_g/q_q/g_g function squares its input
    public, t_public = timed(public_fn, plain[:nq, nq:], plain[:nq, :nq], plain[nq:, nq:], **params)
    results["public"] = evaluate_rank(np.asarray(public), *ids)
    rows.append((f"public re_ranking ({Path(path).name})", results["public"], t_public))
    # ... and so sees sqrt(d)^2, which differs from d in the last bit: near-ties at the edge of a
    # neighbour list can flip. Compare like with like: ours on exactly the distances it saw.
    fast_seen = re_ranking_full(np.power(plain, 2).astype(np.float32), nq, **params)
    results["fast_seen"] = evaluate_rank(fast_seen, *ids)
    return np.asarray(public), fast_seen, t_public


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m muva_lib.bench rerank", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--num-query", type=int, default=600)
    parser.add_argument("--num-gallery", type=int, default=2400)
    parser.add_argument("--num-ids", type=int, default=150)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--noise", type=float, default=3.0, help="feature noise (higher: harder; 3: mAP about 24)")
    parser.add_argument("--k1", type=int, default=20)
    parser.add_argument("--k2", type=int, default=6)
    parser.add_argument("--lambda-value", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--compare", default="", help="a .py file defining the public re_ranking(q_g, q_q, g_g, ...)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    set_threads(args.threads)
    nq, ng = args.num_query, args.num_gallery
    prob = synthetic_problem(nq, ng, args.num_ids, 6, 0, dim=args.dim, noise=args.noise, seed=args.seed)
    feats = torch.cat([prob["qf"], prob["gf"]])
    dist = pairwise_distance(feats, feats, "euclidean", True).numpy()
    ids = prob["q_pids"], prob["g_pids"], prob["q_camids"], prob["g_camids"]
    params = dict(k1=args.k1, k2=args.k2, lambda_value=args.lambda_value)
    print(f"{nq} queries x {ng} gallery, dim {args.dim}, noise {args.noise}, k1 {args.k1}, k2 {args.k2}, "
          f"lambda {args.lambda_value}; squared Euclidean distances of L2-normalised features")

    rows: list[tuple[str, dict, float | None]] = [("no re-ranking", evaluate_rank(dist[:nq, nq:], *ids), None)]
    fast, t_fast = timed(re_ranking_full, dist, nq, **params)
    paper, t_paper = timed(re_ranking_full, dist, nq, variant="paper", **params)
    loop, t_loop = timed(re_ranking_reference, dist, nq, **params)
    results = {name: evaluate_rank(d, *ids) for name, d in (("fast", fast), ("paper", paper), ("loop", loop))}
    rows += [("zhong (default), vectorised", results["fast"], t_fast),
             ("zhong, plain loop (re_ranking_reference)", results["loop"], t_loop),
             ("paper variant, vectorised", results["paper"], t_paper)]
    public = _public_run(args.compare, dist, nq, params, ids, results, rows) if args.compare else None
    print("\n| distances | mAP | rank-1 | mINP | time [s] |")
    print("|---|---|---|---|---|")
    for name, res, t in rows:
        print(f"| {name} | {100 * res['mAP']:.2f} | {100 * res['rank1']:.2f} | {100 * res['mINP']:.2f} "
              f"| {'' if t is None else f'{t:.2f}'} |")
    print(f"\nvectorised vs plain loop: max |distance difference| {np.abs(fast - loop).max():.2e}, "
          f"max |metric difference| {max_metric_diff(results['fast'], results['loop'], METRIC_KEYS):.2e}, "
          f"speed-up {t_loop / t_fast:.1f}x")
    if public is not None:
        public, fast_seen, t_public = public
        print(f"vectorised vs public, on the distances the public code saw: max |distance difference| "
              f"{np.abs(fast_seen - public).max():.2e}, "
              f"max |metric difference| {max_metric_diff(results['fast_seen'], results['public'], METRIC_KEYS):.2e}, "
              f"speed-up {t_public / t_fast:.1f}x")
    print(f"paper variant vs default: mAP {100 * (results['paper']['mAP'] - results['fast']['mAP']):+.2f}, "
          f"rank-1 {100 * (results['paper']['rank1'] - results['fast']['rank1']):+.2f} points")
    return 0
