"""Backends (prior, synthetic and its noise model), the run loop's handling of bad backends, masks, CLI."""
from __future__ import annotations

import argparse
import math

import numpy as np
import pytest
from PIL import Image

from muva_lib.config import VgeCfg
from muva_lib.data.types import PARTS
from muva_lib.grounding import (Answer, Backend, GroundingStore, boxes_to_masks, get_backend, ground_items,
                                list_backends, part_masks_for)
from muva_lib.grounding.backends.noisy_truth import NOISE_PRESETS, cogvlm_text, corrupt, gt_boxes


@pytest.fixture(scope="module")
def synth_items(synth_small):
    from muva_lib.data.readers import read_dataset

    return list(read_dataset("synth-a", root=synth_small.root / "synth-a").train)


@pytest.fixture
def six(fake_items):
    return fake_items(6)


def test_registry():
    assert list_backends() == ["prior", "synthetic", "mllm", "detector", "cascade", "pose"]
    with pytest.raises(ValueError, match="known: prior"):
        get_backend("cogvlm")


def test_prior_backend_scales_its_bands(six):
    res = get_backend("prior").ground([Image.new("RGB", (100, 200))], six[:1])[0]
    assert res["legs"] == Answer("prior band", (15.0, 106.0, 85.0, 200.0), "ok")


def test_answer_invariants():
    with pytest.raises(ValueError):
        Answer("x", None, "ok")
    with pytest.raises(ValueError):
        Answer("x", (0, 0, 1, 1), "fallback")
    with pytest.raises(ValueError):
        Answer("x", None, "maybe")
    a = Answer("[[1,2,3,4]]", (1.0, 2.0, 3.0, 4.0), "ok", "clipped to image")
    assert Answer.from_dict(a.to_dict()) == a


def test_cogvlm_text():
    assert cogvlm_text((38, 3, 73, 44), (128, 256)) == "[[297,012,570,172]]"


def test_noise_model_rates_and_determinism():
    truth = {"head": (40.0, 5.0, 80.0, 40.0), "upper": (20.0, 40.0, 110.0, 140.0), "legs": (30.0, 130.0, 100.0, 250.0)}
    kinds = {p: [] for p in truth}
    for i in range(4000):
        for p, (_, kind) in corrupt(truth, (128, 256), NOISE_PRESETS["paper"], np.random.default_rng(i)).items():
            kinds[p].append(kind)
    legs = np.array(kinds["legs"])
    paper = NOISE_PRESETS["paper"]
    assert abs((legs == "oversize").mean() - paper.oversize["legs"]) < 0.025
    assert abs((legs == "oversplit").mean() - paper.oversplit["legs"] * (1 - paper.oversize["legs"])) < 0.025
    clean = corrupt(truth, (128, 256), NOISE_PRESETS["none"], np.random.default_rng(0))
    assert {k for _, k in clean.values()} == {"true"}
    a = corrupt(truth, (128, 256), paper, np.random.default_rng(7))
    assert a == corrupt(truth, (128, 256), paper, np.random.default_rng(7))


def test_invisible_parts_are_answered_as_missing():
    out = corrupt({"head": None, "upper": (0, 0, 10, 10), "legs": (0, 10, 10, 20)}, (10, 20),
                  NOISE_PRESETS["none"], np.random.default_rng(0))
    assert out["head"][1] == "missing" and "[[" not in out["head"][0]


def test_synthetic_backend_reproduces_truth_without_noise(synth_items):
    backend = get_backend("synthetic", noise="none")
    items = synth_items[:8]
    images = [Image.open(it.path) for it in items]
    truth = gt_boxes(items)
    for it, res in zip(items, backend.ground(images, items)):
        for p, ans in res.items():
            t = truth[it.key][p]
            if t is None:
                assert ans.status == "fallback"
            else:  # thousandths of the image: within one pixel
                assert ans.status == "ok" and max(abs(a - b) for a, b in zip(ans.box, t)) <= 1.0


def test_synthetic_backend_is_deterministic_per_image(synth_items):
    b = get_backend("synthetic", noise="heavy", seed=3)
    assert b.tag == "synthetic-heavy-s3"
    items = synth_items[:10]
    ims = [Image.open(it.path) for it in items]
    whole = b.ground(ims, items)
    one_by_one = [b.ground([im], [it])[0] for im, it in zip(ims, items)]
    assert whole == one_by_one
    with pytest.raises(ValueError, match="noise preset"):
        get_backend("synthetic", noise="loud")


def test_synthetic_backend_needs_ground_truth(six, tmp_path):
    """Refused up front (not a stored failure per image, which trained on the prior boxes)."""
    with pytest.raises(ValueError, match="no ground truth|has none"):
        ground_items(six, get_backend("synthetic"), root=tmp_path / "s", progress=False)
    assert GroundingStore("fake", "synthetic-paper", tmp_path / "s").read() == {}


class BadBackend(Backend):
    """Misbehaves per image index (from the file name): raises, drops parts, NaN / swapped / huge boxes."""

    name = "bad"
    batch_size = 6

    def ground(self, images, items):
        out = []
        for im, it in zip(images, items):
            i = it.pid
            if i == 0:
                raise RuntimeError("CUDA out of memory (simulated)")
            if i == 1:
                out.append({"head": Answer("[[100,100,300,300]]", (6.4, 12.8, 19.2, 38.4), "ok")})  # no upper, legs
            elif i == 2:
                out.append({p: Answer("nan", (math.nan, 0, 1, 1), "ok") for p in self.parts})
            elif i == 3:
                out.append({p: Answer("swap", (50.0, 60.0, 10.0, 20.0), "ok") for p in self.parts})
            elif i == 4:
                out.append({p: Answer("huge", (-500.0, 0.0, 900.0, 128.0), "ok") for p in self.parts})
            else:
                out.append("not a dict")
        return out


