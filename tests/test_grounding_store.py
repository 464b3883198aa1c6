"""The grounding store: append-only JSONL, torn lines, resume after an interrupted or killed run."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from killing import kill_when

from muva_lib.grounding import GroundingStore, ground_items, load_masks
from muva_lib.grounding.backends.prior import PriorBackend
from muva_lib.grounding.box_store import StoreError, save_masks

N_IMAGES = 20


@pytest.fixture
def items(fake_items):
    return fake_items(N_IMAGES)


class CountingBackend(PriorBackend):
    """Prior boxes; counts the images it grounds; raises KeyboardInterrupt (a Ctrl-C) at call ``stop_at``."""

    batch_size = 4

    def __init__(self, stop_at: int | None = None) -> None:
        super().__init__()
        self.calls, self.images, self.stop_at = 0, 0, stop_at

    def ground(self, images, items):
        if self.calls == self.stop_at:
            raise KeyboardInterrupt
        self.calls += 1
        self.images += len(images)
        return super().ground(images, items)


def lines(store):
    return [json.loads(x) for x in store.path.read_text().splitlines()]


def test_append_read_last_line_wins(tmp_path):
    store = GroundingStore("fake", "t", tmp_path)
    assert store.read() == {} and store.repair() == 0
    store.append([{"key": "fake/a", "v": 1}, {"key": "fake/b", "v": 1}])
    store.append([{"key": "fake/a", "v": 2}])
    assert {k: r["v"] for k, r in store.read().items()} == {"fake/a": 2, "fake/b": 1}
    assert store.path == tmp_path / "fake" / "t.jsonl"


def test_torn_last_line_is_ignored_then_cut(tmp_path):
    store = GroundingStore("fake", "t", tmp_path)
    store.append([{"key": "fake/a"}])
    digest = store.digest()
    with open(store.path, "ab") as fh:
        fh.write(b'{"key": "fake/b", "par')
    assert set(store.read()) == {"fake/a"} and store.digest() == digest
    with pytest.warns(UserWarning, match="torn last line"):
        assert store.repair() == len(b'{"key": "fake/b", "par')
    assert store.path.read_bytes().endswith(b"}\n")


def test_corrupt_middle_line_names_file_and_line(tmp_path):
    store = GroundingStore("fake", "t", tmp_path)
    store.append([{"key": "fake/a"}])
    with open(store.path, "ab") as fh:
        fh.write(b"not json\n")
    store.append([{"key": "fake/c"}])
    with pytest.raises(StoreError, match=r"t\.jsonl:2"):
        store.read()


def test_bad_names_are_refused(tmp_path):
    with pytest.raises(ValueError):
        GroundingStore("a/b", "t", tmp_path)


def test_masks_file_round_trip(tmp_path):
    masks = {"d/b.jpg": np.eye(3, 8, dtype=bool), "d/a.jpg": np.ones((3, 8), dtype=bool)}
    save_masks(tmp_path / "m.npz", masks, ("head", "upper", "legs"), "abc")
    back, parts, digest = load_masks(tmp_path / "m.npz")
    assert parts == ("head", "upper", "legs") and digest == "abc" and list(back) == ["d/a.jpg", "d/b.jpg"]
    assert all((back[k] == masks[k]).all() for k in masks)


def test_resume_after_interrupt_loses_nothing_and_repeats_nothing(items, tmp_path):
    root = tmp_path / "store"
    first = CountingBackend(stop_at=2)
    with pytest.raises(KeyboardInterrupt):
        ground_items(items, first, root=root, progress=False)
    store = GroundingStore("fake", "prior", root)
    assert first.images == 8 and len(lines(store)) == 8  # two whole batches made it to disk
    second = CountingBackend()
    report = ground_items(items, second, root=root, progress=False)[0]
    assert second.images == N_IMAGES - 8 and report.grounded == N_IMAGES - 8 and report.skipped == 8
    keys = [r["key"] for r in lines(store)]
    assert len(keys) == len(set(keys)) == N_IMAGES and set(keys) == {it.key for it in items}
    assert ground_items(items, CountingBackend(), root=root, progress=False)[0].grounded == 0


def test_resume_after_a_torn_write(items, tmp_path):
    root = tmp_path / "store"
    ground_items(items[:6], CountingBackend(), root=root, progress=False)
    store = GroundingStore("fake", "prior", root)
    with open(store.path, "ab") as fh:  # killed in the middle of the next append
        fh.write(b'{"key": "fake/bounding_box_train/0006_c1s1_000000_00.jpg", "parts": {"he')
    with pytest.warns(UserWarning, match="torn last line"):
        ground_items(items, CountingBackend(), root=root, progress=False)
    keys = [r["key"] for r in lines(store)]
    assert len(keys) == len(set(keys)) == N_IMAGES


_SLOW_RUN = """
import sys, time
from muva_lib.data.types import Item
from muva_lib.grounding import ground_items
from muva_lib.grounding.backends.prior import PriorBackend

class Slow(PriorBackend):
    batch_size = 2
    def ground(self, images, items):
        time.sleep(0.15)
        return super().ground(images, items)

items = [Item(p, 0, 0, "fake", p.split("/fake/", 1)[1]) for p in sys.argv[2:]]
ground_items(items, Slow(), root=sys.argv[1], progress=False)
"""


@pytest.mark.slow
def test_killed_process_resumes(items, tmp_path):
    root = tmp_path / "store"
    script = tmp_path / "slow_run.py"
    script.write_text(textwrap.dedent(_SLOW_RUN))
    proc = subprocess.Popen([sys.executable, str(script), str(root), *[it.path for it in items]])
    store = GroundingStore("fake", "prior", root)
    kill_when(proc, lambda: store.path.is_file() and store.path.read_bytes().count(b"\n") >= 4, timeout=60)
    done_before = set(store.read())
    assert 4 <= len(done_before) < N_IMAGES
    backend = CountingBackend()
    ground_items(items, backend, root=root, progress=False)
    assert backend.images == N_IMAGES - len(done_before)
    keys = [r["key"] for r in lines(store)]
    assert len(keys) == len(set(keys)) == N_IMAGES
