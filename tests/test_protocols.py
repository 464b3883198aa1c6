"""Protocol names, the named table, multi-source merging with offsets, and the classical all-images rule."""
from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

import readers_fakes as fakes
from muva_lib.data import protocols as P
from muva_lib.data.readers import DatasetError


def _market_tree(root: Path, spec: dict[str, list[str]]) -> Path:
    for sub, names in spec.items():
        (root / sub).mkdir(parents=True, exist_ok=True)
        for n in names:
            Image.new("RGB", (8, 16), (10, 20, 30)).save(root / sub / n)
    return root


@pytest.fixture
def three_domains(tmp_path):
    """Tiny Market-layout trees for three synthetic domains (hand-countable)."""
    roots = {}
    # synth-a: train ids 5, 9 (cams 1, 2); query 1 (c1); gallery 1 (c2), distractor 0, junk -1
    roots["synth-a"] = _market_tree(tmp_path / "a", {
        "bounding_box_train": ["0005_c1s1_000001_00.jpg", "0005_c2s1_000002_00.jpg", "0009_c2s1_000003_00.jpg"],
        "query": ["0001_c1s1_000004_00.jpg"],
        "bounding_box_test": ["0001_c2s1_000005_00.jpg", "0000_c1s1_000006_00.jpg", "-1_c1s1_000007_00.jpg"],
    })
    # synth-b: train ids 4, 5, 7 on cams 1, 3, 4; query 2 (c1); gallery 2 (c3)
    roots["synth-b"] = _market_tree(tmp_path / "b", {
        "bounding_box_train": ["0005_c1s1_000001_00.jpg", "0004_c3s1_000002_00.jpg", "0007_c4s1_000003_00.jpg"],
        "query": ["0002_c1s1_000004_00.jpg"],
        "bounding_box_test": ["0002_c3s1_000005_00.jpg"],
    })
    roots["synth-c"] = _market_tree(tmp_path / "c", {
        "bounding_box_train": ["0001_c1s1_000001_00.jpg"],
        "query": ["0008_c1s1_000004_00.jpg"],
        "bounding_box_test": ["0008_c2s1_000005_00.jpg", "0006_c2s1_000006_00.jpg"],
    })
    return roots


def test_named_table_has_every_reported_protocol():
    names = set(P.list_protocols())
    assert {"ma", "d", "ms", "occ-d", "c3"} <= names
    single = P.list_protocols("single-source")
    assert len(single) == 12 and "ma->d" in single and "c3->ms" in single and "ms->c3" in single
    assert set(P.list_protocols("multi-source")) == {"d+ms+c3->ma", "ma+ms+c3->d", "ma+d+c3->ms", "ma+d+ms->c3"}
    assert set(P.list_protocols("classical")) == {f"ma+d+c2+c3+cs->{t}" for t in ("prid", "grid", "viper", "ilids")}
    assert "synth-a->synth-b" in P.list_protocols("synthetic")
    assert "synth-a+synth-b->synth-c" in P.list_protocols("synthetic")


def test_parsing_names_and_shorthands():
    p = P.get_protocol("MA -> D")
    assert p.sources == ("ma",) and p.targets == ("d",) and p.source_datasets == ("market1501",)
    assert P.get_protocol("classic->prid").train_all
    adhoc = P.get_protocol("ma+ms->d")
    assert adhoc.kind == "multi-source" and adhoc.source_datasets == ("market1501", "msmt17")
    assert P.get_protocol("ma").kind == "supervised" and P.get_protocol("ma").targets == ("ma",)
    with pytest.raises(DatasetError, match="unknown dataset name.*xx"):
        P.get_protocol("ma->xx")
    with pytest.raises(DatasetError, match="unknown protocol"):
        P.get_protocol("ma->")


def test_single_source_build(three_domains):
    data = P.build("synth-a->synth-b", roots=three_domains)
    assert len(data.train) == 3 and data.num_classes == 2 and data.num_cams == 2
    assert sorted(it.pid for it in data.train) == [0, 0, 1]
    (target,) = data.targets["synth-b"]
    assert [it.pid for it in target.query] == [2] and len(target.gallery) == 1


def test_multi_source_offsets_and_unique_keys(three_domains):
    data = P.build("synth-a+synth-b->synth-c", roots=three_domains)
    a, b = data.sources
    assert (a.num_ids, a.pid_offset, a.num_cams, a.cam_offset, a.domain) == (2, 0, 2, 0, 0)
    assert (b.num_ids, b.pid_offset, b.num_cams, b.cam_offset, b.domain) == (3, 2, 3, 2, 1)
    assert data.num_classes == 5 and data.num_cams == 5 and data.num_domains == 2
    assert sorted({it.pid for it in data.train}) == [0, 1, 2, 3, 4]
    b_items = [it for it in data.train if it.dataset == "synth-b"]
    assert sorted(it.camid for it in b_items) == [2, 3, 4] and {it.domain for it in b_items} == {1}
    keys = [it.key for it in data.train]
    assert len(keys) == len(set(keys))
    # relpaths collide across domains (same file names), keys do not
    assert len({it.relpath for it in data.train}) < len(keys)


