"""Dataset readers on tiny fake trees: counts, ids, cameras, splits, crops and every bad input."""
from __future__ import annotations

import json
import os
import warnings
from collections import Counter
from pathlib import Path

import pytest
from PIL import Image

import readers_fakes as fakes
from muva_lib.data.readers import (READERS, DatasetError, UnreadableImageWarning, describe, get_reader,
                                   layout_markdown, read_all, read_dataset)
from muva_lib.data.readers import derived as derived_mod
from muva_lib.data.readers.splits import SPLITS_FILE

REAL = sorted(n for n, cls in READERS.items() if cls.url)


def rows(items):
    return [(it.pid, it.camid, it.relpath) for it in items]


def test_every_dataset_is_registered_with_folder_url_and_layout():
    assert REAL == ["cuhk02", "cuhk03np", "cuhk03np-labeled", "cuhksysu", "dukemtmc", "grid", "ilids",
                    "market1501", "msmt17", "occ_duke", "prid", "viper"]
    for name in REAL:
        cls = READERS[name]
        assert cls.url.startswith("http") and f"data/raw/{cls.folder}/" in cls.__doc__
        assert cls.url in describe(name)
    md = layout_markdown()
    assert md.count("\n### `") == len(REAL) and "```text\nPersons/0001001.jpg" in md


# ----------------------------------------------------------------------------- Market-style layouts

@pytest.mark.parametrize("name", sorted(fakes.MARKET_STYLE))
def test_market_style_counts_relabel_junk_and_distractors(tmp_path, name):
    root = fakes.market_style_tree(tmp_path / name, name)
    split = read_dataset(name, root)
    prefix = fakes.MARKET_STYLE[name][0]
    # train: raw ids 2, 2, 7, 10 -> 0, 0, 1, 2; cameras 1, 2, 1, 2 -> 0, 1, 0, 1
    assert [(it.pid, it.camid) for it in split.train] == [(0, 0), (0, 1), (1, 0), (2, 1)]
    assert [(it.pid, it.camid) for it in split.query] == [(1, 0), (3, 1)]
    # gallery: junk -1 dropped, distractor 0 kept
    assert [(it.pid, it.camid) for it in split.gallery] == [(0, 0), (1, 1), (3, 0)]
    first = split.train[0]
    assert first.dataset == name and first.relpath.startswith(prefix + "bounding_box_train/0002_c1")
    assert Path(first.path) == root / first.relpath and "\\" not in first.relpath
    assert split.summary()["train_ids"] == 3
    everyone = read_all(name, root)  # raw ids 2, 7, 10 (train) and 1, 3 (test): 8 images, 5 people
    assert len(everyone) == 8 and sorted({it.pid for it in everyone}) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("name, cam, ok", [("dukemtmc", 8, True), ("dukemtmc", 9, False),
                                           ("cuhk03np", 3, False), ("market1501", 7, False)])
def test_camera_range(tmp_path, name, cam, ok):
    spec = {**fakes.MARKET_SPEC, "query": [(1, cam)]}
    root = fakes.market_style_tree(tmp_path / name, name, spec)
    if ok:
        assert read_dataset(name, root).query[0].camid == cam - 1
    else:
        with pytest.raises(DatasetError, match=f"camera {cam} outside"):
            read_dataset(name, root)


# ----------------------------------------------------------------------------- MSMT17

def test_msmt17_list_layout(tmp_path):
    split = read_dataset("msmt17", fakes.msmt17_list_tree(tmp_path / "MSMT17_V1"))
    assert split.meta == {"layout": "list", "version": "V1"}
    # train + val merged: raw ids 0, 0, 5 -> 0, 0, 1; camera = third name field - 1
    assert [(it.pid, it.camid) for it in split.train] == [(0, 0), (0, 14), (1, 2)]
    assert split.train[2].relpath == "train/0005/0005_000_03_0303morning_0000_0.jpg"
    # test id 0 is a real identity in MSMT17: kept in the query
    assert [(it.pid, it.camid) for it in split.query] == [(0, 1), (1, 3)]
    assert [(it.pid, it.camid) for it in split.gallery] == [(0, 6), (1, 8), (2, 10)]


