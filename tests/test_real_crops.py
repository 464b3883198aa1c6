"""The real-crop builder: HOG detection, NMS, IoU tracking, the split, the Market-layout folder, the reader."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from muva_lib.data.readers import DatasetError, read_dataset
from muva_lib.data.readers.reader import parse_market_name
from muva_lib.data.real import (RealCfg, TrackCfg, build_real_set, find_video, link, nms, plan_crops,
                                read_manifest, real_vtest_missing, split_frame)
from muva_lib.data.real.video import Detection

# ----------------------------------------------------------------------------- pure parts (no video)


def test_nms_keeps_the_best_of_each_group_whatever_the_input_order():
    boxes = np.array([[0, 0, 10, 20], [1, 1, 11, 21], [50, 0, 60, 20], [0, 0, 10, 20]], dtype=float)
    scores = np.array([0.5, 0.9, 0.3, 0.9])
    keep = nms(boxes, scores, 0.3)
    assert [boxes[i].tolist() for i in keep] == [[0, 0, 10, 20], [50, 0, 60, 20]]  # tie at 0.9: smaller coords
    perm = [3, 2, 1, 0]
    assert [boxes[perm][i].tolist() for i in nms(boxes[perm], scores[perm], 0.3)] == [b.tolist() for b in boxes[keep]]
    assert nms(np.zeros((0, 4)), np.zeros(0), 0.3) == []


def _walker(x0: int, colour: int) -> list[Detection]:
    """One detection per frame of a walker moving 4 px right per frame, with a one-hot signature."""
    sig = np.zeros(8)
    sig[colour] = 1.0
    return [Detection((x0 + 4 * f, 10, x0 + 4 * f + 40, 110), 1.0, sig) for f in range(12)]


def test_link_follows_walkers_and_colour_keeps_crossing_tracks_apart():
    a, b = _walker(0, 0), _walker(44, 1)
    frames = [(f, [a[f], b[f]]) for f in range(12)]
    tracks, counts = link(frames, TrackCfg(min_len=5, min_motion=0.2))
    assert counts["kept"] == 2 and [t.boxes for t in tracks] == [[d.box for d in a], [d.box for d in b]]
    # from frame 6 on, b walks right in front of a (2 px left of a's box): IoU alone swaps a's track
    # onto b, the colour gate keeps it on a
    def front(f: int) -> Detection:
        x0, y0, x1, y1 = a[f].box
        return Detection((x0 - 2, y0, x1 - 2, y1), 1.0, b[f].signature)

    crossed = frames[:6] + [(f, [a[f], front(f)]) for f in range(6, 12)]
    iou_only = link(crossed, TrackCfg(min_len=5, min_motion=0.2, min_similarity=0.0, min_anchor_similarity=0.0))[0]
    assert iou_only[0].boxes[6] == front(6).box and iou_only[0].boxes != [d.box for d in a]
    gated = link(crossed, TrackCfg(min_len=5, min_motion=0.2))[0]
    assert gated[0].boxes == [d.box for d in a]


def test_link_drops_short_and_static_tracks():
    still = Detection((100, 10, 140, 110), 1.0)
    frames = [(f, [still] + ([Detection((0, 0, 40, 100), 1.0)] if f < 2 else [])) for f in range(10)]
    tracks, counts = link(frames, TrackCfg(min_len=3))
    assert tracks == [] and counts == {"tracks": 2, "too_short": 1, "static": 1, "kept": 0}


def test_split_and_plan_keep_train_and_test_identities_apart():
    def track(start: int, n: int, x: int = 0):
        dets = [(f, [Detection((x + 8 * k, 0, x + 8 * k + 40, 100), 1.0)])
                for k, f in enumerate(range(start, start + n))]
        return link(dets, TrackCfg(min_len=3, min_motion=0.1))[0][0]

    tracks = [track(0, 40), track(30, 50, 300), track(60, 40)]
    frames = list(range(100))
    s = split_frame(tracks, frames)
    assert 40 <= s <= 60 and sum(t.start < s <= t.end for t in tracks) == 1
    crops, counts = plan_crops(tracks, s, RealCfg())
    assert counts == {"train_tracklets": 1, "test_tracklets": 1, "crossing_dropped": 1}
    by = {sub: [c for c in crops if c.subset == sub] for sub in ("train", "query", "gallery")}
    assert {c.pid for c in by["train"]} == {1} and {c.pid for c in by["query"] + by["gallery"]} == {3}
    assert len(by["query"]) == 2 and {c.camera for c in by["query"]} == {1}
    far = [c for c in by["gallery"] if c.camera == 2]
    assert len(far) == 4 and min(c.frame for c in far) - max(c.frame for c in by["query"]) >= 0.2 * 40
    assert sum(c.camera == 1 for c in by["gallery"]) == 1  # the same-camera distractor
    assert [c.relpath for c in crops] == sorted(c.relpath for c in crops)


def test_missing_video_names_the_package_to_install(tmp_path, capsys, monkeypatch):
    with pytest.raises(DatasetError, match="apt-get install -y opencv-doc"):
        find_video(tmp_path / "nope.avi")
    import argparse

    from muva_lib.commands import real_crops

    parser = argparse.ArgumentParser()
    real_crops.add_arguments(parser)
    assert real_crops.run(parser.parse_args(["--video", str(tmp_path / "nope.avi"), "--out", str(tmp_path / "x")])) == 2
    assert "apt-get install -y opencv-doc" in capsys.readouterr().err


def test_protocol_aliases_reach_the_real_set():
    from muva_lib.data.protocols import get_protocol

    assert get_protocol("real-vtest").source_datasets == ("real-vtest",)
    p = get_protocol("synth-a->real-vtest")
    assert p.kind == "single-source" and p.target_datasets == ("real-vtest",)


# ----------------------------------------------------------------------------- on the video


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.mark.slow
def test_build_is_byte_identical_twice_whatever_the_workers(tmp_path):
    missing = real_vtest_missing()
    if missing:
        pytest.skip(missing)
    cfg = RealCfg(max_frames=60)
    root_a, root_b = tmp_path / "a" / "real-vtest", tmp_path / "b" / "real-vtest"  # meta.json names the folder
    a, b = build_real_set(root_a, cfg=cfg, workers=2), build_real_set(root_b, cfg=cfg, workers=1)
    assert a["status"] == b["status"] == "built"
    fa, fb = _files(root_a), _files(root_b)
    assert fa.keys() == fb.keys() and all(fa[k] == fb[k] for k in fa)
    assert sum(k.endswith(".jpg") for k in fa) == sum(c["images"] for c in a["counts"].values())


def test_manifest_agrees_with_the_files(real_vtest_small):
    root, meta = real_vtest_small.root, real_vtest_small.meta
    records = read_manifest(root)
    jpgs = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.jpg"))
    assert [r["relpath"] for r in records] == jpgs
    w, h = meta["video"]["width"], meta["video"]["height"]
    for r in records:
        pid, cam = parse_market_name(r["relpath"])
        assert (pid, cam) == (r["pid"], r["camera"]) and r["tracklet"] == pid and cam in (1, 2)
        assert f"_{r['frame']:06d}_" in r["relpath"] and r["frame"] < meta["video"]["frames"]
        x0, y0, x1, y1 = r["box"]
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    assert json.loads((root / "meta.json").read_text())["video"]["sha256"] == meta["video"]["sha256"]


def test_reader_reads_disjoint_train_and_test_ids_over_two_cameras(real_vtest_small):
    records = read_manifest(real_vtest_small.root)
    train_ids = {r["pid"] for r in records if r["subset"] == "train"}
    test_ids = {r["pid"] for r in records if r["subset"] != "train"}
    assert train_ids and test_ids and not train_ids & test_ids
    split = read_dataset("real-vtest", root=real_vtest_small.root)
    assert split.dataset == "real-vtest-f120" and split.train[0].key.startswith("real-vtest-f120/")
    assert {it.camid for it in split.train} == {0, 1}
    for q in split.query:
        assert q.camid == 0 and any(g.pid == q.pid and g.camid == 1 for g in split.gallery)
    s = split.summary()
    print(f"\nreal set, first 120 frames: {s}")
    assert s["train_ids"] == len(train_ids) and s["query_ids"] == s["gallery_ids"] == len(test_ids)


def test_a_built_folder_is_skipped_and_never_mixed(real_vtest_small, tmp_path):
    root = real_vtest_small.root
    assert build_real_set(root, cfg=RealCfg(max_frames=120))["status"] == "skipped"
    with pytest.raises(DatasetError, match="another video or config"):
        build_real_set(root, cfg=RealCfg(max_frames=120, query_per_id=3))
    with pytest.raises(DatasetError, match="read more frames"):
        build_real_set(tmp_path / "tiny", cfg=RealCfg(max_frames=4))
    assert not (tmp_path / "tiny").exists() and not list(tmp_path.glob(".tiny.partial-*"))
