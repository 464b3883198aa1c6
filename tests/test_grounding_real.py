"""The real-image VGE backends: ``cascade`` (OpenCV Haar) and ``pose`` (mediapipe) on real crops of vtest.avi."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from muva_lib.data.types import PARTS
from muva_lib.grounding.backends import get_backend
from muva_lib.grounding.backends.cascade import agreement_rows, boxes_from_windows, vertical_order
from muva_lib.grounding.backends.pose import boxes_from_keypoints, coarse_parsing, pose_missing

# ----------------------------------------------------------------------------- pure rules


def _upright_keypoints(vis: float = 0.9) -> np.ndarray:
    """BlazePose keypoints [33, 3] of a person standing in a 128 x 256 crop."""
    kp = np.zeros((33, 3))
    kp[:, 2] = vis
    kp[0:11, :2] = [64, 50]  # face
    kp[7, :2], kp[8, :2] = [56, 50], [72, 50]  # ears
    kp[11, :2], kp[12, :2] = [48, 75], [80, 75]  # shoulders
    kp[13:23, :2] = [[44, 100], [84, 100], [44, 125], [84, 125]] + [[44, 128]] * 6  # arms, hands
    kp[23, :2], kp[24, :2] = [54, 130], [74, 130]  # hips
    kp[25, :2], kp[26, :2] = [54, 175], [74, 175]  # knees
    kp[27:33, :2] = [[54, 215], [74, 215], [52, 220], [76, 220], [58, 225], [70, 225]]  # ankles, heels, toes
    return kp


def test_keypoint_rules_give_head_above_upper_above_legs():
    boxes, why = boxes_from_keypoints(_upright_keypoints(), (128, 256))
    assert vertical_order(boxes) is True
    head, upper, legs = (boxes[p] for p in PARTS)
    assert head[1] < 50 < head[3] <= 75 and head[0] < 56 and head[2] > 72  # hair above, ears inside
    assert upper[1] < 75 and upper[3] == 130 and legs[1] == 130 and legs[3] > 220
    assert why == {"head": "face points + shoulders", "upper": "shoulders to hips", "legs": "hips to ankles"}


def test_keypoint_rules_fall_back_on_invisible_points_and_extend_shins_from_knees():
    kp = _upright_keypoints()
    kp[27:33, 2] = 0.1  # feet cut off by the crop
    kp[0:11, 2] = 0.1  # back view: no face points
    boxes, why = boxes_from_keypoints(kp, (128, 256))
    assert boxes["head"] is None and "not visible" in why["head"]
    assert boxes["legs"][3] == pytest.approx(175 + 45) and why["legs"].startswith("hips to knees")
    none, why = boxes_from_keypoints(None, (128, 256))
    assert all(b is None for b in none.values()) and set(why.values()) == {"no person found by the pose model"}


def test_cascade_rules_derive_parts_from_windows():
    win = {"face": None, "upperbody": ((20.0, 20.0, 100.0, 88.0), 1.5), "lowerbody": ((14.0, 110.0, 114.0, 230.0), 1.0),
           "fullbody": None}
    boxes, why = boxes_from_windows(win)
    assert boxes["head"] == (40.0, 20.0, 80.0, pytest.approx(20 + 0.45 * 68)) and why["head"] == "upperbody top"
    hips = 110 + 0.2 * 120
    assert boxes["upper"] == (20.0, pytest.approx(20 + 0.55 * 68), 100.0, pytest.approx(hips))
    assert boxes["legs"] == (14.0, pytest.approx(hips), 114.0, 230.0)
    assert vertical_order(boxes) is True
    boxes, why = boxes_from_windows({"face": None, "upperbody": None, "lowerbody": None,
                                     "fullbody": ((20.0, 10.0, 100.0, 230.0), 1.0)})
    assert boxes["head"] is None and boxes["upper"] is None and boxes["legs"] == (20.0, 120.0, 100.0, 230.0)
    assert why["upper"] == "no upper-body window"


def test_coarse_parsing_cuts_the_person_mask_at_the_part_boundaries():
    mask = np.zeros((256, 128), dtype=bool)
    mask[30:230, 40:90] = True
    boxes, _ = boxes_from_keypoints(_upright_keypoints(), (128, 256))
    parsing = coarse_parsing(mask, boxes)
    assert parsing.dtype == np.uint8 and set(np.unique(parsing)) == {0, 1, 2, 3}
    assert (parsing[~mask] == 0).all() and parsing[40, 60] == 1 and parsing[100, 60] == 2 and parsing[200, 60] == 3
    assert (coarse_parsing(mask, {p: None for p in PARTS})[[30, 100, 200], 60] == [1, 2, 3]).all()


def test_pose_missing_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "mediapipe", None)
    monkeypatch.setitem(sys.modules, "mediapipe.python", None)
    monkeypatch.setitem(sys.modules, "mediapipe.python.solutions", None)
    assert "pip install --no-deps mediapipe==0.10.14" in pose_missing()


# ----------------------------------------------------------------------------- on real crops


@pytest.fixture(scope="module")
def real_crops(real_vtest_small):
    """Every crop of the small real set (train, query, gallery), as items and opened images."""
    from muva_lib.data.readers import read_dataset

    split = read_dataset("real-vtest", root=real_vtest_small.root)
    items = sorted((*split.train, *split.query, *split.gallery), key=lambda it: it.relpath)
    images = [Image.open(it.path) for it in items]
    yield items, images
    for im in images:
        im.close()


@pytest.fixture(scope="module")
def cascade_answers(real_crops):
    items, images = real_crops
    return get_backend("cascade").ground(images, items)


@pytest.fixture(scope="module")
def pose_backend():
    """The pose backend (skipped, with what to install, without mediapipe)."""
    missing = pose_missing()
    if missing:
        pytest.skip(missing)
    backend = get_backend("pose")
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def pose_answers(real_crops, pose_backend):
    items, images = real_crops
    return pose_backend.ground(images, items)


def _check_backend(name, answers, images, min_all_parts, min_order):
    """Boxes inside the image; the share of crops with every part, and of those in upright order."""
    for im, ans in zip(images, answers):
        w, h = im.size
        for a in ans.values():
            if a.status == "ok":
                x0, y0, x1, y1 = a.box
                assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, (name, a)
    boxes = [{p: a.box for p, a in ans.items()} for ans in answers]
    order = [vertical_order(b) for b in boxes]
    complete = [o for o in order if o is not None]
    all_parts, upright = len(complete) / len(order), float(np.mean(complete)) if complete else 0.0
    print(f"\n{name}: {len(order)} real crops, every part found in {all_parts:.3f}, "
          f"head above upper above legs in {upright:.3f} of those")
    assert all_parts >= min_all_parts and upright >= min_order
    return boxes


def test_cascade_on_real_crops(real_crops, cascade_answers):
    _check_backend("cascade", cascade_answers, real_crops[1], min_all_parts=0.2, min_order=0.8)


def test_pose_on_real_crops(real_crops, pose_answers):
    _check_backend("pose", pose_answers, real_crops[1], min_all_parts=0.8, min_order=0.9)


def test_pose_agrees_with_cascade_and_prior(real_crops, pose_answers, cascade_answers):
    from muva_lib.grounding.backends.prior import prior_box

    images = real_crops[1]
    pose = [{p: a.box for p, a in ans.items()} for ans in pose_answers]
    cascade = [{p: a.box for p, a in ans.items()} for ans in cascade_answers]
    prior = [{p: prior_box(p, im.size) for p in PARTS} for im in images]
    for other, rows in (("cascade", agreement_rows(pose, cascade)), ("prior", agreement_rows(pose, prior))):
        print(f"\npose vs {other}: " + "; ".join(
            f"{r['part']} n={r['both']} IoU {r['IoU']:.3f} agree(IoU>=0.3) {r['agree']:.3f} "
            f"vertical IoU {r['vertical IoU']:.3f}" for r in rows))
        legs = rows[-1]
        assert legs["both"] > 0 and legs["vertical IoU"] >= 0.5  # both put the legs in the lower half


@pytest.mark.parametrize("name", ["cascade", "pose"])
def test_real_backends_go_through_store_calibration_and_masks(real_crops, tmp_path, name, request):
    from muva_lib.grounding import GroundingStore, calibrate_store, ground_items, store_masks

    items, _ = real_crops
    backend = request.getfixturevalue("pose_backend") if name == "pose" else get_backend(name)
    (report,) = ground_items(items, backend, root=tmp_path, progress=False)
    assert report.grounded == len(items) and sum(report.totals().values()) == 3 * len(items)
    store = GroundingStore(items[0].dataset, backend.tag, tmp_path)
    cal = calibrate_store(store)
    assert set(cal.boxes) == {it.key for it in items}
    assert all(r == "ok" or "->" in r for per in cal.reasons.values() for r in per.values())
    masks = store_masks(store, (16, 8))
    assert {m.shape for m in masks.values()} == {(3, 128)} and all(m.any(axis=1).all() for m in masks.values())
    assert ground_items(items, backend, root=tmp_path, progress=False)[0].skipped == len(items)


def test_pose_person_mask_gives_a_coarse_parsing(real_crops, pose_backend):
    images = real_crops[1]
    res = pose_backend.analyse(images[0])
    assert res.keypoints.shape == (33, 3) and res.mask.shape == images[0].size[::-1]
    boxes, _ = boxes_from_keypoints(res.keypoints, images[0].size)
    parsing = coarse_parsing(res.mask, boxes)
    share = [(parsing == c).mean() for c in (1, 2, 3)]
    print(f"\npose person mask: {res.mask.mean():.3f} of the crop; head / upper / legs {np.round(share, 3).tolist()}")
    assert 0.05 < res.mask.mean() < 0.8 and all(s > 0 for s in share)