def test_msmt17_both_layouts_give_the_same_items(tmp_path):
    a = read_dataset("msmt17", fakes.msmt17_list_tree(tmp_path / "list"))
    b = read_dataset("msmt17", fakes.msmt17_market_tree(tmp_path / "market"))
    assert b.meta["layout"] == "market" and a.meta["layout"] == "list"
    for subset in ("train", "query", "gallery"):
        pairs = [Counter((it.pid, it.camid) for it in getattr(s, subset)) for s in (a, b)]
        assert pairs[0] == pairs[1], subset
    assert len(read_all("msmt17", tmp_path / "list")) == 3 + 2 + 3  # no pid-0 distractors in MSMT17


@pytest.mark.parametrize("line, match", [
    ("0000/0000_000_01_0303morning_0015_0.jpg", "malformed line"),
    ("0000/0000_000_01_0303morning_0015_0.jpg x", "malformed line"),
    ("../0000_000_01_0303morning_0015_0.jpg 0", "malformed line"),
    ("0000/weird.jpg 0", "PID_INDEX_CAM"),
    ("0000/0000_000_16_0303morning_0015_0.jpg 0", "camera 16 outside"),
])
def test_msmt17_malformed_list(tmp_path, line, match):
    root = fakes.msmt17_list_tree(tmp_path / "MSMT17")
    with open(root / "list_val.txt", "a") as fh:
        fh.write(line + "\n")
    with pytest.raises(DatasetError, match=match) as err:
        read_dataset("msmt17", root)
    assert "list_val.txt" in str(err.value) or "weird.jpg" in str(err.value) or "0303morning" in str(err.value)


def test_msmt17_listed_file_missing_is_a_counted_warning(tmp_path):
    root = fakes.msmt17_list_tree(tmp_path / "MSMT17")
    (root / "test" / "0002" / "0002_002_11_0303morning_0002_0.jpg").unlink()
    with pytest.warns(UnreadableImageWarning, match="skipped 1 unreadable"):
        split = read_dataset("msmt17", root)
    assert len(split.gallery) == 2


# ----------------------------------------------------------------------------- CUHK-SYSU

def test_cuhksysu_crops_counts_and_ids(tmp_path):
    root = fakes.cuhksysu_tree(tmp_path / "CUHK-SYSU")
    split = read_dataset("cuhksysu", root)
    assert rows(split.train) == [(0, 0, "cuhksysu4reid/00001_s1_2_3_10_20.jpg"),
                                 (0, 0, "cuhksysu4reid/00001_s2_0_0_8_16.jpg"),
                                 (1, 0, "cuhksysu4reid/00002_s1_20_5_10_30.jpg")]
    assert rows(split.query) == [(3, 0, "cuhksysu4reid/00003_s3_1_1_10_20.jpg"),
                                 (4, 0, "cuhksysu4reid/00004_s4_20_30_12_24.jpg")]
    # empty gallery boxes (person absent from the scene) are skipped; gallery camera 1
    assert rows(split.gallery) == [(3, 1, "cuhksysu4reid/00003_s4_5_5_10_20.jpg"),
                                   (4, 1, "cuhksysu4reid/00004_s1_30_40_20_30.jpg")]
    with Image.open(split.train[0].path) as im:
        assert im.size == (10, 20)
    with Image.open(split.gallery[1].path) as im:  # box runs off the 40x60 scene: clipped
        assert im.size == (10, 20)
    everyone = read_all("cuhksysu", root)  # Person.mat: 7 boxes of 4 ids, crops shared with read()
    assert len(everyone) == 7 and sorted({it.pid for it in everyone}) == [0, 1, 2, 3]
    assert len(list((root / "cuhksysu4reid").iterdir())) == 7


def test_cuhksysu_second_read_reuses_the_crops(tmp_path):
    root = fakes.cuhksysu_tree(tmp_path / "CUHK-SYSU")
    first = read_dataset("cuhksysu", root)
    stamps = {p.name: p.stat().st_mtime_ns for p in (root / "cuhksysu4reid").iterdir()}
    for scene in (root / "Image" / "SSM").iterdir():  # no scene left to crop from
        scene.unlink()
    second = read_dataset("cuhksysu", root)
    assert second == first
    assert {p.name: p.stat().st_mtime_ns for p in (root / "cuhksysu4reid").iterdir()} == stamps


