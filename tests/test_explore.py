"""The ipywidgets explorers (muva_lib.explore) driven headless: setting a control redraws, and the state and
the figure change as they should; without a front end the container still carries the initial figure."""
from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def muva_run(synth_small, tiny_train, tmp_path_factory):
    """One tiny MUVA smoke run on ``synth_small``, with its environment kept for the module's tests."""
    from muva_lib.__main__ import main

    mp = pytest.MonkeyPatch()
    runs = tmp_path_factory.mktemp("explore_runs")
    mp.setenv("MUVA_SYNTH", str(synth_small.root))
    mp.setenv("MUVA_DATA", str(tmp_path_factory.mktemp("explore_data")))
    mp.setenv("MUVA_RUNS", str(runs))
    try:
        assert main(["train", "--protocol", "synth-a->synth-b", "--method", "muva", "--preset", "smoke",
                     "--no-progress", *tiny_train]) == 0
        yield next(runs.glob("*/muva/*"))
    finally:
        mp.undo()


def _png_in_bundle(explorer) -> bytes:
    return base64.b64decode(explorer._repr_mimebundle_()["image/png"])


def test_retrieval_explorer(muva_run):
    from muva_lib.explore import retrieval_explorer
    from muva_lib.explore.retrieval import query_order

    e = retrieval_explorer(muva_run, topk=8)
    assert e.error is None and e.state["query_index"] == 0 and len(e.state["gallery"]) == 8
    assert _png_in_bundle(e) == e.png and e.png.startswith(b"\x89PNG")  # the initial figure, no front end needed
    assert e._repr_mimebundle_()["text/plain"].startswith("retrieval explorer (")
    aps = {}
    for q in range(e.controls["query"].max + 1):
        e.set(query=q)
        aps[q] = e.state["ap"]
    assert len(set(np.round(list(aps.values()), 6))) > 1, "every query showed the same AP"
    a, b = next((a, b) for a in aps for b in aps if aps[a] != aps[b])
    e.set(query=a)
    before_ap, before_png = e.state["ap"], e.png
    e.set(query=b)
    assert e.state["ap"] == aps[b] != before_ap and e.png != before_png and str(round(aps[b], 4)) in e.info
    # worst first: the first query shown has the lowest AP, best first the highest
    e.set(order="worst first", query=0)
    assert e.state["ap"] == pytest.approx(min(aps.values()))
    e.set(order="best first")
    assert e.state["ap"] == pytest.approx(max(aps.values()))
    # a true match or junk is exactly a gallery item of the query's identity
    assert not (np.array(e.state["match"]) & np.array(e.state["junk"])).any()
    e.set(rerank=True)
    assert e.error is None and e.state["rerank"] is True
    assert query_order(np.array([0.5, np.nan, 0.1]), "worst first") == [2, 0, 1]


def test_grounding_explorer(muva_run, synth_small):
    from muva_lib.explore import grounding_explorer

    g = grounding_explorer("synth-a", n_images=12, backends=["synthetic", "prior"],
                           roots={"synth-a": synth_small.root / "synth-a"})
    assert g.error is None and set(g.state["reasons"]) == {"head", "upper", "legs"}
    first_png, first_key = g.png, g.state["key"]
    g.set(image=5)
    assert g.state["key"] != first_key and g.png != first_png, "another image gave the same figure"
    g.set(backend="prior")
    assert g.error is None and "prior" in g.info and g.controls["noise"].disabled
    prior_boxes = g.state["boxes"]
    g.set(backend="synthetic", noise="heavy")
    assert g.state["boxes"] != prior_boxes and "synthetic-heavy" in g.info
    raw_png = g.png
    found = False
    for i in range(g.controls["image"].max + 1):  # an image whose box calibration changed: the toggle shows it
        g.set(boxes="raw", image=i)
        raw_boxes, raw_png = g.state["boxes"], g.png
        g.set(boxes="calibrated")
        if any(not r.endswith("calibration ok") for r in g.state["reasons"].values()):
            assert g.state["boxes"] != raw_boxes and g.png != raw_png
            found = True
            break
    assert found, "no image of the heavy-noise sample had a box changed by calibration"


def test_grounding_explorer_runs_a_transformers_backend_from_a_model_folder(muva_run, synth_small, tmp_path):
    """A detector given by folder (a tiny random-weight OWLv2 saved like a download) joins the backend menu and
    grounds the shown image through the real transformers code path."""
    from muva_lib.explore import grounding_explorer
    from muva_lib.grounding.tiny import build_tiny_detector

    model = build_tiny_detector(tmp_path / "owlv2", "owlv2")
    g = grounding_explorer("synth-a", n_images=4, backends=["prior"], models={"detector": str(model)},
                           roots={"synth-a": synth_small.root / "synth-a"}, device="cpu")
    assert list(g.controls["backend"].options) == ["prior", "detector"]
    prior_boxes = g.state["boxes"]
    g.set(backend="detector")
    assert g.error is None and "detector" in g.info
    assert set(g.state["reasons"]) == {"head", "upper", "legs"} and g.state["boxes"] != prior_boxes


