"""Ranking metrics on hand-worked toy galleries, fast path == reference, distances, re-ranking, extraction."""
from __future__ import annotations

import inspect

import numpy as np
import pytest
import torch

from muva_lib.config import EvalCfg
from muva_lib.eval import (average_results, evaluate_features, evaluate_rank, evaluate_rank_reference,
                           extract_features, pairwise_distance, re_ranking)
from muva_lib.eval import rank as rank_mod
from muva_lib.eval.bench_rank import main as bench_main
from muva_lib.eval.rank import NoValidQueryError
from muva_lib.eval.rerank import RerankTooLargeError

BOTH = pytest.mark.parametrize("evaluate", [evaluate_rank_reference, evaluate_rank], ids=["reference", "fast"])


def one_query(dist, g_pids, g_camids, q_pid=1, q_cam=0, **kw):
    """Evaluate a single query given its distance row and the gallery labels."""
    return dict(distmat=np.asarray([dist], dtype=np.float64), q_pids=np.array([q_pid]),
                g_pids=np.asarray(g_pids), q_camids=np.array([q_cam]), g_camids=np.asarray(g_camids), **kw)


def assert_same(a: dict, b: dict, atol: float = 1e-12) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=0, atol=atol, err_msg=key)


# ----------------------------------------------------------------------------- hand-worked cases

@BOTH
def test_same_camera_rule_and_distractors(evaluate):
    # Query: pid 1, camera 0. Gallery sorted by distance:
    #   g0 pid 1 cam 0 d .1 -> same id AND same camera: junk, removed from the list
    #   g1 pid 0 cam 1 d .2 -> distractor: an ordinary negative
    #   g2 pid 1 cam 1 d .3 -> true match (same id, other camera)
    #   g3 pid 2 cam 0 d .4 -> negative (same camera does not matter for other ids)
    #   g4 pid 1 cam 2 d .5 -> true match
    # Junk-free list: neg, HIT, neg, HIT -> hits at ranks 2 and 4.
    # AP = (1/2 + 2/4) / 2 = 0.5; INP = 2 / 4 = 0.5; first hit at rank 2: R1 = 0, R5 = 1.
    res = evaluate(**one_query([.1, .2, .3, .4, .5], [1, 0, 1, 2, 1], [0, 1, 1, 0, 2]))
    assert res["mAP"] == pytest.approx(0.5)
    assert res["mINP"] == pytest.approx(0.5)
    assert res["rank1"] == 0.0 and res["rank5"] == 1.0
    np.testing.assert_array_equal(res["cmc"][:3], [0, 1, 1])
    assert res["num_valid_queries"] == 1 and res["num_queries"] == 1
    # Without the junk item's camera clash (g0 moved to camera 3) it becomes the rank-1 hit:
    # hits at 1, 3, 5 -> AP = (1 + 2/3 + 3/5) / 3, INP = 3/5.
    res = evaluate(**one_query([.1, .2, .3, .4, .5], [1, 0, 1, 2, 1], [3, 1, 1, 0, 2]))
    assert res["mAP"] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)
    assert res["mINP"] == pytest.approx(3 / 5)
    assert res["rank1"] == 1.0


@BOTH
def test_exact_ap_and_inp_for_hits_at_1_3_6(evaluate):
    # Hits at ranks 1, 3 and 6 of a 7-image gallery (distance = rank - 1):
    # AP = (1/1 + 2/3 + 3/6) / 3 = 0.7222...; INP = 3 / 6 = 0.5; first hit at rank 1.
    g_pids = [1, 2, 1, 3, 4, 1, 5]
    res = evaluate(**one_query(np.arange(7.0), g_pids, [1] * 7))
    assert res["mAP"] == pytest.approx((1 + 2 / 3 + 3 / 6) / 3)
    assert res["mINP"] == pytest.approx(0.5)
    np.testing.assert_array_equal(res["cmc"][:7], np.ones(7))