def test_classical_all_images_rule(three_domains):
    proto = P.Protocol("synth-a+synth-b->synth-c", ("synth-a", "synth-b"), ("synth-c",), "synthetic", train_all=True)
    data = P.build(proto, roots=three_domains)
    a = data.sources[0]
    # synth-a: train ids {5, 9} + test id {1} (distractor 0 and junk -1 dropped) = 3 ids, 3 + 2 images
    assert (a.num_ids, a.num_images) == (3, 5)
    assert data.sources[1].pid_offset == 3
    assert all(it.pid >= 0 for it in data.train)


def test_same_source_twice_is_refused(three_domains):
    with pytest.raises(DatasetError, match="listed twice"):
        P.build("synth-a+synth-a->synth-b", roots=three_domains)


def test_summary_counts(three_domains):
    s = P.build("synth-a->synth-c", roots=three_domains).summary()
    assert s["train_images"] == 3 and s["train_ids"] == 2
    assert s["targets"]["synth-c"][0]["gallery_images"] == 2


def test_protocol_table_rows_name_missing_data(monkeypatch, tmp_path):
    monkeypatch.setenv("MUVA_RAW", str(tmp_path / "raw"))
    monkeypatch.setenv("MUVA_SYNTH", str(tmp_path / "synth"))
    fakes.market_style_tree(tmp_path / "synth" / "synth-a", "market1501")
    rows = {r["protocol"]: r for r in P.protocol_table()}
    assert rows["synth-a->synth-b"]["data"] == "missing synth-b"
    assert rows["ma+d+c2+c3+cs->prid"]["test on"] == "prid (10-split mean)"
    assert rows["ma+d+c2+c3+cs->prid"]["train on"] == "ma+d+c2+c3+cs (all images)"
    assert len(rows) == len(P.PROTOCOLS)


def test_an_empty_or_layout_less_dataset_folder_is_not_ready(monkeypatch, tmp_path, capsys):
    """Readiness looks at the layout: an empty folder, or one whose camera folders hold no image, is named
    with what it lacks; a complete fake tree is ready."""
    from muva_lib.__main__ import main

    raw = tmp_path / "raw"
    monkeypatch.setenv("MUVA_RAW", str(raw))
    fakes.viper_tree(raw / "VIPeR")  # complete
    (raw / "grid").mkdir(parents=True)  # empty
    (raw / "prid2011" / "single_shot" / "cam_a").mkdir(parents=True)  # folders without images, cam_b missing
    ready = P.dataset_readiness(["viper", "grid", "prid", "ilids"])
    assert ready["viper"] == []
    assert ready["grid"] == ["no probe", "no gallery"]
    assert ready["prid"] == ["single_shot/cam_a/ holds no images", "no single_shot/cam_b"]
    assert ready["ilids"] == ["no such folder"]
    fakes.ilids_tree(raw / "i-LIDS_Pedestrian")
    assert P.dataset_readiness(["ilids"]) == {"ilids": []}

    assert main(["protocols", "--kind", "classical"]) == 0
    out = capsys.readouterr().out
    rows = {r["protocol"]: r for r in P.protocol_table("classical")}
    assert rows["ma+d+c2+c3+cs->grid"]["data"] == "missing ma, d, c2, c3, cs, grid"
    assert str(raw / "grid") in out and "no probe; no gallery" in out and "single_shot/cam_a/ holds no images" in out
    assert f"viper ({raw / 'VIPeR'})" not in out and f"ilids ({raw / 'i-LIDS_Pedestrian'})" not in out  # ready


def test_split_indices_default_to_every_split_of_a_small_target():
    classic = P.get_protocol("classic->prid")
    assert P.split_indices(classic) == {"prid": tuple(range(10))} and classic.multi_split
    assert P.split_indices(classic, split_index=4) == {"prid": (4,)}
    assert P.split_indices(classic, split_index=4, all_splits=True) == {"prid": tuple(range(10))}  # old configs
    assert P.split_indices("ma->d") == {"dukemtmc": (0,)} and not P.get_protocol("ma->d").multi_split
    assert P.split_indices("ma->viper+d", 2) == {"viper": (2,), "dukemtmc": (2,)}  # d has no split 2: the reader says so
    in_domain = P.get_protocol("prid")  # trains on one split's ids, so it is tested on that split only
    assert P.split_indices(in_domain) == {"prid": (0,)} and P.split_indices(in_domain, 3) == {"prid": (3,)}
    assert not in_domain.multi_split
    with pytest.raises(DatasetError, match="10 trainings.*data.split_index"):
        P.split_indices(in_domain, all_splits=True)
    with pytest.raises(DatasetError, match="split_index -2"):
        P.split_indices(classic, -2)


def test_in_domain_small_dataset_trains_on_the_split_it_is_tested_on(tmp_path):
    from muva_lib.data.readers import read_dataset

    root = fakes.viper_tree(tmp_path / "viper")
    train = {k: {it.path for it in read_dataset("viper", root, split_index=k).train} for k in (0, 3)}
    assert train[0] != train[3]
    data = P.build("viper", roots={"viper": root}, split_index=3)
    (split,) = data.targets["viper"]
    assert split.split_index == 3 and {it.path for it in data.train} == train[3]
    person = lambda items: {Path(it.path).name.split("_")[0] for it in items}  # noqa: E731  (NNN of NNN_ANGLE.bmp)
    assert not person(data.train) & person(split.query)
    # a small dataset that is only a source trains on split 0's ids; the target still gets every split
    other = P.build("viper->prid", roots={"viper": root, "prid": fakes.prid_tree(tmp_path / "prid")})
    assert {it.path for it in other.train} == train[0] and len(other.targets["prid"]) == 10
