"""Grounding under faults and bad input: SIGKILL and restart, torn lines, a read-only store, two concurrent
runs, non-finite stored boxes, a wrong answer format, prior fallbacks, failure rates as config, the CLI's backends."""
from __future__ import annotations

import argparse
import builtins
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from muva_lib.commands import ground as ground_cmd
from muva_lib.config import RunCfg, VgeCfg, apply_overrides, parse_overrides
from muva_lib.grounding import GroundingStore, backend_from_cfg, ground_items, part_masks_for, part_masks_with_health
from muva_lib.grounding.answers import ANSWER_FORMATS, FORMATS
from muva_lib.grounding.backends import list_backends
from muva_lib.grounding.backends.mllm import MllmBackend
from muva_lib.grounding.backends.noisy_truth import NOISE_PRESETS, SyntheticBackend
from muva_lib.grounding.backends.prior import PriorBackend
from muva_lib.grounding.box_store import StoreWriteError
from muva_lib.grounding.failure_sweep import sweep_failure_rate

from killing import kill_when

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def synth_items(synth_small):
    from muva_lib.data.readers import read_dataset

    return list(read_dataset("synth-a", root=synth_small.root / "synth-a").train)


@pytest.fixture(scope="module")
def big_domain(tmp_path_factory):
    """synth-a with 480 small training images: long enough to be killed half way when grounded one
    image per append."""
    from muva_lib.data.synthetic import generate

    root = tmp_path_factory.mktemp("ground_faults")
    generate(root, seed=0, domains=("synth-a",), ids=90, images_per_id=8, height=64, width=32, distractors=2,
             workers=2)
    return root / "synth-a"


def _cli_args(domain: Path, store_root: Path, *extra: str) -> list[str]:
    return ["--dataset", "synth-a", "--root", str(domain), "--store-root", str(store_root), "--backend",
            "synthetic", "--grid", "4x2", "--quiet", *extra]


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    ground_cmd.add_arguments(parser)
    return parser.parse_args(argv)


def _spawn(argv: list[str], tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path, Path]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "MUVA_DATA": str(tmp_path / "data"), "PYTHONPATH": str(REPO)}
    out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        proc = subprocess.Popen([sys.executable, "-m", "muva_lib", "ground", *argv], cwd=REPO, env=env,
                                stdout=fo, stderr=fe)
    return proc, out, err


def _lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


# ----------------------------------------------------------------------------- kill, restart, torn line

@pytest.mark.slow
def test_ground_cli_killed_half_way_resumes_to_the_uninterrupted_store(big_domain, tmp_path, capsys):
    store = GroundingStore("synth-a", "synthetic-paper", tmp_path / "killed")
    argv = _cli_args(big_domain, tmp_path / "killed", "--batch-size", "1")
    proc, _, err = _spawn(argv, tmp_path, "killed")
    kill_when(proc, lambda: store.path.is_file() and store.path.read_bytes().count(b"\n") >= 20,
              why=f"(stderr: {err})")
    before = store.path.read_bytes()
    done = before.count(b"\n")
    assert before.endswith(b"\n") and 20 <= done < 480  # fsync'd whole lines only
    with open(store.path, "ab") as fh:  # and a write cut in the middle, as a kill mid-append leaves it
        fh.write(b'{"key": "synth-a/bounding_box_train/99')
    with pytest.warns(UserWarning, match=rf"synthetic-paper\.jsonl:{done + 1}: removed a torn last line"):
        assert ground_cmd.run(_parse(argv)) == 0
    out = capsys.readouterr().out
    assert f"{480 - done} grounded now, {done} already in the store" in out
    after = store.path.read_bytes()
    assert after.startswith(before)  # nothing lost, nothing rewritten
    keys = [r["key"] for r in _lines(store.path)]
    assert len(keys) == len(set(keys)) == 480  # nothing done twice, no torn line left
    assert ground_cmd.run(_parse(_cli_args(big_domain, tmp_path / "whole"))) == 0
    whole = GroundingStore("synth-a", "synthetic-paper", tmp_path / "whole")
    assert after == whole.path.read_bytes()  # byte-identical to an uninterrupted run


@pytest.mark.slow
def test_two_ground_runs_on_one_store_ground_each_image_once(big_domain, tmp_path):
    argv = _cli_args(big_domain, tmp_path / "shared", "--batch-size", "1")
    runs = [_spawn(argv, tmp_path, f"run{i}") for i in range(2)]
    for proc, _, err in runs:
        assert proc.wait(timeout=300) == 0, err.read_text()[-2000:]
    grounded = [int(re.search(r"(\d+) grounded now", out.read_text()).group(1)) for _, out, _ in runs]
    assert sum(grounded) == 480, grounded
    keys = [r["key"] for r in _lines(GroundingStore("synth-a", "synthetic-paper", tmp_path / "shared").path)]
    assert len(keys) == len(set(keys)) == 480