@BOTH
def test_queries_without_valid_match_are_skipped_and_counted(evaluate):
    # q0 (pid 1, cam 0): hits at ranks 1 and 3 of [g0 hit, g1 neg, g2 hit] -> AP (1 + 2/3)/2, INP 2/3.
    # q1 (pid 5, cam 0): its only gallery image g3 is on camera 0 -> junk -> no valid match, skipped.
    # q2 (pid 9): not in the gallery at all -> skipped.
    dist = np.array([[1., 2., 3., 4.], [4., 3., 2., 1.], [1., 1., 1., 1.]])
    res = evaluate(dist, np.array([1, 5, 9]), np.array([1, 2, 1, 5]), np.array([0, 0, 0]),
                   np.array([1, 1, 2, 0]))
    assert res["num_queries"] == 3 and res["num_valid_queries"] == 1
    assert res["mAP"] == pytest.approx((1 + 2 / 3) / 2)
    assert res["mINP"] == pytest.approx(2 / 3)
    assert res["rank1"] == 1.0


@BOTH
def test_no_valid_query_raises(evaluate):
    with pytest.raises(NoValidQueryError, match="true match"):
        evaluate(**one_query([1.0, 2.0], [1, 2], [0, 1]))  # the only same-id image is on camera 0


@BOTH
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_ties_are_broken_by_gallery_index(evaluate, dtype):
    # All four gallery images at the same distance: stable order = index order g0, g1, g2, g3.
    # Matches at g1 and g3 -> hits at ranks 2 and 4: AP = (1/2 + 2/4)/2 = 0.5, R1 = 0.
    kw = one_query([1.0] * 4, [2, 1, 3, 1], [1, 1, 1, 2])
    kw["distmat"] = kw["distmat"].astype(dtype)
    res = evaluate(**kw)
    assert res["mAP"] == pytest.approx(0.5) and res["rank1"] == 0.0
    # The same tie with the match first in index order: hits at ranks 1 and 3 -> AP (1 + 2/3)/2.
    res = evaluate(**one_query([1.0] * 4, [1, 2, 1, 3], [1, 1, 2, 1]))
    assert res["mAP"] == pytest.approx((1 + 2 / 3) / 2) and res["rank1"] == 1.0
    # -0.0 ties with +0.0 (a comparison sort sees them equal): negative g0 at +0.0 stays first.
    kw = one_query([0.0, -0.0], [2, 1], [1, 1])
    kw["distmat"] = kw["distmat"].astype(dtype)
    assert evaluate(**kw)["rank1"] == 0.0
    # A tied junk image (g0) before the match is removed, it does not push the match down: R1 = 1.
    assert evaluate(**one_query([1.0, 1.0, 1.0], [1, 1, 2], [0, 1, 1]))["rank1"] == 1.0


@BOTH
def test_cmc_monotone_and_means_over_queries(evaluate):
    # q0: first hit at rank 1 (AP 1, INP 1); q1: single hit at rank 3 (AP 1/3, INP 1/3).
    # CMC = [1/2, 1/2, 1, 1, ...]; mAP = (1 + 1/3)/2; mINP = (1 + 1/3)/2.
    dist = np.array([[0., 1., 2., 3.], [0., 1., 2., 3.]])
    res = evaluate(dist, np.array([1, 2]), np.array([1, 3, 2, 4]), np.array([0, 0]), np.array([1, 1, 1, 1]))
    np.testing.assert_allclose(res["cmc"][:4], [.5, .5, 1, 1])
    assert np.all(np.diff(res["cmc"]) >= 0) and res["cmc"][-1] == 1.0
    assert res["mAP"] == pytest.approx(2 / 3) and res["mINP"] == pytest.approx(2 / 3)
    assert res["cmc"].shape == (50,) and res["rank20"] == 1.0


@BOTH
def test_short_gallery_and_small_max_rank(evaluate):
    # 3-image gallery: the curve stays at 1 past the end of the list; rank20 is NaN for max_rank 10.
    res = evaluate(**one_query([.3, .2, .1], [1, 2, 3], [1, 1, 1]), max_rank=10)
    np.testing.assert_array_equal(res["cmc"], [0, 0, 1, 1, 1, 1, 1, 1, 1, 1])
    assert res["rank10"] == 1.0 and np.isnan(res["rank20"])


def test_same_signature_and_input_errors():
    ref, fast = inspect.signature(evaluate_rank_reference), inspect.signature(evaluate_rank)
    positional = [p for p in fast.parameters.values() if p.kind != p.KEYWORD_ONLY]
    assert [(p.name, p.default) for p in positional] == [(p.name, p.default) for p in ref.parameters.values()]
    with pytest.raises(ValueError, match="q_pids"):
        evaluate_rank(np.zeros((2, 3)), np.array([1]), np.array([1, 2, 3]), np.array([0, 0]), np.zeros(3, int))
    with pytest.raises(ValueError, match="integer"):
        evaluate_rank(np.zeros((1, 2)), np.array([1.5]), np.array([1, 2]), np.array([0]), np.array([1, 1]))
    with pytest.raises(ValueError, match="NaN"):
        evaluate_rank(np.full((1, 2), np.nan), np.array([1]), np.array([1, 2]), np.array([0]), np.array([1, 1]))


