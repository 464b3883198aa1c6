"""k-reciprocal re-ranking: each convention of the public implementation on a hand-checked toy, and the
vectorised default against an independent straightforward implementation written here from the
paper's equations and those conventions."""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from muva_lib.config import EvalCfg, resolve
from muva_lib.eval import evaluate_features, evaluate_rank, pairwise_distance, re_ranking
from muva_lib.eval.bench_rank import synthetic_problem
from muva_lib.eval.rerank import (_expanded, column_normalised, expansion_k, re_ranking_full,
                                  re_ranking_reference)


def line(pos) -> np.ndarray:
    """Squared Euclidean distances [N, N] of points on a line."""
    pos = np.asarray(pos, dtype=np.float64)
    return ((pos[:, None] - pos[None, :]) ** 2).astype(np.float32)


# ----------------------------------------------------------------------------- one toy per convention

# Points 0, 1, 3: d = [[0, 1, 9], [1, 0, 4], [9, 4, 0]], column maxima 9, 4, 9. Query 0, gallery 1 and 2.
TOY = line([0.0, 1.0, 3.0])
D_TOY = np.array([[0, 1 / 9, 1], [1 / 4, 0, 1], [1, 4 / 9, 0]])  # row p = column p / its max


def test_divides_by_each_column_maximum_and_blends_the_normalised_matrix():
    np.testing.assert_allclose(column_normalised(TOY), D_TOY, rtol=1e-6)
    # lambda = 1 leaves only the blend's distance term: d(0, g) over query 0's column maximum (9).
    np.testing.assert_allclose(re_ranking_full(TOY, 1, k1=2, k2=1, lambda_value=1.0), [[1 / 9, 1.0]], rtol=1e-6)
    # so the result does not depend on the distances' scale (the paper variant's kernel does)
    for k2 in (1, 2):
        np.testing.assert_allclose(re_ranking_full(7.5 * TOY, 1, k1=2, k2=k2), re_ranking_full(TOY, 1, k1=2, k2=k2),
                                   rtol=1e-6)
    assert not np.allclose(re_ranking_full(7.5 * TOY, 1, k1=2, variant="paper"),
                           re_ranking_full(TOY, 1, k1=2, variant="paper"))


def toy_weights() -> np.ndarray:
    # k1 = 2: N(p, 2) holds all three points, so R(p) = R*(p) = everything, and
    # V[p] = exp(-D[p]) / sum exp(-D[p]) (rows sum to one).
    w = np.exp(-D_TOY)
    return w / w.sum(1, keepdims=True)


def test_jaccard_of_normalised_weights_for_query_rows_only():
    v = toy_weights()
    m = np.minimum(v[0], v[1:]).sum(1)  # query 0 against gallery 1, 2
    expected = 1 - m / (2 - m)
    got = re_ranking_full(TOY, 1, k1=2, k2=1, lambda_value=0.0)
    assert got.shape == (1, 2) and got.dtype == np.float32
    np.testing.assert_allclose(got[0], expected, rtol=1e-6)
    # with the blend: (1 - lambda) d_J + lambda D
    np.testing.assert_allclose(re_ranking_full(TOY, 1, k1=2, k2=1, lambda_value=0.3)[0],
                               0.7 * expected + 0.3 * D_TOY[0, 1:], rtol=1e-6)


def test_query_expansion_of_every_row_gallery_rows_included():
    # k2 = 2: rows 0 and 1 are each other's nearest neighbour, so both become (V[0] + V[1]) / 2 and
    # their Jaccard distance is exactly 0. Expanding the query row alone would leave it positive.
    v = toy_weights()
    got = re_ranking_full(TOY, 1, k1=2, k2=2, lambda_value=0.0)
    assert got[0, 0] == pytest.approx(0.0, abs=1e-7)
    v2 = (v[2] + v[1]) / 2  # point 2's two nearest: itself and point 1
    m = np.minimum((v[0] + v[1]) / 2, v2).sum()
    assert got[0, 1] == pytest.approx(1 - m / (2 - m), rel=1e-6)
    q_only = np.minimum((v[0] + v[1]) / 2, v[1]).sum()
    assert 1 - q_only / (2 - q_only) > 1e-3