def test_cuhksysu_unreadable_scene_is_counted(tmp_path):
    root = fakes.cuhksysu_tree(tmp_path / "CUHK-SYSU")
    fakes.truncate(root / "Image" / "SSM" / "s1.jpg")  # holds 2 train boxes and 1 gallery box
    with pytest.warns(UnreadableImageWarning, match="skipped 1 unreadable") as rec:
        split = read_dataset("cuhksysu", root)
    assert len(rec) == 1
    assert (len(split.train), len(split.query), len(split.gallery)) == (1, 2, 1)
    with pytest.raises(DatasetError, match="s1.jpg"):
        read_dataset("cuhksysu", root, strict=True)


@pytest.mark.parametrize("mat, content, match", [
    ("annotation/test/train_test/Train.mat", b"not a mat file", "cannot read as a MATLAB"),
    ("annotation/test/train_test/Train.mat", {"Other": 1}, "no variable 'Train'"),
    ("annotation/test/train_test/TestG50.mat",
     {"TestG50": {"Query": {"imname": "s1.jpg", "idlocate": [0, 0, 1, 1], "idname": "p3"}}}, "no field 'Gallery'"),
    ("annotation/test/train_test/Train.mat",
     {"Train": {"idname": "x9", "nAppear": 1, "scene": {"imname": "s1.jpg", "idlocate": [0, 0, 1, 1]}}},
     "idname 'x9'"),
    ("annotation/test/train_test/Train.mat",
     {"Train": {"idname": "p9", "nAppear": 1, "scene": {"imname": "s1.jpg", "idlocate": [0, 0, 1]}}},
     r"should be \[x, y, w, h\]"),
    ("annotation/test/train_test/Train.mat",
     {"Train": {"idname": "p9", "nAppear": 1, "scene": {"imname": "s1.jpg", "idlocate": [50, 70, 5, 5]}}},
     "lies outside the 40x60 image"),
])
def test_cuhksysu_malformed_mat(tmp_path, mat, content, match):
    import scipy.io

    root = fakes.cuhksysu_tree(tmp_path / "CUHK-SYSU")
    if isinstance(content, bytes):
        (root / mat).write_bytes(content)
    else:
        scipy.io.savemat(root / mat, content)
    with pytest.raises(DatasetError, match=match):
        read_dataset("cuhksysu", root)


# ----------------------------------------------------------------------------- CUHK02

def test_cuhk02_pairs_ids_and_cameras(tmp_path):
    root = fakes.cuhk02_tree(tmp_path / "cuhk02")
    split = read_dataset("cuhk02", root)
    # P1..P4: raw ids 10001, 10002, 20001, 30001, 40001 (ids restart per pair) -> 0..4
    assert [(it.pid, it.camid) for it in split.train] == [
        (0, 0), (1, 0), (0, 1), (1, 1), (2, 2), (2, 3), (3, 4), (3, 5), (4, 6), (4, 7)]
    assert rows(split.query) == [(50001, 8, "Dataset/P5/cam1/0001_1.png"), (50002, 8, "Dataset/P5/cam1/0002_1.png")]
    assert [(it.pid, it.camid) for it in split.gallery] == [(50001, 9), (50002, 9)]
    everyone = read_all("cuhk02", root)
    assert len(everyone) == 14 and sorted({it.pid for it in everyone}) == list(range(7))


# ----------------------------------------------------------------------------- small datasets

SMALL = {"grid": fakes.grid_tree, "prid": fakes.prid_tree, "viper": fakes.viper_tree, "ilids": fakes.ilids_tree}
#: (train ids, train images, query images, gallery images, gallery distractors) of the fake trees
SMALL_COUNTS = {"grid": (2, 4, 2, 5, 3), "prid": (2, 4, 2, 5, 3), "viper": (2, 4, 2, 2, 0), "ilids": (2, None, 3, 3, 0)}