# ----------------------------------------------------------------------------- fast == reference

def random_problem(seed: int, dtype=np.float64, ties: bool = False):
    rng = np.random.default_rng(seed)
    nq, ng = int(rng.integers(20, 90)), int(rng.integers(30, 300))
    n_ids, n_cams = int(rng.integers(2, 12)), int(rng.integers(2, 5))
    dist = rng.integers(0, 6, (nq, ng)) if ties else rng.random((nq, ng))
    return (dist.astype(dtype), rng.integers(0, n_ids, nq), rng.integers(0, n_ids, ng),
            rng.integers(0, n_cams, nq), rng.integers(0, n_cams, ng))


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ties", [False, True], ids=["distinct", "ties"])
@pytest.mark.parametrize("dense", [0.0, 2.0], ids=["dense-bins", "candidate-lists"])
def test_fast_equals_reference_on_random_problems(seed, dtype, ties, dense, monkeypatch):
    monkeypatch.setattr(rank_mod, "BLOCK_ELEMENTS", 600)  # several blocks per chunk
    monkeypatch.setattr(rank_mod, "HIST_BINS", 16)  # crowded bins: the exact in-bin sort matters
    monkeypatch.setattr(rank_mod, "DENSE_FRACTION", dense)  # both ways of binning the candidates
    args = random_problem(seed, dtype, ties)
    if seed % 4 == 3:  # infinite and negative distances rank like any others
        args[0][args[0] > 0.9 * args[0].max()] = np.inf
        args[0][:, ::7] -= 3
    try:
        ref = evaluate_rank_reference(*args, max_rank=20)
    except NoValidQueryError:
        pytest.skip("random problem without a valid query")
    for chunk in (7, 13, len(args[0]) + 1):  # 7 and 13 do not divide Q in general
        assert_same(ref, evaluate_rank(*args, max_rank=20, chunk_size=chunk))
    assert_same(ref, evaluate_rank(torch.from_numpy(args[0]), *args[1:], max_rank=20))


def test_ranking_restores_the_torch_thread_count(monkeypatch):
    monkeypatch.setattr(rank_mod, "RANK_CPU_THREADS", 1)
    before = torch.get_num_threads()
    seen = []
    real = rank_mod._rank_block
    monkeypatch.setattr(rank_mod, "_rank_block", lambda *a: seen.append(torch.get_num_threads()) or real(*a))
    evaluate_rank(*random_problem(0))
    assert torch.get_num_threads() == before and set(seen) == {1}


def test_rank_stats_merge_is_the_union_of_query_sets():
    dist, qp, gp, qc, gc = random_problem(3)
    gallery = rank_mod.GalleryIndex.build(gp, gc)
    d, qpt, qct = torch.from_numpy(dist), torch.from_numpy(qp), torch.from_numpy(qc)
    whole = rank_mod.rank_stats(d, qpt, qct, gallery)
    head = rank_mod.rank_stats(d[:10], qpt[:10], qct[:10], gallery)
    parts = head + rank_mod.rank_stats(d[10:], qpt[10:], qct[10:], gallery)
    assert_same(whole.result(), parts.result())


# ----------------------------------------------------------------------------- distances and features

def random_features(seed: int, nq: int = 53, ng: int = 211, dim: int = 16):
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    ids = dict(q_pids=rng.integers(0, 9, nq), g_pids=rng.integers(0, 9, ng),
               q_camids=rng.integers(0, 3, nq), g_camids=rng.integers(0, 3, ng))
    return torch.randn(nq, dim, generator=gen), torch.randn(ng, dim, generator=gen), ids


