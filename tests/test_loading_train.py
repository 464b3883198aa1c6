"""PK sampler (composition, small ids, determinism, state, distributed split), shuffled batches, the training
dataset's joint flip / crop / erasing and the training loader's determinism."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from muva_lib.config import DataCfg
from muva_lib.batches.loaders import TrainDataset, make_test_loader, make_train_loader, train_transform
from muva_lib.batches.sampler import PKSampler, ShuffledBatchSampler
from muva_lib.batches.transforms import TrainAugment, random_erase
from muva_lib.data.types import Item

#: id -> image count: 10, 2 (< K), 4, 5, 8, 1 (< K), 7
COUNTS = {0: 10, 1: 2, 2: 4, 3: 5, 4: 8, 5: 1, 6: 7}
LABELS = [pid for pid, n in COUNTS.items() for _ in range(n)]


def _ids(batch):
    return [LABELS[i] for i, _ in batch]


def test_pk_batches_are_p_ids_by_k_images():
    s = PKSampler(LABELS, batch_size=8, num_instances=4, seed=3)
    s.set_epoch(1)
    batches = s.batches()
    assert len(batches) == len(s) >= 3
    for b in batches:
        ids = _ids(b)
        assert len(b) == 8 and ids[:4] == [ids[0]] * 4 and ids[4:] == [ids[4]] * 4 and ids[0] != ids[4]
    per_id = Counter(i for b in batches for i in _ids(b[::4]))
    assert per_id[0] <= 2 and per_id[5] <= 1  # 10 images -> 2 chunks of 4; 1 image -> 1 chunk (repeats)
    small = [b[:4] if _ids(b)[0] == 5 else b[4:] for b in batches if 5 in _ids(b)]
    assert all(len({i for i, _ in c}) == 1 for c in small)  # the one image of id 5 repeated 4 times
    seen = {i for b in batches for i, _ in b}
    assert all(0 <= i < len(LABELS) for i in seen)
    chunks = [[i for i, _ in b[j:j + 4]] for b in batches for j in (0, 4)]
    assert all(len(set(c)) == 4 for c in chunks if COUNTS[LABELS[c[0]]] >= 4)  # no repeats when not needed


def test_pk_is_deterministic_and_epoch_dependent():
    a, b = PKSampler(LABELS, 8, 4, seed=3), PKSampler(LABELS, 8, 4, seed=3)
    a.set_epoch(2), b.set_epoch(2)
    assert a.batches() == b.batches()
    b.set_epoch(3)
    assert a.batches() != b.batches()
    c = PKSampler(LABELS, 8, 4, seed=4)
    c.set_epoch(2)
    assert a.batches() != c.batches()
    seeds = [s for batch in a.batches() for _, s in batch]
    assert len(set(seeds)) == len(seeds)  # one augmentation seed per sample


def test_pk_state_round_trip():
    a = PKSampler(LABELS, 8, 4, seed=3)
    a.set_epoch(5)
    state = a.state_dict()
    b = PKSampler(LABELS, 8, 4, seed=3)
    b.load_state_dict(state)
    assert b.epoch == 5 and b.batches() == a.batches()
    with pytest.raises(ValueError, match="seed"):
        PKSampler(LABELS, 8, 4, seed=9).load_state_dict(state)


def test_distributed_pk_partitions_the_global_batch():
    whole = PKSampler(LABELS, 8, 4, seed=1)
    ranks = [PKSampler(LABELS, 8, 4, seed=1, rank=r, world_size=2) for r in range(2)]
    for s in (whole, *ranks):
        s.set_epoch(4)
    glob = whole.batches()
    per_rank = [r.batches() for r in ranks]
    assert all(len(p) == len(glob) for p in per_rank)
    for g, r0, r1 in zip(glob, *per_rank):
        assert r0 + r1 == g and len(r0) == len(r1) == 4
        assert not set(_ids(r0)) & set(_ids(r1))  # whole identities per rank
    with pytest.raises(ValueError, match="whole"):
        PKSampler(LABELS, 8, 4, world_size=4)


def test_pk_refuses_too_few_ids():
    with pytest.raises(ValueError, match="cannot fill"):
        PKSampler([0, 0, 1, 1], 12, 4)


def test_shuffled_batches_cover_everything_once():
    s = ShuffledBatchSampler(10, 4, seed=0)
    s.set_epoch(1)
    batches = list(s)
    assert [len(b) for b in batches] == [4, 4, 2] and sorted(sum(batches, [])) == list(range(10))
    t = ShuffledBatchSampler(10, 4, seed=0)
    t.load_state_dict(s.state_dict())
    assert list(t) == batches


# ----------------------------------------------------------------------------- dataset and loader

def _items(tmp_path, n=8, size=(16, 32)):
    """Images whose left half is red and right half blue (so a flip is visible); pid = i // 2."""
    items = []
    for i in range(n):
        arr = np.zeros((size[1], size[0], 3), dtype=np.uint8)
        arr[:, : size[0] // 2, 0] = 255
        arr[:, size[0] // 2:, 2] = 255
        arr[0, 0, 1] = i * 20  # make the images differ
        rel = f"bounding_box_train/{i // 2:04d}_c{i % 2 + 1}s1_{i:06d}_00.png"
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(arr).save(path)
        items.append(Item(str(path), i // 2, i % 2, "toy", rel))
    return items


def _masks(items, grid=(2, 1)):
    """Part 0 covers the left column, part 1 the right column of a (2 rows x ... ) grid."""
    h, w = grid
    m = np.zeros((2, h * w), dtype=bool)
    m[0, 0::w] = True
    m[1, w - 1::w] = True
    return {it.key: m for it in items}


def _cfg(**kw):
    return DataCfg(height=32, width=16, batch_size=4, num_instances=2, test_batch_size=4, **kw)


def test_joint_flip_mirrors_image_and_mask(tmp_path):
    items = _items(tmp_path)
    grid = (2, 2)
    m = np.zeros((2, 4), dtype=bool)
    m[0, [0, 2]] = True  # part 0: left column of a 2x2 grid
    masks = {it.key: m for it in items}
    cfg = _cfg(flip_prob=1.0)
    ds = TrainDataset(items, train_transform(cfg), TrainAugment(grid, flip_prob=1.0), masks)
    s = ds[(0, 123)]
    assert s["img"][2, :, 0].mean() > 0.9 and s["img"][0, :, 0].mean() < -0.9  # left is now blue
    assert s["mask"].tolist() == [[False, True, False, True], [False, False, False, False]]
    keep = TrainDataset(items, train_transform(cfg), TrainAugment(grid, flip_prob=0.0), masks)[(0, 123)]
    assert keep["img"][0, :, 0].mean() > 0.9 and keep["mask"].tolist()[0] == [True, False, True, False]
    assert s["pid"] == 0 and s["key"] == items[0].key


def test_crop_and_erasing_are_fixed_by_the_seed(tmp_path):
    items = _items(tmp_path)
    cfg = _cfg(pad=4, erase_prob=1.0)
    aug = TrainAugment((2, 1), flip_prob=0.5, pad=4, erase_prob=1.0)
    ds = TrainDataset(items, train_transform(cfg), aug)
    a, b, c = ds[(1, 7)], ds[(1, 7)], ds[(1, 8)]
    assert torch.equal(a["img"], b["img"]) and not torch.equal(a["img"], c["img"])
    assert a["img"].shape == (3, 32, 16) and "mask" not in a
    img = torch.zeros(3, 32, 16)
    erased = random_erase(img, torch.Generator().manual_seed(0), prob=1.0)
    assert (erased != 0).any() and (erased == 0).any() and (img == 0).all()


def test_missing_mask_is_named(tmp_path):
    items = _items(tmp_path)
    with pytest.raises(KeyError, match="no part mask"):
        TrainDataset(items, train_transform(_cfg()), TrainAugment((2, 1)), {items[0].key: np.zeros((2, 2), bool)})


def test_train_loader_batches_and_determinism(tmp_path):
    items = _items(tmp_path)
    cfg = _cfg()
    masks = _masks(items)

    def epoch(workers):
        c = DataCfg(**{**cfg.__dict__, "num_workers": workers})
        sampler = PKSampler([it.pid for it in items], 4, 2, seed=0)
        sampler.set_epoch(1)
        loader = make_train_loader(items, c, "cpu", sampler, grid_hw=(2, 1), masks=masks, seed=0)
        return list(loader)

    a, b = epoch(0), epoch(0)
    assert len(a) == 2
    batch = a[0]
    assert batch["img"].shape == (4, 3, 32, 16) and batch["mask"].shape == (4, 2, 2)
    assert batch["mask"].dtype == torch.bool and batch["pid"].tolist()[0] == batch["pid"].tolist()[1]
    assert all(torch.equal(x["img"], y["img"]) and x["key"] == y["key"] for x, y in zip(a, b))
    w = epoch(1)  # one worker process: the same samples (augmentation seeds come from the sampler)
    assert all(torch.equal(x["img"], y["img"]) and torch.equal(x["mask"], y["mask"]) for x, y in zip(a, w))


def test_test_loader_with_masks(tmp_path):
    items = _items(tmp_path, n=3)
    batch = next(iter(make_test_loader(items, _cfg(), "cpu", masks=_masks(items))))
    assert batch["mask"].shape == (3, 2, 2) and batch["img"].shape == (3, 3, 32, 16)


def test_an_image_that_does_not_decode_is_counted_and_skipped_or_refused_when_strict(tmp_path):
    """A file with an intact header and end marker but cut pixel data passes the readers' quick check;
    the protocol data leaves it out (one warning naming it), so the real loaders never meet it."""
    import warnings

    import readers_fakes as fakes
    from muva_lib.data.protocols import build
    from muva_lib.data.readers import DatasetError, UnreadableImageWarning, check_image

    root = fakes.market_style_tree(tmp_path / "cuhk03-np", "cuhk03np")  # PNGs
    bad_train = fakes.corrupt_pixels(root / "detected/bounding_box_train/0002_c1_0.png")
    bad_gallery = fakes.corrupt_pixels(root / "detected/bounding_box_test/0001_c2_2.png")
    assert check_image(bad_train) is None and check_image(bad_gallery) is None  # the quick check lets them pass
    with pytest.raises(OSError, match="cannot read image"):
        next(iter(make_test_loader([Item(str(bad_train), 0, 0, "cuhk03np", "x")], _cfg(), "cpu")))

    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        data = build("c3", roots={"c3": root})
        cfg = _cfg()
        train_keys = [k for batch in make_train_loader(data.train, cfg, "cpu", PKSampler(
            [it.pid for it in data.train], 4, 2, seed=0), grid_hw=(2, 1)) for k in batch["key"]]
        (split,) = data.targets["cuhk03np"]
        test_keys = [k for batch in make_test_loader(split.gallery, cfg, "cpu") for k in batch["key"]]
    unreadable = [str(w.message) for w in rec if issubclass(w.category, UnreadableImageWarning)]
    assert len(unreadable) == 1 and "skipped 2 unreadable" in unreadable[0]
    assert str(bad_train) in unreadable[0] and str(bad_gallery) in unreadable[0] and "decode" in unreadable[0]
    assert train_keys and set(train_keys) <= {it.key for it in data.train} and len(data.train) == 3
    assert "cuhk03np/detected/bounding_box_train/0002_c1_0.png" not in train_keys
    assert sorted(it.pid for it in data.train) == [0, 1, 2]  # pid 2 keeps an image: ids stay 0..N-1
    assert len(test_keys) == 2 and "cuhk03np/detected/bounding_box_test/0001_c2_2.png" not in test_keys

    with pytest.raises(DatasetError, match=f"unreadable image {bad_gallery}|unreadable image {bad_train}"):
        build("c3", roots={"c3": root}, strict=True)