@pytest.mark.parametrize("name", sorted(SMALL))
def test_small_split_counts_and_file(tmp_path, name):
    root = SMALL[name](tmp_path / name)
    reader = get_reader(name)(root)
    assert reader.num_splits == 10
    for k in range(10):
        split = reader.read(k)
        n_ids, n_train, n_query, n_gallery, n_distract = SMALL_COUNTS[name]
        train_raw = {it.pid for it in split.train}
        assert split.num_train_pids == n_ids and sorted(train_raw) == [0, 1]
        if n_train is not None:
            assert len(split.train) == n_train
        assert (len(split.query), len(split.gallery)) == (n_query, n_gallery)
        query_ids = {it.pid for it in split.query}
        matched = [it for it in split.gallery if it.pid in query_ids]
        assert len(matched) == n_query and len(split.gallery) - len(matched) == n_distract
        assert len({it.camid for it in split.query} | {it.camid for it in split.gallery}) >= 1
    doc = json.loads((root / SPLITS_FILE).read_text())
    assert doc["dataset"] == name and doc["seed"] == 1501 and len(doc["splits"]) == 10
    assert len({json.dumps(s, sort_keys=True) for s in doc["splits"]}) > 1  # the splits differ


def test_grid_distractors_and_cameras(tmp_path):
    split = read_dataset("grid", fakes.grid_tree(tmp_path / "grid"), split_index=0)
    test_ids = sorted({it.pid for it in split.query})
    assert [it.pid for it in split.gallery if it.pid == 0] == [0, 0, 0]
    # GRID camera = second name field - 1: probe of id p is camera p, gallery camera p + 4
    assert [it.camid for it in split.query] == [p - 1 for p in test_ids]
    assert sorted(it.camid for it in split.gallery if it.pid) == [p + 3 for p in test_ids]


@pytest.mark.parametrize("fields", [("a", "b", "trnIdx"), ("x", "y", "z")])
def test_grid_official_partitions(tmp_path, fields):
    root = fakes.grid_tree(tmp_path / "grid")
    fakes.grid_mat(root, [[1, 2]] * 5 + [[3, 4]] * 5, fields)
    split = read_dataset("grid", root, split_index=7)
    assert sorted(it.relpath.split("_")[0] for it in split.query) == ["probe/0001", "probe/0002"]
    assert split.meta["splits_file"].endswith("features_and_partitions.mat")
    assert not (root / SPLITS_FILE).exists()
    fakes.grid_mat(root, [[1, 9]] * 10)
    with pytest.raises(DatasetError, match="no probe/gallery pair"):
        read_dataset("grid", root)
    fakes.grid_mat(root, [[1, 2]] * 3)
    with pytest.raises(DatasetError, match="has 3 entries"):
        read_dataset("grid", root)


def test_prid_unpaired_ids_are_distinct_people(tmp_path):
    root = fakes.prid_tree(tmp_path / "prid")
    split = read_dataset("prid", root)
    assert sorted(it.pid for it in split.gallery if it.pid > 200) == [201, 202, 203]
    assert all(it.pid <= 200 for it in split.query)
    # read_all: ids 1..4 in both cameras (8 images), cam_a 201, 202 and cam_b 201..203: 9 people
    everyone = read_all("prid", root)
    assert len(everyone) == 13 and len({it.pid for it in everyone}) == 9


def test_ilids_one_query_one_gallery_per_test_id(tmp_path):
    root = fakes.ilids_tree(tmp_path / "ilids")
    for k in range(10):
        split = read_dataset("ilids", root, split_index=k)
        assert sorted(it.pid for it in split.query) == sorted(it.pid for it in split.gallery)
        assert not {it.relpath for it in split.query} & {it.relpath for it in split.gallery}
        test_ids = {it.pid for it in split.query}
        assert len(split.train) == 11 - sum(fakes.ILIDS_IMAGES[p] for p in test_ids)


