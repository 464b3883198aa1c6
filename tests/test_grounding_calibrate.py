"""Calibration: hand-computed statistics and fixes, reason codes, and the IoU gain on the synthetic benchmark."""
from __future__ import annotations

import pytest

from muva_lib.grounding.backends.prior import PRIOR_BANDS
from muva_lib.grounding.calibrate import (CalibCfg, CalibStats, PartStats, calibrate_image, calibrate_many, fit_stats,
                                          mean_iou, shorth)

SIZE = (100, 100)  # W, H: pixels equal hundredths


def legs_dataset():
    """21 images whose legs go from top 0.40..0.60 (step 0.01) to bottom 0.95, x 0.2..0.8."""
    return [{"legs": (20.0, 40.0 + i, 80.0, 95.0)} for i in range(21)], [SIZE] * 21


def test_fit_stats_quartiles_fences_and_band():
    boxes, sizes = legs_dataset()
    st = fit_stats(boxes, sizes, CalibCfg(), parts=("legs",)).parts["legs"]
    assert st.n == 21 and not st.from_prior
    assert st.core["top"] == pytest.approx((0.45, 0.50, 0.55))
    assert st.core["height"] == pytest.approx((0.40, 0.45, 0.50))
    assert st.core["bottom"] == pytest.approx((0.95, 0.95, 0.95))
    cfg = CalibCfg()
    assert st.fence("height", cfg) == pytest.approx((0.25, 0.65))  # 0.40 - 1.5*0.1, 0.50 + 1.5*0.1
    assert st.fence("top", cfg) == pytest.approx((0.30, 0.70))
    assert st.fence("bottom", cfg) == pytest.approx((0.90, 1.00))  # no spread: +-min_spread
    assert st.fence("width", cfg) == pytest.approx((0.55, 0.65))
    assert st.band == pytest.approx((0.2, 0.5, 0.8, 0.95))


def test_band_is_the_median_of_inliers_only():
    boxes, sizes = legs_dataset()
    boxes += [{"legs": (0.0, 1.0, 100.0, 99.0)}] * 5  # whole-person boxes do not move the band
    st = fit_stats(boxes, sizes + [SIZE] * 5, CalibCfg(), parts=("legs",)).parts["legs"]
    assert st.band == pytest.approx((0.2, 0.5, 0.8, 0.95))


def test_few_samples_fall_back_to_the_fixed_prior():
    st = fit_stats([{"legs": (20.0, 50.0, 80.0, 95.0)}] * 3, [SIZE] * 3, CalibCfg(min_samples=20),
                   parts=("legs",)).parts["legs"]
    assert st.from_prior and st.n == 3 and st.band == PRIOR_BANDS["legs"]


def test_fit_stats_checks_lengths():
    with pytest.raises(ValueError, match="sizes"):
        fit_stats([{"legs": None}], [], parts=("legs",))


@pytest.mark.parametrize("box, expected, reason", [
    (None, (20, 50, 80, 95), "missing->prior"),
    ((20, 2, 80, 98), (20, 50, 80, 95), "oversized->band"),  # h 0.96 > 0.65: clipped into the band
    ((0, 2, 100, 98), (20, 50, 80, 95), "oversized->band+width->band"),  # whole person, too wide too
    ((20, 80, 80, 95), (20, 50, 80, 95), "oversplit->band"),  # h 0.15 < 0.25: extended over the band
    ((30, 60, 70, 75), (20, 50, 80, 95), "oversplit->band+width->band"),  # width 0.4 -> 0.6 around x 0.5
    ((20, 35, 80, 85), (20, 50, 80, 95), "out-of-band->band"),  # bottom 0.85 below its fence 0.90
    ((25, 45, 85, 93), (25, 45, 85, 93), "ok"),
    ((0, 45, 100, 93), (0, 45, 100, 93), "ok"),  # an ok box keeps its horizontal extent
])
def test_calibrate_legs(box, expected, reason):
    boxes, sizes = legs_dataset()
    stats = fit_stats(boxes, sizes, parts=("legs",))
    out, why = calibrate_image({"legs": box}, SIZE, stats, parts=("legs",))["legs"]
    assert out == pytest.approx(expected) and why == reason


def test_oversized_that_leaves_too_little_becomes_the_band():
    stats = fit_stats(*legs_dataset(), parts=("legs",))
    # tall box (h 0.7) mostly above the band: clipping leaves 0.50..0.72 = 0.22 < 0.25 -> band
    out, why = calibrate_image({"legs": (20, 2, 80, 72)}, SIZE, stats, parts=("legs",))["legs"]
    assert why == "oversized->band" and out == pytest.approx((20, 50, 80, 95))


