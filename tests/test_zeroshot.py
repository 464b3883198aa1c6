"""Zero-shot checks: the pure metrics on hand-worked toys, the prompts against the captions, the model side,
and ``python -m muva_lib zeroshot`` end to end on a tiny synthetic domain with random weights."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from muva_lib.__main__ import main
from muva_lib.data.synth.generate import GtRecord
from muva_lib.data.synth.identity import Priors, caption, sample_attributes
from muva_lib.data.types import Item
from muva_lib.eval.zeroshot import (SUMMARY_KEYS, attribute_accuracy, binding_accuracy, box_patch_coverage,
                                    chance_recall_at_k, encode_texts, fixed_patch_pointing, load_zeroshot_model,
                                    mean_attribute_accuracy, plan_texts, pointing_accuracy, pointing_hits,
                                    reid_metrics, t2i_retrieval, zeroshot_items)
from muva_lib.eval.zeroshot.prompts import (ATTRIBUTE_VALUES, PROMPT_PREFIX, applies, attribute_phrase,
                                            attribute_prompts, binding_captions, part_texts, swap_colours)
from muva_lib.geometry.patch_grid import box_to_mask
from muva_lib.models.clip_backbone import ENV_PRETRAINED_DIR, WeightsNotFoundError, save_clip_weights

# ----------------------------------------------------------------------------- metrics, hand-worked


def test_t2i_retrieval_any_image_of_the_identity_matches():
    # images: ids 1, 2, 2, 1
    # text 0 (id 1): ranked img0 .9 HIT, img2 .5, img1 .2, img3 .1 HIT -> AP = (1/1 + 2/4) / 2 = 3/4, first at 1
    # text 1 (id 2): img1 .8 HIT, img2 .7 HIT, img3, img0            -> AP = 1, first at 1
    # text 2 (id 1): img1 .9, img2 .4, img3 .3 HIT, img0 .1 HIT      -> AP = (1/3 + 2/4) / 2 = 5/12, first at 3
    sim = [[.9, .2, .5, .1], [.3, .8, .7, .6], [.1, .9, .4, .3]]
    res = t2i_retrieval(sim, [1, 2, 1], [1, 2, 2, 1])
    assert res["r1"] == pytest.approx(2 / 3)
    assert res["r5"] == res["r10"] == 1.0
    assert res["mAP"] == pytest.approx((3 / 4 + 1 + 5 / 12) / 3)
    assert res["num_texts"] == 3


def test_t2i_retrieval_ties_rank_the_lower_image_first_and_a_text_needs_a_match():
    res = t2i_retrieval([[.5, .5]], [2], [1, 2])  # img0 (miss) before img1 (hit): AP 1/2
    assert res["r1"] == 0.0 and res["mAP"] == pytest.approx(0.5)
    with pytest.raises(ValueError, match="no image of their identity"):
        t2i_retrieval([[.5, .5]], [3], [1, 2])
    with pytest.raises(ValueError, match="expected \\[1 texts, 3 images\\]"):
        t2i_retrieval([[.5, .5]], [1], [1, 2, 2])


def test_chance_recall_of_a_random_ranking():
    # 4 images, 2 of them match: R@1 = 1/2, R@2 = 1 - (2/4)(1/3) = 5/6, R@3 = 1 (only 2 misses exist)
    assert chance_recall_at_k([1], [1, 2, 2, 1], 1) == pytest.approx(1 / 2)
    assert chance_recall_at_k([1], [1, 2, 2, 1], 2) == pytest.approx(5 / 6)
    assert chance_recall_at_k([1, 2], [1, 2, 2, 1], 3) == pytest.approx(1.0)
    assert chance_recall_at_k([1, 3], [1, 2, 3, 3], 1) == pytest.approx((1 / 4 + 2 / 4) / 2)
    assert chance_recall_at_k([1], [1, 2], 10) == 1.0  # k beyond the gallery


def test_attribute_accuracy_is_plain_and_balanced():
    # predictions 0, 1, 0, 2 for labels 0, 1, 1, 2: 3 of 4 right; recalls 1, 1/2, 1 -> balanced 5/6
    scores = [[.9, .1, 0], [.2, .7, .1], [.6, .3, .1], [.1, .2, .8]]
    res = attribute_accuracy(scores, [0, 1, 1, 2])
    assert res["accuracy"] == pytest.approx(0.75)
    assert res["balanced"] == pytest.approx(5 / 6)
    # two values: balanced = (TPR + TNR) / 2; always saying value 0 on 3 zeros and 1 one: 3/4 right, mA 1/2
    res = attribute_accuracy([[1, 0]] * 4, [0, 0, 0, 1])
    assert res["accuracy"] == pytest.approx(0.75) and res["balanced"] == pytest.approx(0.5)
    both = mean_attribute_accuracy({"a": (scores, [0, 1, 1, 2]), "b": ([[1, 0]] * 4, [0, 0, 0, 1])})
    assert both["mA"] == pytest.approx((5 / 6 + 1 / 2) / 2)
    assert both["accuracy"] == pytest.approx(0.75)
    assert both["per_attribute"]["a"]["n"] == 4
    with pytest.raises(ValueError, match="must index the 2 values"):
        attribute_accuracy([[1, 0]], [2])


def test_binding_accuracy_counts_ties_half():
    assert binding_accuracy([.5, .4, .3, .2], [.1, .6, .3, 0]) == pytest.approx(2.5 / 4)
    with pytest.raises(ValueError):
        binding_accuracy([], [])


def test_pointing_on_a_2x2_grid():
    # patch centres: x, y in {.25, .75}
    maps = np.zeros((2, 2, 2, 2))
    maps[0, 0, 0, 1] = 1  # best patch row 0, col 1: centre (x .75, y .25)
    maps[0, 1, 1, 0] = 1  # (x .25, y .75)
    maps[1, 0, 1, 1] = 1
    maps[1, 1, 1, 1] = 1  # (x .75, y .75)
    nan = [np.nan] * 4
    boxes = np.array([[[.5, 0, 1, .5], [.5, .5, 1, 1]],  # hit, miss
                      [nan, [.5, .5, 1, 1]]])  # no box, hit
    hits = pointing_hits(maps, boxes)
    np.testing.assert_array_equal(hits, [[1, 0], [np.nan, 1]])
    res = pointing_accuracy(maps, boxes, ["head", "legs"])
    assert res["per_part"] == {"head": 1.0, "legs": 0.5}
    assert res["mean"] == pytest.approx(0.75)
    assert res["n"] == {"head": 1, "legs": 2}
    # half-open: a centre on the right edge x1 is outside
    assert pointing_hits(maps[:1, :1], np.array([[[0, 0, .75, 1]]]))[0, 0] == 0


def test_box_patch_coverage_is_the_rasteriser_share_of_patches():
    boxes = np.array([[[.5, 0, 1, .5], [0, 0, 1, 1], [np.nan] * 4]])
    np.testing.assert_allclose(box_patch_coverage(boxes, (2, 2)), [[.25, 1, np.nan]])
    box_px = (10.0, 30.0, 50.0, 100.0)  # in a 128 x 64 image, on its 8 x 4 patch grid
    share = box_to_mask(box_px, (128, 64), (8, 4), ensure_one=False).mean()
    norm = np.array([[[10 / 64, 30 / 128, 50 / 64, 100 / 128]]])
    assert box_patch_coverage(norm, (8, 4))[0, 0] == pytest.approx(share)


def test_fixed_patch_pointing_is_the_best_constant_answer():
    # 2x2 grid; part 0 boxes: top-right quarter, right half, top half -> patch (0, 1) lies in all 3: 1.0
    # part 1 boxes: bottom-left quarter, top-right quarter, none -> each patch in at most 1 of 2: 0.5
    nan = [np.nan] * 4
    boxes = np.array([[[.5, 0, 1, .5], [0, .5, .5, 1]], [[.5, 0, 1, 1], [.5, 0, 1, .5]], [[0, 0, 1, .5], nan]])
    res = fixed_patch_pointing(boxes, (2, 2))
    np.testing.assert_allclose(res["per_part"], [1.0, 0.5])
    assert res["mean"] == pytest.approx(0.75)


def test_reid_metrics_use_the_evaluator_same_camera_rule():
    # query id 1 camera 0 at (1, 0); gallery cosines: g0 id 1 cam 1 .6, g1 id 2 .8, g2 id 1 cam 0 (junk), g3 id 1 0
    # ranked without junk: g1 miss, g0 HIT, g3 HIT -> AP = (1/2 + 2/3) / 2, R1 0, R5 1
    q = torch.tensor([[1.0, 0.0]])
    g = torch.tensor([[.6, .8], [.8, .6], [1, 0], [0, 1.0]])
    query = [Item("q", 1, 0, "toy", "q.jpg")]
    labels = [(1, 1), (2, 1), (1, 0), (1, 2)]  # (pid, camid)
    gallery = [Item(f"g{i}", pid, cam, "toy", f"g{i}.jpg") for i, (pid, cam) in enumerate(labels)]
    res = reid_metrics(q, g, query, gallery, device="cpu")
    assert res["reid_map"] == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert res["reid_r1"] == 0.0 and res["reid_r5"] == 1.0


def test_zeroshot_items_limit_identities_and_keep_distractors():
    q = [Item("", pid, 0, "d", f"q{pid}") for pid in (3, 1, 2)]
    g = [Item("", pid, 1, "d", f"g{pid}") for pid in (0, 1, 2, 3)]
    kq, kg = zeroshot_items(q, g, limit=2)
    assert [it.pid for it in kq] == [1, 2] and [it.pid for it in kg] == [0, 1, 2]
    assert zeroshot_items(q, g) == (q, g)

# ----------------------------------------------------------------------------- prompts


def _people(n: int = 40) -> list[dict]:
    rng = np.random.default_rng(0)
    return [sample_attributes(rng, Priors(hat=.5, bag=.5)) for _ in range(n)]


def test_every_attribute_phrase_is_part_of_the_benchmark_caption():
    for attrs in _people():
        for view in ("front", "back", "side"):
            text = caption(attrs, view)
            for key in ATTRIBUTE_VALUES:
                if applies(attrs, key):
                    assert attribute_phrase(attrs, key) in text, (key, text)


def test_attribute_prompts_differ_in_the_attribute_only():
    for attrs in _people(10):
        prompts, label = attribute_prompts(attrs, "upper_colour")
        assert len(prompts) == len(ATTRIBUTE_VALUES["upper_colour"]) == len(set(prompts))
        assert prompts[label] == PROMPT_PREFIX + attribute_phrase(attrs, "upper_colour")
    attrs = {**_people(1)[0], "hat": "none", "hat_colour": "none", "bag": "backpack", "bag_colour": "red"}
    assert not applies(attrs, "hat_colour") and applies(attrs, "bag")
    assert attribute_prompts(attrs, "bag")[0] == ["a person with a red backpack", "a person with a red shoulder bag"]
    with pytest.raises(ValueError, match="not one of"):
        attribute_prompts(attrs, "hat")


def test_binding_captions_swap_upper_and_lower_colours():
    attrs = {**_people(1)[0], "upper_colour": "red", "lower_colour": "blue", "upper_pattern": "plain",
             "sleeves": "short", "lower_type": "trousers"}
    true, swapped = binding_captions(attrs, "front")
    assert "a red t-shirt" in true and "blue trousers" in true
    assert "a blue t-shirt" in swapped and "red trousers" in swapped
    assert swap_colours({**attrs, "lower_colour": "red"}) is None
    assert part_texts() == ["head", "upper body", "legs"]
    assert part_texts("the {part} of a person")[1] == "the upper body of a person"
    with pytest.raises(ValueError, match="no \\{part\\}"):
        part_texts("head")

def test_plan_texts_encodes_each_text_once_and_skips_equal_colours():
    def record(pid: int, attrs: dict, view: str) -> GtRecord:
        return GtRecord(f"{pid}.jpg", pid, 0, 64, 128, {}, {}, view, caption(attrs, view), attrs, "")
    base = _people(1)[0]
    two = {**base, "upper_colour": "red", "lower_colour": "blue"}
    one = {**base, "upper_colour": "red", "lower_colour": "red"}
    records = [record(1, two, "front"), record(1, two, "front"), record(2, one, "back"), record(0, two, "side")]
    plan = plan_texts(records)
    assert plan.t2i_ids == [1, 2]  # distinct (identity, caption); a distractor (id 0) is no query
    assert plan.binding_images == [0, 1, 3] and plan.binding_rows[0] == plan.binding_rows[1]
    assert len(set(plan.texts)) == len(plan.texts)
    assert [plan.texts[r] for r in plan.part_rows] == ["head", "upper body", "legs"]
    images, rows, labels = plan.attributes["upper_colour"]
    assert images == [0, 1, 2, 3]
    assert plan.texts[rows[2][labels[2]]] == PROMPT_PREFIX + attribute_phrase(one, "upper_colour")

# ----------------------------------------------------------------------------- model side


def test_random_weights_follow_the_seed_and_missing_synth_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_PRETRAINED_DIR, str(tmp_path))  # no shipped weights there
    a, b = load_zeroshot_model("random", seed=1), load_zeroshot_model("random", seed=1)
    c = load_zeroshot_model("random", seed=2)
    texts = ["a person with red shoes", "legs"]
    assert torch.equal(encode_texts(a, texts), encode_texts(b, texts))
    assert not torch.allclose(encode_texts(a, texts), encode_texts(c, texts))
    assert a.grid == (8, 4) and a.context_length == 32
    with pytest.raises(WeightsNotFoundError, match="python -m muva_lib pretrain"):
        load_zeroshot_model("synth")
    with pytest.raises(FileNotFoundError, match="nothing.safetensors: no such file"):
        load_zeroshot_model(str(tmp_path / "nothing.safetensors"))

# ----------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def tiny_synth_b(tmp_path_factory):
    """synth-b alone: 12 identities (4 in the test split), 128 x 64, 3 distractors."""
    from muva_lib.data.synthetic import generate

    root = tmp_path_factory.mktemp("zeroshot_synth")
    generate(root, seed=0, domains=["synth-b"], ids=12, images_per_id=1, height=128, width=64, distractors=3)
    return root / "synth-b"


def _json_run(capsys, *args: str) -> dict:
    assert main(["zeroshot", "--dataset", "synth-b", "--json", *args]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one JSON object, nothing else
    return json.loads(out)


def test_zeroshot_command_end_to_end_with_random_and_file_weights(tiny_synth_b, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MUVA_SYNTH", str(tiny_synth_b.parent))
    res = _json_run(capsys, "--weights", "random")
    assert res["part_pointing_fixed"] >= res["part_pointing_chance"]
    for key in SUMMARY_KEYS + ("part_pointing_head", "part_pointing_upper", "part_pointing_legs", "attr_accuracy"):
        assert 0.0 <= res[key] <= 1.0, key
    assert set(res["per_attribute"]) <= set(ATTRIBUTE_VALUES)
    assert res["sizes"]["identities"] == 4 and res["sizes"]["binding_pairs"] > 0
    assert res["weights"] == "random init (seed 0)"
    # the same random model written to a file and loaded back gives the same numbers
    model = load_zeroshot_model("random", seed=0)
    path = save_clip_weights(model.clip, tmp_path / "random.safetensors", quick_gelu=False, arch="muva-tiny")
    again = _json_run(capsys, "--weights", str(path), "--root", str(tiny_synth_b))
    assert {k: again[k] for k in SUMMARY_KEYS} == {k: res[k] for k in SUMMARY_KEYS}
    limited = _json_run(capsys, "--limit", "2", "--weights", "random")
    assert limited["sizes"]["identities"] == 2
    assert main(["zeroshot", "--dataset", "synth-b", "--limit", "2", "--weights", "random"]) == 0
    table = capsys.readouterr().out
    assert "t2i_r10" in table and "binding_acc" in table and "weights: random init (seed 0)" in table


def test_zeroshot_command_errors_are_one_line(tiny_synth_b, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("MUVA_SYNTH", str(tiny_synth_b.parent))
    monkeypatch.setenv(ENV_PRETRAINED_DIR, str(tmp_path))  # no shipped weights there
    assert main(["zeroshot"]) == 2  # the shipped weights are the default
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "python -m muva_lib pretrain ship RUN_DIR" in err and err.count("\n") == 1
    assert main(["zeroshot", "--weights", "/no/such/file.pt"]) == 2
    assert "/no/such/file.pt: no such file" in capsys.readouterr().err


def test_frozen_encoder_metrics_equal_the_zeroshot_reid(tiny_synth_b):
    """The quick start's frozen-CLIP row ranks the same features as the zero-shot check's re-ID."""
    from muva_lib.data.readers import get_reader
    from muva_lib.eval.zeroshot import ZeroShotCfg, frozen_encoder_metrics, run_zeroshot

    split = get_reader("synth-b")(root=str(tiny_synth_b)).read(0)
    row = frozen_encoder_metrics(split.query, split.gallery, weights="random", device="cpu")
    zs = run_zeroshot(ZeroShotCfg(dataset="synth-b", root=str(tiny_synth_b), weights="random", device="cpu"))
    assert (row["mAP"], row["rank1"]) == (zs["reid_map"], zs["reid_r1"])
    assert {"mAP", "rank1", "rank5", "mINP"} <= set(row)