def test_bad_backend_output_never_crashes_the_run(six, tmp_path):
    root = tmp_path / "store"
    rep = ground_items(six, BadBackend(), root=root, progress=False)[0]
    recs = GroundingStore("fake", "bad", root).read()
    by_pid = {int(k.split("/")[-1][:4]): r["parts"] for k, r in recs.items()}
    assert len(by_pid) == 6
    assert by_pid[0]["legs"]["status"] == "failed" and "CUDA out of memory" in by_pid[0]["legs"]["reason"]
    assert by_pid[1]["head"]["status"] == "ok"
    assert by_pid[1]["legs"] == {"raw": "", "box": None, "status": "fallback",
                                 "reason": "backend gave no answer for this part"}
    assert by_pid[2]["head"]["reason"] == "non-finite coordinates (NaN or inf)"
    assert by_pid[3]["head"]["reason"].startswith("swapped corners")
    assert by_pid[4]["head"]["reason"].startswith("out of range")
    assert by_pid[5]["head"]["status"] == "failed" and "not a dict" in by_pid[5]["head"]["reason"]
    assert rep.totals() == {"ok": 1, "fallback": 11, "failed": 6}
    # every image still gets a calibrated box and a mask row per part
    masks = part_masks_for(six, VgeCfg(backend="prior"), (8, 4), root=root)
    assert len(masks) == 6


def test_unreadable_image_is_a_recorded_failure(six, tmp_path):
    open(six[0].path, "wb").close()  # empty file
    rep = ground_items(six, get_backend("prior"), root=tmp_path / "s", progress=False)[0]
    rec = GroundingStore("fake", "prior", tmp_path / "s").read()[six[0].key]
    assert rec["size"] is None and rec["parts"]["head"]["status"] == "failed"
    assert "cannot open image" in rec["parts"]["head"]["reason"] and rep.counts["head"]["ok"] == 5
    with pytest.warns(UserWarning, match="1 of 6 images have no mask"):
        assert len(part_masks_for(six, VgeCfg(backend="prior"), (8, 4), root=tmp_path / "s")) == 5


def test_retry_failed(six, tmp_path):
    class Flaky(Backend):
        name = "flaky"
        broken = True

        def ground(self, images, items):
            if self.broken:
                raise OSError("disk hiccup")
            return get_backend("prior").ground(images, items)

    b = Flaky()
    ground_items(six, b, root=tmp_path, progress=False)
    b.broken = False
    assert ground_items(six, b, root=tmp_path, progress=False)[0].grounded == 0
    rep = ground_items(six, b, root=tmp_path, progress=False, retry_failed=True)[0]
    assert rep.grounded == 6 and rep.totals()["failed"] == 0


def test_part_masks_for_sources_and_cache(synth_items, tmp_path):
    grid = (8, 4)  # 128 x 64 images at patch 16
    cal = part_masks_for(synth_items, VgeCfg(), grid, root=tmp_path)
    assert set(cal) == {it.key for it in synth_items}
    m = next(iter(cal.values()))
    assert m.shape == (3, 32) and m.dtype == bool and m.any(axis=1).all()
    store = GroundingStore("synth-a", "synthetic-paper", tmp_path)
    npz = store.masks_path("calibrated", grid)
    stamp = npz.stat().st_mtime_ns
    again = part_masks_for(synth_items, VgeCfg(), grid, root=tmp_path)
    assert npz.stat().st_mtime_ns == stamp and all((again[k] == cal[k]).all() for k in cal)
    gt = part_masks_for(synth_items, VgeCfg(source="gt"), grid)
    truth = gt_boxes(synth_items[:1])[synth_items[0].key]
    assert (gt[synth_items[0].key] == boxes_to_masks(truth, (128, 64), grid, PARTS)).all()
    raw = part_masks_for(synth_items, VgeCfg(source="raw"), grid, root=tmp_path)
    assert set(raw) == set(cal) and store.masks_path("raw", grid).is_file()
    agree = np.mean([(cal[k] == gt[k]).mean() for k in cal])
    agree_raw = np.mean([(raw[k] == gt[k]).mean() for k in cal])
    assert agree > agree_raw  # calibrated masks are closer to the truth


def _run(module, argv, capsys):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    code = module.run(parser.parse_args(argv))
    return code, capsys.readouterr()


def test_ground_and_calibrate_commands(synth_small, tmp_path, capsys):
    from muva_lib.commands import recalibrate as calibrate, ground

    args = ["--dataset", "synth-a", "--root", str(synth_small.root / "synth-a"), "--store-root", str(tmp_path),
            "--grid", "8x4"]
    code, out = _run(ground, [*args, "--limit", "50", "--quiet"], capsys)
    assert code == 0 and "50 grounded now" in out.out and "| legs" in out.out and "fell back" in out.out
    code, out = _run(ground, [*args, "--quiet"], capsys)
    assert code == 0 and "already in the store" in out.out and "mean IoU" in out.out
    code, out = _run(calibrate, [*args, "--set", "fence_k=3.0"], capsys)
    assert code == 0 and "calibration" in out.out
    code, out = _run(calibrate, [*args, "--backend", "prior"], capsys)
    assert code == 2 and "no grounding store" in out.err
    code, out = _run(ground, [*args, "--set", "fence_q=1"], capsys)
    assert code == 2 and "fence_q" in out.err