def _hand_stats(k_wide: bool = True) -> CalibStats:
    def ps(band):
        x0, y0, x1, y1 = band
        q = {"top": y0, "bottom": y1, "height": y1 - y0, "width": x1 - x0}
        return PartStats(50, False, {n: (v - 0.05, v, v + 0.05) for n, v in q.items()}, band)
    return CalibStats({"head": ps((0.4, 0.0, 0.6, 0.2)), "upper": ps((0.2, 0.2, 0.8, 0.6)),
                       "legs": ps((0.2, 0.5, 0.8, 0.95))})


def test_out_of_order_parts():
    cfg = CalibCfg(fence_k=20.0)  # fences so wide that only the order check can object
    boxes = {"head": (40, 60, 60, 80), "upper": (20, 20, 80, 50), "legs": (20, 50, 80, 95)}
    out = calibrate_image(boxes, SIZE, _hand_stats(), cfg)
    assert out["head"] == (pytest.approx((40, 0, 60, 20)), "out-of-order->band")
    assert out["upper"][1] == "ok" and out["legs"][1] == "ok"


def test_swapped_parts_are_caught_by_their_bands():
    boxes = {"head": (20, 20, 80, 60), "upper": (40, 0, 60, 20), "legs": (20, 50, 80, 95)}
    out = calibrate_image(boxes, SIZE, _hand_stats())
    assert out["head"][1].startswith("o") and out["upper"][1].startswith("o")
    assert out["head"][0] == pytest.approx((40, 0, 60, 20)) and out["upper"][0] == pytest.approx((20, 20, 80, 60))


def test_stats_round_trip_and_cfg_validation():
    stats = _hand_stats()
    assert CalibStats.from_dict(stats.to_dict()) == stats
    with pytest.raises(ValueError, match="core"):
        CalibCfg(core="mean")


def test_shorth():
    assert shorth([0.1, 0.2, 0.21, 0.22, 0.9]) == pytest.approx((0.2, 0.21, 0.22))


def test_shorth_core_resists_one_sided_contamination():
    boxes, sizes = legs_dataset()
    boxes += [{"legs": (20.0, 2.0, 80.0, 98.0)}] * 15  # 40 % whole-person boxes
    sizes += [SIZE] * 15
    quart = calibrate_many(boxes, sizes, CalibCfg(), parts=("legs",))[1]
    short = calibrate_many(boxes, sizes, CalibCfg(core="shorth"), parts=("legs",))[1]
    assert sum(r["legs"][1] == "oversized->band" for r in quart) == 0  # quartiles break down
    assert sum(r["legs"][1] == "oversized->band" for r in short) == 15


def test_mean_iou_by_hand():
    truth = {"a": {"head": (0, 0, 10, 20), "legs": None}, "b": {"head": (0, 0, 10, 10), "legs": (0, 0, 5, 5)}}
    pred = {"a": {"head": (0, 0, 10, 10), "legs": (0, 0, 1, 1)}, "b": {"head": None, "legs": (0, 0, 5, 5)}}
    out = mean_iou(pred, truth, parts=("head", "legs"))
    assert out["head"] == (pytest.approx(0.25), 2)  # (0.5 + 0) / 2
    assert out["legs"] == (pytest.approx(1.0), 1)  # the invisible part of "a" is not counted


@pytest.fixture(scope="module")
def synth_iou(synth_small, tmp_path_factory):
    """Raw vs calibrated IoU rows on synth-a's training split, per noise preset."""
    from muva_lib.data.readers import read_dataset
    from muva_lib.grounding import GroundingStore, calibrate_store, get_backend, ground_items
    from muva_lib.grounding import store_iou

    root = tmp_path_factory.mktemp("grounding")
    items = list(read_dataset("synth-a", root=synth_small.root / "synth-a").train)
    out = {}
    for noise in ("none", "paper", "heavy"):
        backend = get_backend("synthetic", noise=noise)
        ground_items(items, backend, root=root, progress=False)
        store = GroundingStore("synth-a", backend.tag, root)
        out[noise] = {r["part"]: r for r in store_iou(store, items, calibrate_store(store))}
    return out


@pytest.mark.parametrize("noise", ["paper", "heavy"])
def test_calibration_raises_mean_iou_per_part_on_the_synthetic_benchmark(synth_iou, noise):
    rows = synth_iou[noise]
    for part in ("head", "upper", "legs", "mean"):
        assert rows[part]["calibrated"] > rows[part]["raw"] + 0.005, (part, rows[part])
    assert rows["legs"]["gain"] > 0.05  # the legs carry the paper's failure modes


def test_calibration_leaves_clean_boxes_alone(synth_iou):
    rows = synth_iou["none"]
    assert rows["mean"]["raw"] > 0.98 and rows["mean"]["calibrated"] > rows["mean"]["raw"] - 0.01
