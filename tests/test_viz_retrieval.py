"""Ranked-list figure: green / red frames, short lists, byte-stable output; per-query AP and the best / median / worst picks."""
from __future__ import annotations

from types import SimpleNamespace

import matplotlib.pyplot as plt
import numpy as np
import pytest

from muva_lib.viz import retrieval as vr
from muva_lib.viz import save_figure


def test_ranked_lists_frames_and_bytes(tmp_path, fake_items):
    paths = [it.path for it in fake_items(4)]
    gallery = [[paths[1], paths[2], paths[3]], [paths[2], None, None]]
    matches = np.array([[True, False, True], [False, False, False]])
    fig = vr.ranked_lists([paths[0], paths[1]], gallery, matches, labels=["AP 0.83", "AP 0.00"])
    assert fig.number not in plt.get_fignums()
    rows = np.array(fig.axes).reshape(2, 5)
    assert rows[0][2].spines["top"].get_edgecolor()[:3] == pytest.approx((0x2c / 255, 0xa0 / 255, 0x2c / 255))
    assert rows[0][3].spines["top"].get_edgecolor()[:3] == pytest.approx((0xd6 / 255, 0x27 / 255, 0x28 / 255))
    assert not rows[1][3].axison  # the list of query 2 is shorter
    a = save_figure(fig, "t", "r", out_dir=tmp_path / "a").read_bytes()
    assert a == save_figure(fig, "t", "r", out_dir=tmp_path / "b").read_bytes()
    with pytest.raises(ValueError):
        vr.ranked_lists([paths[0]], gallery, matches)


def test_average_precisions_by_hand():
    match = np.array([[True, False, True, False],    # precisions 1/1 and 2/3 at the hits
                      [False, False, False, False],  # no true match
                      [False, True, False, False]])  # 1/2
    ap = vr.average_precisions(match)
    assert ap[0] == pytest.approx((1 + 2 / 3) / 2) and np.isnan(ap[1]) and ap[2] == pytest.approx(0.5)
    assert vr.first_match_ranks(match).tolist() == [1, 0, 2]
    with pytest.raises(ValueError, match="Bool"):
        vr.average_precisions(np.zeros((2, 0), bool))


def test_average_precisions_agree_with_the_evaluator():
    from muva_lib.analysis import ranked_gallery
    from muva_lib.eval import evaluate_rank_reference

    rng = np.random.default_rng(0)
    q_pids, g_pids = rng.integers(0, 6, 12), rng.integers(0, 6, 40)
    q_cams, g_cams = rng.integers(0, 3, 12), rng.integers(0, 3, 40)
    dist = rng.random((12, 40))
    _, match = ranked_gallery(dist, q_pids, g_pids, q_cams, g_cams, topk=40)
    ref = evaluate_rank_reference(dist, q_pids, g_pids, q_cams, g_cams)
    ap = vr.average_precisions(match)
    assert int((~np.isnan(ap)).sum()) == ref["num_valid_queries"]
    assert np.nanmean(ap) == pytest.approx(ref["mAP"])


def test_pick_by_ap_best_median_worst_ties_by_lower_index():
    ap = [0.5, float("nan"), 0.9, 0.1, 0.5, 0.9]  # ranked: 2, 5 (tie 0.9), 0, 4 (tie 0.5), 3; 1 has no match
    assert vr.pick_by_ap(ap) == [2, 0, 3]
    assert vr.pick_by_ap([0.2, 0.4, 0.6, 0.8]) == [3, 2, 0]  # even count: the upper of the middle two
    assert vr.pick_by_ap([0.2, 0.4, 0.6, 0.8], n=1) == [3]
    assert vr.pick_by_ap([0.3, 0.3, 0.3]) == [0, 1, 2]
    assert vr.pick_names(3) == ["best", "median", "worst"]
    assert vr.pick_names(4) == ["best", "pick 2/4", "pick 3/4", "worst"]
    with pytest.raises(ValueError, match="3 queries asked, 2 of 3 have a true match"):
        vr.pick_by_ap([0.5, float("nan"), 0.2])


def test_ranked_by_ap_labels_each_row(fake_items):
    items = fake_items(6)
    queries, gallery = items[:4], items[4:] + items[:2]
    # whole ranked lists of 6 gallery items; APs 1.0, 0.25 (first match at rank 4), none, 0.5
    match = np.zeros((4, 6), bool)
    match[0, 0] = match[1, 3] = match[3, 1] = True
    index = np.tile(np.arange(6), (4, 1))
    probe = SimpleNamespace(queries=queries, gallery=gallery, index=index, match=match, target="fake")
    fig, picks, ap = vr.ranked_by_ap(probe, n=3, topk=3)
    assert picks == [0, 3, 1] and np.isnan(ap[2])
    rows = np.array(fig.axes).reshape(3, 5)
    assert [r[0].get_ylabel() for r in rows] == ["best AP = 1.00\nfirst match: rank 1",
                                                 "median AP = 0.50\nfirst match: rank 2",
                                                 "worst AP = 0.25\nfirst match: rank 4"]
    assert rows[1][0].get_xlabel() == "id 3 / c1"
    assert rows[1][3].spines["top"].get_edgecolor()[:3] == pytest.approx((0x2c / 255, 0xa0 / 255, 0x2c / 255))


def test_inverse_negative_penalties_by_hand():
    from muva_lib.viz.retrieval import inverse_negative_penalties

    inp = inverse_negative_penalties(np.array([[0, 1, 0, 1], [1, 0, 0, 0], [0, 0, 0, 0]], bool))
    assert inp[:2].tolist() == [0.5, 1.0] and np.isnan(inp[2])  # 2 matches, the last at rank 4; 1 at rank 1
    with pytest.raises(ValueError, match="Bool"):
        inverse_negative_penalties(np.zeros(3, bool))