# ----------------------------------------------------------------------------- read-only data/

@pytest.fixture
def read_only(monkeypatch):
    """``read_only(folder)``: chmod it read-only and make every write-open under it fail (as root chmod
    does not stop writes); returns the list of write-opens attempted."""
    attempts: list[tuple[str, str]] = []
    guarded: list[str] = []
    real_open = builtins.open

    def fake_open(file, mode="r", *args, **kwargs):
        if isinstance(file, (str, Path)) and any(str(file).startswith(g) for g in guarded) \
                and any(c in mode for c in "wax+"):
            attempts.append((str(file), mode))
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, mode, *args, **kwargs)

    def make(folder: Path) -> list[tuple[str, str]]:
        for p in [folder, *folder.rglob("*")]:
            if p.is_dir():
                p.chmod(0o555)
        guarded.append(str(folder))
        monkeypatch.setattr(builtins, "open", fake_open)
        return attempts

    yield make
    for g in guarded:
        for p in [Path(g), *Path(g).rglob("*")]:
            if p.is_dir():
                p.chmod(0o755)


def test_a_complete_store_is_read_without_any_write(fake_items, tmp_path, read_only, recwarn):
    items = fake_items(12)
    root = tmp_path / "store"
    vge = VgeCfg(backend="prior")
    first = part_masks_for(items, vge, (8, 4), root=root)  # grounds, calibrates, caches the masks
    attempts = read_only(root)
    again = part_masks_for(items, vge, (8, 4), root=root)
    assert attempts == [] and [str(w.message) for w in recwarn if "cannot write" in str(w.message)] == []
    assert set(again) == set(first) and all((again[k] == first[k]).all() for k in first)


def test_a_store_with_work_to_do_names_the_path_and_the_ways_out(fake_items, tmp_path, read_only):
    items = fake_items(12)
    root = tmp_path / "store"
    ground_items(items[:6], PriorBackend(), root=root, progress=False)
    read_only(root)
    with pytest.raises(StoreWriteError) as exc:
        ground_items(items, PriorBackend(), root=root, progress=False)
    msg = str(exc.value)
    assert str(root / "fake") in msg and "--store-root" in msg and "MUVA_DATA" in msg and "Permission denied" in msg


def test_a_complete_store_without_its_caches_warns_and_still_gives_the_masks(fake_items, tmp_path, read_only):
    items = fake_items(12)
    root = tmp_path / "store"
    ground_items(items, PriorBackend(), root=root, progress=False)
    read_only(root)
    with pytest.warns(UserWarning, match=r"cannot write .*__calibrated\.json.*MUVA_DATA.*not cached"):
        masks = part_masks_for(items, VgeCfg(backend="prior"), (8, 4), root=root)
    assert set(masks) == {it.key for it in items}


