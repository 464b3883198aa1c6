"""Parsing maps (pi-VL): majority vote and grouping by hand, the sources (synthetic, png, hf, pose), the store, errors."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from muva_lib.human_parsing import (GROUPINGS, LIP_GROUPING, PARSING_SOURCES, POSE_GROUPING, SYNTH_GROUPING, HfSource,
                              ParsingError, ParsingStore, PngSource, PoseSource, SyntheticSource, foreground_labels,
                              make_source, grid_labels, majority_labels, parse_grouping, parsing_labels_for,
                              parsing_maps_for, resolve_grouping, resolve_source, vote_labels)
from muva_lib.config import ParsingCfg
from muva_lib.human_parsing.map_store import StoreError
from muva_lib.human_parsing.maps import fill_store
from muva_lib.human_parsing.sources import ParsingModelNotFound


def test_majority_vote_by_hand():
    m = np.array([[1, 1, 2, 0],
                  [1, 0, 2, 2],
                  [3, 3, 0, 0],
                  [3, 0, 4, 0]])
    # 2x2 cells: top-left {1,1,1,0} -> 1; top-right {2,0,2,2} -> 2; bottom-left {3,3,3,0} -> 3;
    # bottom-right {0,0,4,0} -> 0
    assert majority_labels(m, (2, 2), 5).tolist() == [1, 2, 3, 0]
    # a tie goes to the smaller class: {1, 1, 2, 2} -> 1, {0, 0, 4, 4} -> 0
    assert majority_labels(np.array([[1, 2], [1, 2]]), (1, 1), 5).tolist() == [1]
    assert majority_labels(np.array([[4, 0], [0, 4]]), (1, 1), 5).tolist() == [0]
    # a grid finer than the map: each cell takes the pixel under its centre
    assert majority_labels(np.array([[1], [2]]), (4, 2), 3).tolist() == [1, 1, 1, 1, 2, 2, 2, 2]
    with pytest.raises(ValueError, match="expected 0..4"):
        majority_labels(np.array([[5]]), (1, 1), 5)


def test_foreground_vote_by_hand():
    m = np.array([[0, 0, 2, 0],
                  [1, 0, 2, 2],
                  [0, 0, 0, 0],
                  [3, 0, 4, 0]])
    # 2x2 cells: top-left {0,0,1,0}: parts 1/4; top-right {2,0,2,2}: 2 wins either way;
    # bottom-left {0,0,3,0}: 1/4; bottom-right {0,0,4,0}: 1/4
    assert majority_labels(m, (2, 2), 5).tolist() == [0, 2, 0, 0]
    assert foreground_labels(m, (2, 2), 5, 0.25).tolist() == [1, 2, 3, 4]
    assert foreground_labels(m, (2, 2), 5, 0.5).tolist() == [0, 2, 0, 0]
    # parts together outvote background although none alone does: {1, 2, 3, 0} -> the most frequent part,
    # ties to the smaller index
    assert majority_labels(np.array([[1, 2], [3, 0]]), (1, 1), 5).tolist() == [0]
    assert foreground_labels(np.array([[1, 2], [3, 0]]), (1, 1), 5, 0.5).tolist() == [1]
    assert foreground_labels(np.array([[3, 2], [3, 0]]), (1, 1), 5, 0.5).tolist() == [3]
    # a cell with no part pixel stays background whatever the share; min_share=1 needs a full cell
    assert foreground_labels(np.zeros((2, 2), int), (1, 1), 5, 0.01).tolist() == [0]
    assert foreground_labels(np.array([[1, 1], [1, 0]]), (1, 1), 5, 1.0).tolist() == [0]
    # a grid finer than the map: the pixel under the centre, as the majority vote
    assert foreground_labels(np.array([[1], [0]]), (4, 2), 3).tolist() == [1, 1, 1, 1, 0, 0, 0, 0]
    assert vote_labels(m, (2, 2), 5, "foreground").tolist() == [1, 2, 3, 4]
    assert vote_labels(m, (2, 2), 5).tolist() == [0, 2, 0, 0]
    with pytest.raises(ValueError, match="unknown parsing vote 'mode'"):
        vote_labels(m, (2, 2), 5, "mode")
    with pytest.raises(ValueError, match="min_share"):
        foreground_labels(m, (2, 2), 5, 0.0)


def test_groupings():
    lut = LIP_GROUPING.lut()
    # hat, hair, sunglasses, face -> head; coat, left-arm -> upper; pants, socks -> lower; shoes -> shoes
    assert [lut[c] for c in (0, 1, 2, 4, 13, 7, 14, 9, 8, 18, 19)] == [0, 1, 1, 1, 1, 2, 2, 3, 3, 4, 4]
    assert LIP_GROUPING.class_names == ("background", "head", "upper", "lower", "shoes")
    assert LIP_GROUPING.words() == ("head", "upper body", "lower body", "shoes")
    # synthetic: hair, face | arms, upper clothes, bag | lower clothes, legs | shoes; occluder -> background
    assert SYNTH_GROUPING.lut().tolist() == [0, 1, 1, 2, 2, 2, 3, 3, 4, 0]
    g = parse_grouping("head=1,2; torso=5", 20)
    assert g.parts == ("head", "torso") and g.lut()[5] == 2 and g.describe() == "head=1,2;torso=5"
    assert resolve_grouping("auto", "lip", 20) is LIP_GROUPING
    with pytest.raises(ValueError, match="both"):
        parse_grouping("a=1;b=1", 20)
    with pytest.raises(ValueError, match="outside"):
        parse_grouping("a=25", 20)
    with pytest.raises(ValueError, match="for 20 source classes"):
        resolve_grouping("lip", "lip", 18)


def _synth_items(root, n=None):
    from muva_lib.data.readers import read_dataset

    items = list(read_dataset("synth-a", root=root / "synth-a").train)
    return items[:n] if n else items


class _Counting(SyntheticSource):
    def __init__(self):
        super().__init__()
        self.parsed = 0

    def maps(self, items, size_hw):
        self.parsed += len(items)
        return super().maps(items, size_hw)


def test_synthetic_source_store_is_resumable(synth_small, tmp_path):
    from muva_lib.data.synthetic import load_parsing
    from muva_lib.grounding.backends.noisy_truth import domain_root

    items = _synth_items(synth_small.root, 20)
    src = _Counting()
    first = fill_store(items[:8], src, (32, 16), root=tmp_path)
    assert src.parsed == 8 and len(first) == 8
    again = fill_store(items, src, (32, 16), root=tmp_path)
    assert src.parsed == 20  # only the 12 missing were parsed
    store = ParsingStore("synth-a", "synthetic", (32, 16), tmp_path)
    assert [p.name for p in store.chunks()] == ["chunk-00000.npz", "chunk-00001.npz"]
    it = items[3]
    full = load_parsing(domain_root(it), it.relpath)
    assert np.array_equal(again[it.key], majority_labels(full, (32, 16), 10).reshape(32, 16))
    assert again[it.key].dtype == np.uint8 and set(store.read()) == {i.key for i in items}
    # grouped maps and per-patch labels on the encoder grid (8 x 4 at 128 x 64)
    cfg = ParsingCfg(store_size=(32, 16))
    labels, grouping = parsing_labels_for(items, cfg, (8, 4), root=tmp_path)
    assert grouping is SYNTH_GROUPING and labels[it.key].shape == (32,) and labels[it.key].max() <= 4
    top = np.stack([v.reshape(8, 4)[:2] for v in labels.values()])
    assert (top == 1).mean() > (top == 3).mean()  # heads at the top, not legs
    # the foreground vote keeps clearly more part patches on the coarse grid, and the same head-over-legs order
    fg, _ = parsing_labels_for(items, ParsingCfg(store_size=(32, 16), vote="foreground"), (8, 4), root=tmp_path)
    n_major = np.mean([(v > 0).sum() for v in labels.values()])
    n_fg = np.mean([(v > 0).sum() for v in fg.values()])
    assert n_fg > 1.5 * n_major, (n_major, n_fg)
    top = np.stack([v.reshape(8, 4)[:2] for v in fg.values()])
    assert (top == 1).mean() > (top == 3).mean()
    # a chunk that cannot be read is named
    store.chunks()[0].write_bytes(b"not a zip")
    with pytest.raises(StoreError, match="chunk-00000.npz"):
        store.read()


def test_store_meta_must_agree(tmp_path):
    store = ParsingStore("d", "t", (4, 2), tmp_path)
    store.check_meta({"source": "t", "num_classes": 20})
    store.check_meta({"source": "t", "num_classes": 20})
    with pytest.raises(StoreError, match="num_classes"):
        store.check_meta({"source": "t", "num_classes": 18})
    store.append({"d/a.jpg": np.ones((4, 2), np.uint8)})
    store.append({"d/a.jpg": np.full((4, 2), 2, np.uint8)})
    assert store.read()["d/a.jpg"].max() == 2  # the last chunk wins
    with pytest.raises(ValueError, match="uint8"):
        store.append({"d/b.jpg": np.ones((3, 2), np.uint8)})


def _png(path, arr, mode="L"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, np.uint8), mode).save(path)


def test_png_source_and_its_errors(fake_items, tmp_path):
    items = fake_items(3, size=(32, 64))  # W x H
    root = tmp_path / "parsing_pngs"
    src_map = np.zeros((64, 32), np.uint8)
    src_map[:16] = 2  # hair
    src_map[16:40] = 5  # upper-clothes
    src_map[40:60] = 9  # pants
    src_map[60:] = 18  # left-shoe
    for it in items:
        _png(root / it.dataset / it.relpath.replace(".jpg", ".png"), src_map)
    cfg = ParsingCfg(source="png", png_root=str(root), store_size=(16, 8))
    labels, grouping = parsing_labels_for(items, cfg, (4, 2), root=tmp_path / "store")
    assert grouping is LIP_GROUPING
    assert labels[items[0].key].reshape(4, 2)[:, 0].tolist() == [1, 2, 2, 3]
    src = PngSource(root)
    bad = items[1]
    path = root / bad.dataset / bad.relpath.replace(".jpg", ".png")
    _png(path, np.zeros((60, 32)))
    with pytest.raises(ParsingError, match=r"0001_c1s1_000000_00\.png.*is 32x60.*image is 32x64"):
        src.full_map(bad)
    _png(path, np.full((64, 32), 20))
    with pytest.raises(ParsingError, match=r"0001_c1s1_000000_00\.png: labels up to 20, expected 0..19"):
        src.full_map(bad)
    path.unlink()
    with pytest.raises(ParsingError, match=r"0001_c1s1_000000_00\.png: no parsing map"):
        src.full_map(bad)
    with pytest.raises(ParsingError, match="png_root"):
        PngSource("")


def test_auto_source_needs_a_source_for_real_data(fake_items, synth_small):
    cfg = type("P", (), dict(source="auto"))()
    assert resolve_source(cfg, _synth_items(synth_small.root, 4)) == "synthetic"
    with pytest.raises(ParsingError, match=r"fake.*parsing\.source=png parsing\.png_root=.*parsing\.source=hf"):
        resolve_source(cfg, fake_items(2))


def test_auto_source_picks_pose_for_the_real_crops(fake_items, synth_small):
    cfg = type("P", (), dict(source="auto"))()
    assert resolve_source(cfg, fake_items(2, dataset="real-vtest")) == "pose"
    assert resolve_source(cfg, fake_items(2, dataset="real-vtest-f120")) == "pose"
    mixed = [*fake_items(1, dataset="real-vtest"), *fake_items(1, dataset="market")]
    with pytest.raises(ParsingError, match=r"market.*parsing\.source=pose"):
        resolve_source(cfg, mixed)
    with pytest.raises(ParsingError, match=r"real-vtestx"):  # only the real set's own names
        resolve_source(cfg, fake_items(1, dataset="real-vtestx"))


def test_pose_grouping_and_the_list_of_sources():
    assert POSE_GROUPING.class_names == ("background", "head", "upper", "lower")
    assert POSE_GROUPING.lut().tolist() == [0, 1, 2, 3] and GROUPINGS["pose"] is POSE_GROUPING
    assert POSE_GROUPING.words() == ("head", "upper body", "lower body")
    assert PARSING_SOURCES == ("auto", "synthetic", "png", "hf", "pose")
    with pytest.raises(ParsingError, match="expected one of auto, synthetic, png, hf, pose"):
        make_source("schp", ParsingCfg())


@pytest.fixture(scope="module")
def pose_ready():
    from muva_lib.grounding.backends.pose import pose_missing

    missing = pose_missing()
    if missing:
        pytest.skip(missing)


def test_pose_source_on_real_crops(real_vtest_small, pose_ready, tmp_path, monkeypatch):
    from muva_lib.data.readers import read_dataset

    items = read_dataset("real-vtest", root=real_vtest_small.root).train[::8][:4]
    cfg = ParsingCfg()  # auto: the real crops' dataset is real-vtest-f120
    maps, grouping = parsing_maps_for(items, cfg, root=tmp_path)
    assert grouping is POSE_GROUPING and set(maps) == {it.key for it in items}
    store = ParsingStore(items[0].dataset, "pose-r1", (64, 32), tmp_path)
    assert store.meta_path.is_file() and store.keys() == set(maps)
    for key, m in maps.items():
        assert m.shape == (64, 32) and m.dtype == np.uint8 and set(np.unique(m)) == {0, 1, 2, 3}, key
        rows = {c: np.nonzero(m == c)[0].mean() for c in (1, 2, 3)}
        assert rows[1] < rows[2] < rows[3], key  # head above upper body above lower body
        assert 0.05 < (m > 0).mean() < 0.6, key  # a person, not the whole crop
    # read back from the store: no pose model runs
    monkeypatch.setattr(PoseSource, "full_map", lambda self, item: pytest.fail("parsed again"))
    again, _ = parsing_maps_for(items, cfg, root=tmp_path)
    assert all(np.array_equal(again[k], maps[k]) for k in maps)


def test_pose_source_names_crops_without_a_person(fake_items, pose_ready, tmp_path):
    items = fake_items(2, size=(64, 128), dataset="real-vtest")  # flat colour: no person to find
    with pytest.warns(UserWarning, match=r"no person found in 2 crop\(s\).*real-vtest/bounding_box_train/0000"):
        maps, _ = parsing_maps_for(items, ParsingCfg(source="pose"), root=tmp_path)
    assert all(not m.any() for m in maps.values())


def _tiny_segformer(folder):
    from transformers import SegformerConfig, SegformerForSemanticSegmentation, SegformerImageProcessor

    cfg = SegformerConfig(num_labels=20, num_encoder_blocks=2, depths=[1, 1], sr_ratios=[2, 1], hidden_sizes=[8, 16],
                          patch_sizes=[7, 3], strides=[4, 2], num_attention_heads=[1, 1], mlp_ratios=[2, 2],
                          decoder_hidden_size=16)
    SegformerForSemanticSegmentation(cfg).save_pretrained(folder)
    SegformerImageProcessor(size={"height": 64, "width": 32}).save_pretrained(folder)


def test_hf_source_with_a_tiny_random_segformer(fake_items, tmp_path):
    folder = tmp_path / "tiny-segformer"
    _tiny_segformer(folder)
    items = fake_items(3, size=(32, 64))
    src = HfSource(str(folder), "cpu", batch_size=2)
    assert src.num_classes == 20 and src.tag.startswith("hf-tiny-segformer-")
    maps = src.maps(items, (16, 8))
    assert len(maps) == 3 and maps[0].shape == (16, 8) and maps[0].dtype == np.uint8 and maps[0].max() < 20
    cfg = type("P", (), dict(source="hf", png_root="", model=str(folder), grouping="auto", store_size=(16, 8),
                             batch_size=2))()
    grouped, grouping = parsing_maps_for(items, cfg, root=tmp_path / "store")
    assert grouping is LIP_GROUPING and grouped[items[0].key].max() <= 4
    assert np.array_equal(grouped[items[0].key], LIP_GROUPING.lut()[maps[0]])
    with pytest.raises(ParsingModelNotFound,
                       match=r"(?s)huggingface-cli download nobody/no-such-parser.*parsing\.model="):
        HfSource("nobody/no-such-parser")


def test_grid_labels_and_figure(synth_small, tmp_path):
    from muva_lib.viz.human_parsing import parsing_figure

    items = _synth_items(synth_small.root, 2)
    maps = {k: SYNTH_GROUPING.lut()[m] for k, m in fill_store(items, SyntheticSource(), (32, 16), tmp_path).items()}
    labels = grid_labels(maps, (8, 4), 5)
    fig = parsing_figure(Image.open(items[0].path), maps[items[0].key], SYNTH_GROUPING.class_names,
                         labels[items[0].key], (8, 4), title=items[0].key)
    assert len(fig.axes) == 3 and len(fig.legends[0].get_texts()) == 5


def test_parsing_rows_one_column_per_image(synth_small, tmp_path):
    from muva_lib.viz.human_parsing import parsing_rows

    items = _synth_items(synth_small.root, 3)
    maps = {k: SYNTH_GROUPING.lut()[m] for k, m in fill_store(items, SyntheticSource(), (32, 16), tmp_path).items()}
    labels = grid_labels(maps, (8, 4), 5)
    images = [Image.open(it.path) for it in items]
    fig = parsing_rows(images, [maps[it.key] for it in items], SYNTH_GROUPING.class_names,
                       [labels[it.key] for it in items], (8, 4))
    assert len(fig.axes) == 9 and len(fig.legends[0].get_texts()) == 5
    assert [ax.get_ylabel() for ax in fig.axes[::3]] == ["image", "parsing", "patches 8x4"]
    # the patch panel shows exactly the majority labels
    assert np.array_equal(fig.axes[6].images[0].get_array(), labels[items[0].key].reshape(8, 4))
    assert len(parsing_rows(images, [maps[it.key] for it in items], SYNTH_GROUPING.class_names).axes) == 6
    with pytest.raises(ValueError, match="as many maps as images"):
        parsing_rows(images, [maps[items[0].key]], SYNTH_GROUPING.class_names)
    with pytest.raises(ValueError, match="need grid_hw"):
        parsing_rows(images, [maps[it.key] for it in items], SYNTH_GROUPING.class_names,
                     [labels[it.key] for it in items])