def test_small_splits_are_deterministic_and_reused(tmp_path):
    a = read_dataset("viper", fakes.viper_tree(tmp_path / "a"), split_index=3)
    b_root = fakes.viper_tree(tmp_path / "b")
    b = read_dataset("viper", b_root, split_index=3)
    assert (tmp_path / "a" / SPLITS_FILE).read_text() == (b_root / SPLITS_FILE).read_text()
    assert rows(a.query) == rows(b.query)
    # the file is re-used: edit split 3 by hand and the reader follows it
    doc = json.loads((b_root / SPLITS_FILE).read_text())
    doc["splits"][3] = {"train": [1, 2], "test": [3, 4]}
    (b_root / SPLITS_FILE).write_text(json.dumps(doc))
    c = read_dataset("viper", b_root, split_index=3)
    assert [it.relpath for it in c.query] == ["cam_a/002_45.bmp", "cam_a/003_45.bmp"]


def test_small_splits_fall_back_when_the_data_folder_is_read_only(tmp_path, monkeypatch):
    root = fakes.prid_tree(tmp_path / "prid")
    monkeypatch.setenv("MUVA_DATA", str(tmp_path / "data"))
    real_write = derived_mod.atomic_write_bytes

    def refuse_root(path, data):
        if Path(path).is_relative_to(root):
            raise PermissionError(13, "Read-only file system")
        return real_write(path, data)

    monkeypatch.setattr(derived_mod, "atomic_write_bytes", refuse_root)
    first = read_dataset("prid", root, split_index=2)
    fallback = tmp_path / "data" / "splits" / "prid.json"
    assert first.meta["splits_file"] == str(fallback) and fallback.is_file()
    assert not (root / SPLITS_FILE).exists()
    before = fallback.stat().st_mtime_ns
    assert read_dataset("prid", root, split_index=2) == first and fallback.stat().st_mtime_ns == before


@pytest.mark.parametrize("content, match", [
    ("{not json", "cannot read the split file"),
    (json.dumps({"dataset": "viper", "splits": [{}]}), "with 10 splits"),
    (json.dumps({"dataset": "viper", "splits": [{"train": [1, 99], "test": [3, 4]}] * 10}), "does not fit"),
])
def test_bad_split_file(tmp_path, content, match):
    root = fakes.viper_tree(tmp_path / "viper")
    (root / SPLITS_FILE).write_text(content)
    with pytest.raises(DatasetError, match=match):
        read_dataset("viper", root)


@pytest.mark.parametrize("index", [10, -1])
def test_split_index_out_of_range(tmp_path, index):
    root = fakes.ilids_tree(tmp_path / "ilids")
    with pytest.raises(DatasetError, match="out of range 0..9"):
        read_dataset("ilids", root, split_index=index)
    with pytest.raises(DatasetError, match="out of range 0..0"):
        read_dataset("market1501", fakes.market_style_tree(tmp_path / "m", "market1501"), split_index=1)


def test_viper_unpaired_ids(tmp_path):
    root = fakes.viper_tree(tmp_path / "viper")
    (root / "cam_b" / "003_90.bmp").unlink()
    with pytest.raises(DatasetError, match=r"unpaired NNN: \[3\]"):
        read_dataset("viper", root)


# ----------------------------------------------------------------------------- bad input, every reader

@pytest.mark.parametrize("name", REAL)
def test_missing_root_names_layout_and_download_page(tmp_path, name):
    cls = get_reader(name)
    with pytest.raises(DatasetError) as err:
        read_dataset(name, tmp_path / "nowhere")
    msg = str(err.value)
    assert cls.url in msg and str(tmp_path / "nowhere") in msg
    assert cls.__doc__.strip().splitlines()[0] in msg and f"data/raw/{cls.folder}/" in msg


BAD_NAMES = [
    ("market1501", lambda t: fakes.market_style_tree(t, "market1501"), "query/garbage.jpg", "PID_cCAM"),
    ("msmt17", fakes.msmt17_market_tree, "bounding_box_test/c3_0001.jpg", "PID_cCAM"),
    ("cuhk02", fakes.cuhk02_tree, "Dataset/P3/cam2/abc.png", "PID_INDEX.png"),
    ("grid", fakes.grid_tree, "gallery/xx.jpeg", "PID_CAM_"),
    ("prid", fakes.prid_tree, "single_shot/cam_b/person_x.png", "person_XXXX.png"),
    ("viper", fakes.viper_tree, "cam_a/a_45.bmp", "NNN_ANGLE.bmp"),
    ("ilids", fakes.ilids_tree, "Persons/001001.jpg", "PPPPIII.jpg"),
]