def test_masks_explorer(muva_run):
    from muva_lib.analysis import mask_probe, predicted_masks
    from muva_lib.data.protocols import build
    from muva_lib.explore import masks_explorer
    from muva_lib.utils import evenly_spaced

    items = evenly_spaced(list(build("synth-a->synth-b", with_targets=False).train), 4)
    m = masks_explorer(muva_run, items)
    last = m.controls["block"].max
    assert m.error is None and last >= 1
    probe = mask_probe(muva_run, items)
    pred = predicted_masks(probe.logits, probe.tau, probe.thresh)
    m.set(image=1, part=2, block=last)
    assert m.state["block_index"] == last
    assert m.state["pred_mask"] == pred[1, last, 2].int().tolist(), "the last block did not show its own mask"
    assert m.state["vge_mask"] == probe.vge[1, 2].int().tolist()
    at_last = m.png
    m.set(block=0)
    assert m.png != at_last and m.state["pred_mask"] == pred[1, 0, 2].int().tolist()


def test_calibration_explorer(muva_run, synth_small):
    from muva_lib.explore import calibration_explorer

    from muva_lib.config import VgeCfg

    c = calibration_explorer("synth-a", n_images=60, root=synth_small.root / "synth-a",
                             vge=VgeCfg(noise="heavy", min_samples=10))
    assert c.error is None and c.state["iou"] is not None and "calibrated" in c.info
    loose, loose_png = c.state, c.png
    c.set(fence_k=0.0, min_spread=0.0)  # the tightest fences: more boxes fall outside and are replaced
    tight = c.state
    assert sum(tight["changed"].values()) > sum(loose["changed"].values())
    assert tight["counts"] != loose["counts"] and c.png != loose_png
    assert tight["iou"] != loose["iou"]
    c.set(fence_k=loose["fence_k"], min_spread=loose["min_spread"])
    assert c.state["counts"] == loose["counts"]  # back where it started


def test_text_query_explorer(muva_run, synth_small):
    from muva_lib.data.readers import read_dataset
    from muva_lib.explore import text_query_explorer

    gallery = list(read_dataset("synth-b", root=synth_small.root / "synth-b").gallery)[:40]
    t = text_query_explorer(gallery, k=5)
    assert t.error is None and len(t.state["top"][0]) == 5
    first_top, first_png = t.state["top"], t.png
    scores = np.array(t.state["scores"][0])
    assert (np.diff(scores) <= 1e-6).all(), "top images not sorted by similarity"
    t.set(query="a person with a white hat and a blue bag")
    assert t.state["top"] != first_top and t.png != first_png
    t.set(query="a person in green; a person in yellow", k=3)
    assert len(t.state["texts"]) == 2 and len(t.state["top"][1]) == 3
    t.set(query="  ")
    assert t.error is not None and "type a description" in t.error


def test_runs_explorer(muva_run, tmp_path):
    import json
    import shutil

    from muva_lib.explore import runs_explorer
    from muva_lib.explore.runs import config_differences

    other = tmp_path / "muva" / "other-run"  # a second run: the same logs, one config key and the metrics changed
    shutil.copytree(muva_run, other, ignore=shutil.ignore_patterns("checkpoints", "cache", "tb"))
    cfg = json.loads((other / "config.json").read_text())
    cfg["seed"] = cfg.get("seed", 0) + 1
    (other / "config.json").write_text(json.dumps(cfg))
    metric = next((other / "metrics").glob("*.json"))
    m = json.loads(metric.read_text())
    m["mAP"] = 0.5
    metric.write_text(json.dumps(m))
    with pytest.raises(ValueError, match="curves must be one of"):
        runs_explorer([muva_run], curves="stage 3")
    r = runs_explorer([muva_run, other])
    assert r.error is None and len(r.state["labels"]) == 2
    assert [d["key"] for d in r.state["differences"]] == ["seed"] and "config differences" in r.info
    assert r.state["metrics"]["muva/other-run"][metric.stem]["mAP"] == 0.5
    both_png = r.png
    r.set(runs=("muva/other-run",))
    assert r.state["differences"] == [] and r.png != both_png
    r.set(curves="stage 1")
    s1 = r.png
    r.set(curves="target metrics")
    assert r.error is None and r.png != s1
    r.set(runs=())
    assert r.error == "ValueError: select at least one run"
    assert config_differences({"a": {"x": {"y": 1}, "z": 2}, "b": {"x": {"y": 2}, "z": 2}}) == [
        {"key": "x.y", "a": 1, "b": 2}]