def test_half_k_is_rounded_half_to_even():
    # NumPy's around: 5 / 2 = 2.5 -> 2 and 7 / 2 = 3.5 -> 4, where the paper's ceil gives 3 and 4
    assert [expansion_k(k) for k in (1, 2, 3, 5, 7, 20, 21)] == [0, 1, 2, 2, 4, 10, 10]
    assert [expansion_k(k, "paper") for k in (1, 2, 3, 5, 7, 20, 21)] == [1, 1, 2, 3, 4, 10, 11]


def test_expansion_needs_strictly_more_than_two_thirds():
    # R(p) = {0, 1, 2} (p = 0); candidate 1 has R(1, k') = {0, 1, 3}: overlap 2 = 2/3 of 3, not more,
    # so the default does not add 3; the paper variant's "at least" does.
    r = sp.csr_matrix(np.array([[1, 1, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], float))
    r_half = sp.csr_matrix(np.array([[1, 0, 0, 0], [1, 1, 0, 1], [0, 0, 1, 0], [0, 0, 0, 1]], float))
    assert _expanded(r, r_half, strict=True).toarray()[0].tolist() == [1, 1, 1, 0]
    assert _expanded(r, r_half, strict=False).toarray()[0].tolist() == [1, 1, 1, 1]
    # overlap 3 of 4 (> 2/3) expands under both rules
    r_half = sp.csr_matrix(np.array([[1, 0, 0, 0], [1, 1, 1, 1], [0, 0, 1, 0], [0, 0, 0, 1]], float))
    assert _expanded(r, r_half, strict=True).toarray()[0].tolist() == [1, 1, 1, 1]


def test_ties_follow_numpys_default_argsort():
    # Quantised distances tie everywhere: the neighbour lists must be NumPy's argsort order, as in
    # the public code, whatever order that gives equal values.
    rng = np.random.default_rng(3)
    x = rng.integers(0, 4, size=(40, 3)).astype(np.float32)
    d = ((x[:, None] - x[None]) ** 2).sum(-1)
    np.testing.assert_allclose(re_ranking_full(d, 10, k1=6, k2=3), re_ranking_reference(d, 10, k1=6, k2=3),
                               atol=1e-6, rtol=0)
    np.testing.assert_allclose(re_ranking_full(d, 10, k1=6, k2=3), by_the_equations(d, 10, 6, 3, 0.3),
                               atol=1e-6, rtol=0)


# ----------------------------------------------------------------------------- an independent implementation

def by_the_equations(dist: np.ndarray, nq: int, k1: int, k2: int, lam: float) -> np.ndarray:
    """Zhong et al.'s equations with the public code's conventions, one set at a time."""
    d = np.asarray(dist, dtype=np.float32)
    top = d.max(axis=0)
    big_d = (d / np.where(top > 0, top, 1)).T  # row p: column p over its maximum
    n = len(big_d)
    ranking = [list(np.argsort(big_d[p])) for p in range(n)]  # NumPy's default sort, as the public code

    def nearest(p: int, k: int) -> set[int]:
        return set(int(i) for i in ranking[p][:k + 1])

    def reciprocal(p: int, k: int) -> set[int]:
        return {g for g in nearest(p, k) if p in nearest(g, k)}

    half = int(np.around(k1 / 2.0))
    v = np.zeros((n, n))
    for p in range(n):
        r_p = reciprocal(p, k1)
        r_star = set(r_p)
        for q in r_p:
            r_q = reciprocal(q, half)
            if len(r_q & r_p) > 2.0 / 3.0 * len(r_q):
                r_star |= r_q
        for g in r_star:
            v[p, g] = np.exp(-float(big_d[p, g]))
        v[p] /= v[p].sum()
    if k2 != 1:
        v = np.array([np.mean([v[g] for g in ranking[p][:k2]], axis=0) for p in range(n)])
    out = np.zeros((nq, n - nq))
    for i in range(nq):
        for j in range(n - nq):
            jaccard = 1 - np.minimum(v[i], v[nq + j]).sum() / np.maximum(v[i], v[nq + j]).sum()
            out[i, j] = (1 - lam) * jaccard + lam * big_d[i, nq + j]
    return out


def metric_gap(a: dict, b: dict) -> float:
    return max(float(np.max(np.abs(np.asarray(a[k], float) - np.asarray(b[k], float))))
               for k in ("mAP", "mINP", "rank1", "rank5", "cmc"))


@pytest.mark.parametrize("k1,k2,lam,seed", [(20, 6, 0.3, 0), (5, 1, 0.5, 1), (7, 3, 0.1, 2), (4, 10, 0.0, 3)])
def test_agrees_with_the_equations_on_a_reid_problem(k1, k2, lam, seed):
    prob = synthetic_problem(24, 96, 12, 3, 6, dim=32, noise=1.5, seed=seed)
    feats = np.concatenate([prob["qf"].numpy(), prob["gf"].numpy()])
    dist = pairwise_distance(feats, feats, normalize=True).numpy()  # squared Euclidean of L2-normalised features
    expected = by_the_equations(dist, 24, k1, k2, lam)
    fast = re_ranking_full(dist, 24, k1=k1, k2=k2, lambda_value=lam)
    np.testing.assert_allclose(fast, expected, atol=2e-6, rtol=0)  # float32 rounding
    np.testing.assert_allclose(re_ranking_reference(dist, 24, k1=k1, k2=k2, lambda_value=lam), expected,
                               atol=2e-6, rtol=0)
    ids = prob["q_pids"], prob["g_pids"], prob["q_camids"], prob["g_camids"]
    assert metric_gap(evaluate_rank(fast, *ids), evaluate_rank(expected, *ids)) <= 1e-6
    # the three-matrix entry point assembles the same problem (its lower-left block is q_g^T, which
    # differs from the gallery-query distances in the last bit)
    qq, qg, gg = dist[:24, :24], dist[:24, 24:], dist[24:, 24:]
    np.testing.assert_allclose(re_ranking(qg, qq, gg, k1=k1, k2=k2, lambda_value=lam), fast, atol=2e-6, rtol=0)


def test_default_and_paper_variant_differ_and_are_selected_by_the_config():
    prob = synthetic_problem(30, 120, 15, 3, 0, dim=32, noise=2.0, seed=4)
    feats = np.concatenate([prob["qf"].numpy(), prob["gf"].numpy()])
    dist = pairwise_distance(feats, feats, normalize=True).numpy()
    ids = dict(q_pids=prob["q_pids"], g_pids=prob["g_pids"], q_camids=prob["q_camids"], g_camids=prob["g_camids"])
    zhong, paper = re_ranking_full(dist, 30), re_ranking_full(dist, 30, variant="paper")
    assert np.abs(zhong - paper).max() > 1e-2
    assert resolve().eval.rerank_variant == "zhong"
    for variant, expected in (("zhong", zhong), ("paper", paper)):
        got = evaluate_features(prob["qf"], prob["gf"], **ids, cfg=EvalCfg(rerank=True, rerank_variant=variant))
        assert metric_gap(got, evaluate_rank(expected, *ids.values())) == 0.0
    with pytest.raises(ValueError, match="unknown re-ranking variant 'torchreid'"):
        re_ranking_full(dist, 30, variant="torchreid")


def test_bench_prints_the_agreement(capsys):
    from muva_lib.bench import main
    assert main(["rerank", "--num-query", "20", "--num-gallery", "80", "--num-ids", "10", "--dim", "16"]) == 0
    out = capsys.readouterr().out
    assert "| zhong (default), vectorised |" in out and "| paper variant, vectorised |" in out
    gap = float(out.split("vectorised vs plain loop: max |distance difference| ")[1].split(",")[0])
    assert gap < 1e-6


def test_bench_compares_with_a_public_style_file(tmp_path, capsys):
    # a stand-in for the public rerank.py: re_ranking(q_g, q_q, g_g, ...) that squares its input first
    stand_in = tmp_path / "rerank.py"
    stand_in.write_text(
        "import numpy as np\n"
        "from muva_lib.eval.rerank import re_ranking_reference\n"
        "def re_ranking(q_g, q_q, g_g, k1=20, k2=6, lambda_value=0.3):\n"
        "    d = np.block([[q_q, q_g], [q_g.T, g_g]]) ** 2\n"
        "    return re_ranking_reference(d.astype(np.float32), len(q_q), k1, k2, lambda_value)\n")
    from muva_lib.bench import main
    assert main(["rerank", "--num-query", "20", "--num-gallery", "80", "--num-ids", "10", "--dim", "16",
                 "--compare", str(stand_in)]) == 0
    out = capsys.readouterr().out
    assert "| public re_ranking (rerank.py) |" in out
    gap = float(out.split("on the distances the public code saw: max |distance difference| ")[1].split(",")[0])
    assert gap < 1e-6
    with pytest.raises(FileNotFoundError, match="no such file"):
        main(["rerank", "--compare", str(tmp_path / "missing.py")])
