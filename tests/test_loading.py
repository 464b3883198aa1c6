"""ImageDataset samples, the test transform and loader, and evaluate_split end to end on tiny images."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from muva_lib.config import DataCfg, EvalCfg
from muva_lib.batches.loaders import ImageDataset, make_test_loader, test_transform as make_transform
from muva_lib.data.types import Item, Split
from muva_lib.eval import evaluate_split

#: One colour per identity: a colour-mean encoder separates the ids perfectly.
COLOURS = {1: (220, 30, 30), 2: (30, 200, 40), 3: (40, 40, 210)}


def write_items(root, specs, dataset="toy"):
    """specs: (pid, camid) pairs -> Items whose image is a 20x10 block of the pid's colour."""
    items = []
    for i, (pid, cam) in enumerate(specs):
        rel = f"img/{pid:04d}_c{cam}_{i:03d}.png"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (10, 20), COLOURS[pid]).save(path)
        items.append(Item(path=str(path), pid=pid, camid=cam, dataset=dataset, relpath=rel, domain=0))
    return items


def small_cfg(**kw) -> DataCfg:
    return DataCfg(height=16, width=8, test_batch_size=2, num_workers=0, **kw)


def test_dataset_returns_dict_samples(tmp_path):
    items = write_items(tmp_path, [(1, 0), (2, 1), (3, 2)])
    cfg = small_cfg()
    ds = ImageDataset(items, make_transform(cfg.height, cfg.width, mean=cfg.pixel_mean, std=cfg.pixel_std))
    sample = ds[1]
    assert set(sample) == {"img", "pid", "camid", "domain", "index", "key"}
    assert sample["img"].shape == (3, 16, 8) and sample["img"].dtype == torch.float32
    assert (sample["pid"], sample["camid"], sample["index"]) == (2, 1, 1)
    assert sample["key"] == items[1].key == "toy/img/0002_c1_001.png"
    # (200 / 255 - 0.5) / 0.5 in the green channel of pid 2's colour
    assert sample["img"][1].mean().item() == pytest.approx((200 / 255 - 0.5) / 0.5, abs=1e-5)


def test_loader_keeps_order_and_batches(tmp_path):
    items = write_items(tmp_path, [(1, 0), (2, 1), (3, 2), (1, 1), (2, 0)])
    loader = make_test_loader(items, small_cfg(), "cpu")
    assert not loader.pin_memory
    batches = list(loader)
    assert [len(b["key"]) for b in batches] == [2, 2, 1]
    assert torch.cat([b["index"] for b in batches]).tolist() == [0, 1, 2, 3, 4]
    assert torch.cat([b["pid"] for b in batches]).tolist() == [1, 2, 3, 1, 2]
    assert batches[0]["img"].shape == (2, 3, 16, 8)


def test_bad_interpolation_and_unreadable_image(tmp_path):
    with pytest.raises(ValueError, match="interpolation"):
        make_transform(16, 8, mean=(0.5,) * 3, std=(0.5,) * 3, interpolation="area51")
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg")
    ds = ImageDataset([Item(path=str(bad), pid=1, camid=0, dataset="toy", relpath="broken.jpg")])
    with pytest.raises(OSError, match="broken.jpg"):
        ds[0]


def test_evaluate_split_end_to_end(tmp_path):
    # Query: one image per id on camera 0. Gallery: each id on camera 1 (true match) plus a
    # same-id camera-0 image (junk). A colour-mean encoder ranks the match first: mAP = R1 = 1.
    query = write_items(tmp_path / "q", [(1, 0), (2, 0), (3, 0)])
    gallery = write_items(tmp_path / "g", [(1, 1), (2, 1), (3, 1), (1, 0), (3, 0)])
    split = Split(dataset="toy", train=(), query=tuple(query), gallery=tuple(gallery))
    encode = lambda x: x.mean(dim=(2, 3))  # noqa: E731
    res = evaluate_split(encode, split, small_cfg(), EvalCfg(flip=True), "cpu")
    assert res["mAP"] == pytest.approx(1.0) and res["rank1"] == 1.0
    assert res["num_valid_queries"] == 3 and res["num_queries"] == 3
    np.testing.assert_array_equal(res["cmc"][:3], [1, 1, 1])


def test_a_missing_mask_or_parsing_map_is_named_when_the_dataset_is_built():
    from muva_lib.batches.loaders import TrainDataset

    items = [Item(path=f"/x/{i}.jpg", pid=1, camid=0, dataset="toy", relpath=f"{i}.jpg") for i in range(4)]
    with pytest.raises(KeyError, match=r"3 of 4 images have no part mask, e.g. \['toy/1.jpg'"):
        ImageDataset(items, masks={items[0].key: np.zeros((3, 8), bool)})
    with pytest.raises(KeyError, match="4 of 4 images have no parsing labels"):
        TrainDataset(items, transform=None, augment=None, parsing={})