def test_distances_match_their_definitions():
    qf, gf, _ = random_features(0)
    brute = ((qf[:, None, :] - gf[None, :, :]) ** 2).sum(-1)
    torch.testing.assert_close(pairwise_distance(qf, gf, chunk_size=10), brute, rtol=1e-5, atol=1e-4)
    qn, gn = torch.nn.functional.normalize(qf, dim=1), torch.nn.functional.normalize(gf, dim=1)
    cos = pairwise_distance(qf, gf, "cosine", chunk_size=7)
    torch.testing.assert_close(cos, 1 - qn @ gn.T)
    euc = pairwise_distance(qf, gf, "euclidean", normalize=True, chunk_size=7)
    torch.testing.assert_close(euc, ((qn[:, None] - gn[None]) ** 2).sum(-1), rtol=1e-5, atol=1e-5)
    # Normalised squared Euclidean is exactly 2 x cosine distance: same ranking, same ties.
    assert torch.equal(euc, 2 * cos)
    assert torch.equal(torch.sort(euc, stable=True).indices, torch.sort(cos, stable=True).indices)
    with pytest.raises(ValueError, match="metric"):
        pairwise_distance(qf, gf, "manhattan")


@pytest.mark.parametrize("metric,normalize", [("euclidean", True), ("euclidean", False), ("cosine", False)])
def test_chunked_evaluate_features_equals_full_matrix(metric, normalize):
    qf, gf, ids = random_features(1)
    full = pairwise_distance(qf, gf, metric, normalize, chunk_size=10_000)
    ref = evaluate_rank_reference(full, ids["q_pids"], ids["g_pids"], ids["q_camids"], ids["g_camids"])
    for chunk in (7, 20, 1000):
        res = evaluate_features(qf, gf, ids["q_pids"], ids["g_pids"], ids["q_camids"], ids["g_camids"],
                                cfg=EvalCfg(metric=metric, feat_norm=normalize, chunk_size=chunk))
        assert_same(ref, res)
    cos = evaluate_features(qf, gf, **ids, cfg=EvalCfg(metric="cosine"))
    assert_same(cos, evaluate_features(qf, gf, **ids, cfg=EvalCfg(metric="euclidean", feat_norm=True)))


def test_extract_features_batches_flip_and_labels():
    imgs = torch.arange(5 * 3 * 2 * 4, dtype=torch.float32).reshape(5, 3, 2, 4)
    loader = [{"img": imgs[s:s + 2], "pid": torch.tensor([7, 8, 9, 10, 11][s:s + 2]),
               "camid": torch.tensor([0, 1, 0, 1, 0][s:s + 2]),
               "key": [f"d/{i}.jpg" for i in range(s, min(s + 2, 5))]}
              for s in range(0, 5, 2)]
    top_left = lambda x: x[:, :, 0, 0]  # noqa: E731 - not flip-invariant on purpose
    out = extract_features(top_left, loader, "cpu", progress=False)
    assert out["feats"].shape == (5, 3) and out["feats"].dtype == torch.float32
    torch.testing.assert_close(out["feats"], imgs[:, :, 0, 0])
    np.testing.assert_array_equal(out["pids"], [7, 8, 9, 10, 11])
    np.testing.assert_array_equal(out["camids"], [0, 1, 0, 1, 0])
    assert out["keys"] == [f"d/{i}.jpg" for i in range(5)]
    flipped = extract_features(top_left, loader, torch.device("cpu"), flip=True, progress=False)
    torch.testing.assert_close(flipped["feats"], (imgs[:, :, 0, 0] + imgs[:, :, 0, -1]) / 2)
    with pytest.raises(ValueError, match=r"\[B, D\]"):
        extract_features(lambda x: x, loader, "cpu", progress=False)


# ----------------------------------------------------------------------------- re-ranking

def line_problem():
    """1-D toy: query q at 0; gallery x=0.9 (pid 2) with its own tight group x1..x3 at 1.5, 1.6,
    1.7 (pid 2); the true match t=-1.0 (pid 1) with its group t2, t3 at -1.1, -1.2 (pid 1)."""
    pos = np.array([0.0, 0.9, 1.5, 1.6, 1.7, -1.0, -1.1, -1.2])
    d = (pos[:, None] - pos[None, :]) ** 2  # squared Euclidean
    q_pids, g_pids = np.array([1]), np.array([2, 2, 2, 2, 1, 1, 1])
    return d[:1, 1:], d[:1, :1], d[1:, 1:], q_pids, g_pids