def test_ground_cli_on_a_read_only_store_ends_with_one_clear_line(synth_small, tmp_path, read_only, capsys):
    args = _cli_args(synth_small.root / "synth-a", tmp_path / "store")
    assert ground_cmd.run(_parse([*args, "--limit", "10"])) == 0
    read_only(tmp_path / "store")
    assert ground_cmd.run(_parse(args)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot write ") and "--store-root" in err and "Traceback" not in err


def test_ground_cli_validates_its_set_overrides_before_any_work(synth_small, tmp_path, capsys):
    """--set values go through the same validation as a training config: a negative fence is one line."""
    args = _cli_args(synth_small.root / "synth-a", tmp_path / "store")
    assert ground_cmd.run(_parse([*args, "--set", "fence_k=-1"])) == 2
    err = capsys.readouterr().err
    assert "vge.fence_k" in err and "-1" in err and "Traceback" not in err
    assert not (tmp_path / "store").exists() or not any((tmp_path / "store").rglob("*.jsonl"))


# ----------------------------------------------------------------------------- bad stored boxes, bad formats

def test_a_nan_box_in_the_store_is_dropped_counted_and_reported(synth_items, tmp_path):
    root = tmp_path / "store"
    ground_items(synth_items, SyntheticBackend(), root=root, progress=False)
    store = GroundingStore("synth-a", "synthetic-paper", root)
    recs = _lines(store.path)
    n = next(i for i, r in enumerate(recs) if r["parts"]["head"]["status"] == "ok")
    recs[n]["parts"]["head"]["box"] = [float("nan")] * 4
    store.path.write_text("".join(json.dumps(r) + "\n" for r in recs))  # json writes NaN
    with pytest.warns(UserWarning, match=rf"1 stored box\(es\) not finite.*line {n + 1} head"):
        masks, health = part_masks_with_health(synth_items, VgeCfg(), (8, 4), root=root)
    assert all(m[0].any() for m in masks.values())  # no head mask is emptied by the NaN
    assert health["dropped_boxes"] == {"synth-a": 1}
    with pytest.warns(UserWarning, match=r"synthetic-paper\.jsonl: 1 stored box"):
        assert store.read()[recs[n]["key"]]["parts"]["head"]["status"] == "fallback" and store.dropped
    with pytest.warns(UserWarning):
        assert ground_items(synth_items, SyntheticBackend(), root=root, progress=False)[0].dropped == 1


def test_training_masks_do_not_depend_on_other_records_in_the_store(synth_items, tmp_path):
    """Calibration is fitted on the images asked for: records of other images in the same store (test
    images grounded for a figure, an earlier version of the dataset) must not move the training masks.
    Before, the fences came from the whole store, so two data folders gave one run different masks."""
    vge = apply_overrides(RunCfg(), {"vge.backend": "synthetic"}).vge
    clean = part_masks_for(synth_items, vge, (16, 8), root=tmp_path / "clean")
    store = GroundingStore("synth-a", "synthetic-paper", tmp_path / "busy")
    part_masks_for(synth_items, vge, (16, 8), root=tmp_path / "busy")  # ground the same images first
    w, h = 64, 128
    store.append([{"key": f"synth-a/other/{i:04d}.jpg", "size": [w, h],  # whole-person boxes for every part
                   "parts": {p: {"box": [0.0, 0.0, float(w), float(h)], "raw": "", "reason": "", "status": "ok"}
                             for p in ("head", "upper", "legs")}} for i in range(3 * len(synth_items))])
    busy = part_masks_for(synth_items, vge, (16, 8), root=tmp_path / "busy")
    assert busy.keys() == clean.keys()
    assert all(np.array_equal(busy[k], clean[k]) for k in clean)


def test_the_synthetic_backend_refuses_a_dataset_without_ground_truth(fake_items, tmp_path):
    """Real crops grounded with the synthetic backend used to store a failure for every image and train on
    the prior boxes (the real track's MUVA run did); now it is refused before anything is written."""
    items = fake_items(4)
    with pytest.raises(ValueError, match=r"vge.backend=synthetic needs .*fake has none.*vge.backend=pose"):
        ground_items(items, SyntheticBackend(), root=tmp_path, progress=False)
    assert not list(tmp_path.rglob("*.jsonl"))
    with pytest.raises(ValueError, match="needs a synthetic domain"):
        part_masks_for(items, apply_overrides(RunCfg(), {"vge.backend": "synthetic"}).vge, (4, 2), root=tmp_path)


def test_the_real_track_grounds_the_real_crops_with_the_pose_backend():
    from muva_lib import runs

    cfg = runs.resolve("muva", "smoke", "real-vtest", 0, runs.REAL_OVERRIDES)
    assert cfg.vge.backend == "pose"


def test_records_of_other_files_under_the_same_names_are_grounded_again(fake_items, tmp_path):
    """Store records are keyed by dataset/relpath: after the dataset is regenerated (or another dataset of
    that name was grounded into the store, as a test's small synth-a once was) the old records must not
    answer for the new files. Their byte size tells; they are grounded again, with a warning."""
    from muva_lib.grounding.backends.prior import PriorBackend as Prior

    store = GroundingStore("fake", "prior", tmp_path / "store")
    first = fake_items(4, size=(64, 128))
    ground_items(first, Prior(), root=tmp_path / "store", progress=False)
    assert {tuple(r["size"]) for r in store.read().values()} == {(64, 128)}
    again = fake_items(4, size=(48, 160))  # the same names, other files
    with pytest.warns(UserWarning, match="4 record.*other files under the same names"):
        rep = ground_items(again, Prior(), root=tmp_path / "store", progress=False)[0]
    assert rep.grounded == 4 and {tuple(r["size"]) for r in store.read().values()} == {(48, 160)}
    ground_items(again, Prior(), root=tmp_path / "store", progress=False)  # current now: nothing to do
    assert len(store.path.read_text().splitlines()) == 8


def test_answer_format_is_checked_before_anything_loads():
    assert ANSWER_FORMATS == ("auto", *FORMATS)
    with pytest.raises(ValueError, match=r"vge\.answer_format='cogvml'.*allowed: auto, qwen_json.*'cogvlm'"):
        MllmBackend("no/such-model", answer_format="cogvml")
    with pytest.raises(ValueError, match="answer_format"):
        backend_from_cfg(VgeCfg(backend="mllm", model="no/such-model", answer_format="json"))


def test_more_fallbacks_than_the_set_share_warn_and_reach_the_run_manifest(synth_items, tmp_path, monkeypatch):
    from muva_lib.train.setup import training_masks

    monkeypatch.setenv("MUVA_DATA", str(tmp_path / "data"))  # the stores of this small synth-a, not the checkout's

    class Manifest:
        fields: dict = {}

        def update_manifest(self, **kw):
            self.fields.update(kw)

    cfg = apply_overrides(RunCfg(), {"vge.noise_missing": [0.7]})
    with pytest.warns(UserWarning, match=r"synth-a \[synthetic-paper-r\w+\]: head \d+%, upper \d+%, legs \d+% of 144 "
                                        r"images .*fall back to the prior.*max_fallback_share=0\.5"):
        run = Manifest()
        training_masks(cfg, synth_items, (8, 4), "cpu", run=run)  # type: ignore[arg-type]
    g = run.fields["grounding"]
    assert g["fallback_share"]["synth-a"]["legs"] > 0.5 and len(g["warnings"]) == 1
    _, quiet = part_masks_with_health(synth_items, VgeCfg(), (8, 4))  # the paper preset stays under the share
    assert quiet["warnings"] == [] and max(quiet["fallback_share"]["synth-a"].values()) < 0.2


# ----------------------------------------------------------------------------- failure rates as config fields

def test_failure_rates_are_config_fields_over_the_preset():
    vge = apply_overrides(RunCfg(), parse_overrides(["vge.noise_missing=0.3", "vge.noise_oversize=[0.1, 0.2, 0.3]",
                                                     "vge.noise_swap=0"])).vge
    b = backend_from_cfg(vge)
    paper = NOISE_PRESETS["paper"]
    assert b.noise.missing == {"head": 0.3, "upper": 0.3, "legs": 0.3}
    assert b.noise.oversize == {"head": 0.1, "upper": 0.2, "legs": 0.3}
    assert b.noise.swap == 0.0 and b.noise.jitter == paper.jitter and b.noise.oversplit == paper.oversplit
    assert re.fullmatch(r"synthetic-paper-r[0-9a-f]{8}", b.tag)  # its own store
    same = backend_from_cfg(VgeCfg(noise_jitter=(paper.jitter,), noise_missing=(0.04, 0.02, 0.05)))
    assert same.tag == "synthetic-paper" and same.noise == paper  # the preset's values: the preset's store
    assert backend_from_cfg(VgeCfg(noise="none", noise_missing=(1.0,))).noise.oversize == {}
    for bad, match in (({"noise_missing": (1.5,)}, r"vge\.noise_missing=\[1\.5\].*\[0, 1\]"),
                       ({"noise_missing": (0.1, 0.2)}, r"vge\.noise_missing.*1 or 3 value"),
                       ({"noise_jitter": (0.1, 0.2, 0.3)}, r"vge\.noise_jitter.*expected 1 value"),
                       ({"noise_swap": (float("nan"),)}, r"vge\.noise_swap.*finite")):
        with pytest.raises(ValueError, match=match):
            backend_from_cfg(VgeCfg(**bad))


def test_sweeping_a_failure_rate_lowers_raw_iou_and_calibration_recovers_it(synth_items):
    rows = sweep_failure_rate(synth_items, "missing", [0.0, 0.2, 0.4])
    assert {r["rate"] for r in rows} == {"missing"} and len(rows) == 3 * 4
    for part in ("head", "upper", "legs", "mean"):
        per = [r for r in rows if r["part"] == part]
        assert [r["value"] for r in per] == [0.0, 0.2, 0.4]
        raw = [r["raw"] for r in per]
        assert raw[0] > raw[1] > raw[2] and raw[0] - raw[2] > 0.2
        assert all(r["calibrated"] > r["raw"] for r in per)
        assert per[-1]["calibrated"] - per[-1]["raw"] > 0.1
    with pytest.raises(ValueError, match="unknown failure rate"):
        sweep_failure_rate(synth_items, "misssing", [0.1])


# ----------------------------------------------------------------------------- the CLI's backend names

@pytest.mark.parametrize("name", ["pose", "cascade", "prior", "synthetic", "mllm", "detector"])
def test_ground_cli_accepts_every_backend_the_readme_names(name):
    assert name in list_backends()
    assert _parse(["--dataset", "real-vtest", "--backend", name]).backend == name