@pytest.mark.parametrize("name, make, bad, pattern", BAD_NAMES, ids=[b[0] for b in BAD_NAMES])
def test_unparseable_file_name(tmp_path, name, make, bad, pattern):
    root = make(tmp_path / name)
    fakes.write_image(root / bad)
    with pytest.raises(DatasetError, match=pattern) as err:
        read_dataset(name, root)
    assert bad.split("/")[-1] in str(err.value)


@pytest.mark.parametrize("name, make, truncated, emptied", [
    ("market1501", lambda t: fakes.market_style_tree(t, "market1501"),
     "bounding_box_test/0001_c2s1_000002_01.jpg", "bounding_box_train/0007_c1s1_000002_01.jpg"),
    ("cuhk03np", lambda t: fakes.market_style_tree(t, "cuhk03np"),
     "detected/query/0003_c2_1.png", "detected/bounding_box_test/0003_c1_3.png"),
    ("grid", fakes.grid_tree, "gallery/0000_1_30001_1_2_3_4.jpeg", "gallery/0000_3_30003_1_2_3_4.jpeg"),
    ("viper", fakes.viper_tree, "cam_a/000_45.bmp", "cam_b/002_90.bmp"),
])
def test_truncated_images_warn_once_with_the_count_or_fail_when_strict(tmp_path, name, make, truncated, emptied):
    root = make(tmp_path / name)
    fakes.truncate(root / truncated)
    (root / emptied).write_bytes(b"")
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        views = get_reader(name)(root).read_all() if name != "grid" else get_reader(name)(root).read()
    bad = [w for w in rec if issubclass(w.category, UnreadableImageWarning)]
    assert len(bad) == 1 and "skipped 2 unreadable" in str(bad[0].message)
    if name == "grid":  # two of the three distractors gone
        assert [it.pid for it in views.gallery].count(0) == 1
    else:  # read_all: every usable image once (market: 4 + 2 + 2 non-distractors, minus 2)
        assert len(views) == {"market1501": 6, "cuhk03np": 6, "viper": 6}[name]
    with pytest.raises(DatasetError, match="unreadable image"):
        get_reader(name)(root, strict=True).read()
    with pytest.raises(DatasetError, match="unreadable image"):
        get_reader(name)(root, strict=True).read()


def test_unreadable_warning_names_the_real_strict_switch(tmp_path):
    """The warning's way to stop at the first bad image is an override every command takes (no --strict flag)."""
    import argparse
    import re

    from muva_lib.commands import eval as eval_cmd, run as run_cmd, train as train_cmd
    from muva_lib.config import apply_overrides, parse_overrides, resolve

    root = fakes.viper_tree(tmp_path / "viper")
    fakes.truncate(root / "cam_a/000_45.bmp")
    with pytest.warns(UnreadableImageWarning) as rec:
        get_reader("viper")(root).read_all()
    message = str(rec[0].message)
    assert "--strict" not in message
    override = re.search(r"\bdata\.strict=true\b", message).group(0)
    assert apply_overrides(resolve("muva", "smoke"), parse_overrides([override])).data.strict is True
    for cmd in (train_cmd, eval_cmd, run_cmd):  # each takes key=value overrides and has no --strict
        parser = argparse.ArgumentParser()
        cmd.add_arguments(parser)
        options = {o for a in parser._actions for o in a.option_strings}
        assert "--strict" not in options and any(a.dest == "overrides" for a in parser._actions)


def test_empty_split_is_an_error(tmp_path):
    root = fakes.market_style_tree(tmp_path / "m", "market1501")
    for p in (root / "query").iterdir():
        os.remove(p)
    with pytest.raises(DatasetError, match="the query split .* is empty"):
        read_dataset("market1501", root)