def test_rerank_fixes_a_ranking_on_a_hand_made_line():
    # Originally x (d = 0.81) beats t (d = 1.00): R1 = 0. With k1 = 3 (4 nearest, self included):
    #   N(q) = {q, x, t, t2}; N(x) = {x, x1, x2, x3} does not contain q -> x not in R(q).
    #   N(t) = {t, t2, t3, q} contains q -> t in R(q); R(x) and R(q) share nothing -> d_J(q, x) = 1,
    #   while q and t share t, t2 -> d_J(q, t) < 1 and t moves ahead of x.
    qg, qq, gg, q_pids, g_pids = line_problem()
    cams = np.zeros(1, int), np.ones(7, int)
    assert evaluate_rank(qg, q_pids, g_pids, *cams)["rank1"] == 0.0
    new = re_ranking(qg, qq, gg, k1=3, k2=1, lambda_value=0.3, variant="paper")
    assert new.shape == qg.shape and new.dtype == qg.dtype
    assert new[0, 0] == pytest.approx(0.7 * 1.0 + 0.3 * 0.81)  # x: Jaccard distance exactly 1
    assert np.argmin(new[0]) == 4
    assert evaluate_rank(new, q_pids, g_pids, *cams)["rank1"] == 1.0
    # the default variant: the same neighbour sets, distances over the query column's maximum (1.7^2)
    new = re_ranking(qg, qq, gg, k1=3, k2=1, lambda_value=0.3)
    assert new.dtype == np.float32 and np.argmin(new[0]) == 4
    assert new[0, 0] == pytest.approx(0.7 * 1.0 + 0.3 * 0.81 / 2.89, rel=1e-6)


def test_rerank_lambda_one_determinism_and_size_guard():
    qf, gf, ids = random_features(2, nq=15, ng=40)
    qg = pairwise_distance(qf, gf, normalize=True).numpy()
    qq = pairwise_distance(qf, qf, normalize=True).numpy()
    gg = pairwise_distance(gf, gf, normalize=True).numpy()
    np.testing.assert_array_equal(re_ranking(qg, qq, gg, lambda_value=1.0, variant="paper"), qg)
    a, b = re_ranking(qg, qq, gg), re_ranking(qg, qq, gg)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (15, 40) and np.isfinite(a).all()
    assert_same(evaluate_features(qf, gf, **ids, cfg=EvalCfg(rerank=True)),
                evaluate_rank(a, ids["q_pids"], ids["g_pids"], ids["q_camids"], ids["g_camids"]))
    with pytest.raises(RerankTooLargeError, match="GiB"):
        re_ranking(qg, qq, gg, max_n=50)
    with pytest.raises(RerankTooLargeError, match="11659 queries x 82161"):
        evaluate_features(torch.zeros(11659, 2), torch.zeros(82161, 2), np.zeros(11659, int),
                          np.zeros(82161, int), np.zeros(11659, int), np.zeros(82161, int),
                          cfg=EvalCfg(rerank=True))


# ----------------------------------------------------------------------------- splits and benchmark

def test_average_results_mean_and_std():
    r1 = {"mAP": 0.5, "rank1": 0.6, "cmc": np.array([0.6, 1.0]), "num_valid_queries": 10, "note": "x"}
    r2 = {"mAP": 0.7, "rank1": 0.8, "cmc": np.array([0.8, 1.0]), "num_valid_queries": 20, "note": "y"}
    avg = average_results([r1, r2])
    assert avg["mAP"] == pytest.approx(0.6) and avg["mAP_std"] == pytest.approx(0.1)
    assert avg["rank1"] == pytest.approx(0.7) and avg["num_valid_queries"] == 15
    np.testing.assert_allclose(avg["cmc"], [0.7, 1.0])
    np.testing.assert_allclose(avg["cmc_std"], [0.1, 0.0], atol=1e-12)
    assert avg["num_splits"] == 2 and "note" not in avg
    with pytest.raises(ValueError, match="keys"):
        average_results([r1, {"mAP": 0.1}])
    with pytest.raises(ValueError, match="no results"):
        average_results([])


def test_bench_runs_at_tiny_scale(capsys):
    assert bench_main(["--scale", "tiny", "--dim", "8"]) == 0
    out = capsys.readouterr().out
    assert "| tiny |" in out and "peak RSS" in out


@pytest.mark.parametrize("seed", [0, 1])
def test_per_query_numpy_reference_from_features_matches_the_rank_reference(seed):
    from muva_lib.eval import evaluate_features_reference, pairwise_distance

    rng = np.random.default_rng(seed)
    qf, gf = rng.normal(size=(23, 16)).astype(np.float32), rng.normal(size=(71, 16)).astype(np.float32)
    q_pids, g_pids = rng.integers(0, 6, 23), rng.integers(0, 6, 71)
    q_cams, g_cams = rng.integers(0, 3, 23), rng.integers(0, 3, 71)
    dist = pairwise_distance(qf, gf, "euclidean", normalize=True).numpy()
    want = evaluate_rank_reference(dist, q_pids, g_pids, q_cams, g_cams)
    got = evaluate_features_reference(qf, gf, q_pids, g_pids, q_cams, g_cams)
    assert got["num_valid_queries"] == want["num_valid_queries"]
    for key in ("mAP", "mINP", "rank1", "rank5"):
        assert got[key] == pytest.approx(want[key], abs=1e-9)


# ----------------------------------------------------------------------------- classical protocols: 10-split mean

class MeanColour(torch.nn.Module):
    """A stand-in model whose test feature is each image's mean colour: [B, 3, H, W] -> [B, 3]."""

    def encode_image_for_eval(self, images, after_bn=True, with_hidden=False):
        return images.mean(dim=(2, 3))


def test_classical_protocol_reports_the_mean_of_its_10_splits_by_default(tmp_path):
    """Train once, evaluate every split: the default result is the mean (and std) over the 10 seeded
    splits of the target; data.split_index=k gives split k alone."""
    import readers_fakes as fakes
    from muva_lib.config import apply_overrides, resolve
    from muva_lib.data.protocols import build
    from muva_lib.data.readers import read_dataset
    from muva_lib.eval import evaluate_split
    from muva_lib.train.run_eval import evaluate_model, test_encoder

    roots = fakes.classical_roots(tmp_path, "viper", lambda root: fakes.recolour(fakes.viper_tree(root)))
    cfg = resolve("clipreid", "smoke", "classic->viper", overrides=["data.height=16", "data.width=8"])

    def metrics(cfg):
        data = build(cfg.data.protocol, roots=roots, split_index=cfg.data.split_index,
                     all_splits=cfg.data.all_splits, strict=cfg.data.strict)
        return evaluate_model(MeanColour(), data.targets, cfg, "cpu")["viper"]

    encode = test_encoder(MeanColour(), cfg, torch.device("cpu"))
    per_split = [evaluate_split(encode, read_dataset("viper", roots["viper"], split_index=k), cfg.data, cfg.eval,
                                "cpu") for k in range(10)]
    maps, r1s = np.array([r["mAP"] for r in per_split]), np.array([r["rank1"] for r in per_split])
    assert len(set(maps.round(9))) > 1  # the splits differ: their mean is no single split's number

    default = metrics(cfg)
    assert default["num_splits"] == 10 and default["splits"] == list(range(10))
    assert default["mAP"] == pytest.approx(maps.mean()) and default["mAP_std"] == pytest.approx(maps.std())
    assert default["rank1"] == pytest.approx(r1s.mean()) and default["rank1_std"] == pytest.approx(r1s.std())

    one = metrics(apply_overrides(cfg, {"data.split_index": 3}))
    assert one["num_splits"] == 1 and one["splits"] == [3] and "mAP_std" not in one
    assert one["mAP"] == pytest.approx(maps[3]) and one["rank1"] == pytest.approx(r1s[3])


def test_metrics_rows_show_the_spread_over_splits():
    from muva_lib.train.run_eval import metrics_rows

    ten = {"mAP": 0.5, "mAP_std": 0.1, "rank1": 0.625, "rank1_std": 0.05, "rank5": 1.0, "rank5_std": 0.0,
           "rank10": 1.0, "rank10_std": 0.0, "mINP": 0.25, "mINP_std": 0.125, "num_splits": 10}
    one = {"mAP": 0.25, "rank1": 0.5, "rank5": 0.75, "rank10": 1.0, "mINP": 0.125, "num_splits": 1}
    assert metrics_rows({"viper": ten, "synth-b": one}) == [
        {"target": "viper", "splits": "10", "mAP": "50.0 ± 10.0", "rank1": "62.5 ± 5.0", "rank5": "100.0 ± 0.0",
         "rank10": "100.0 ± 0.0", "mINP": "25.0 ± 12.5"},
        {"target": "synth-b", "splits": "1", "mAP": "25.0", "rank1": "50.0", "rank5": "75.0", "rank10": "100.0",
         "mINP": "12.5"}]
