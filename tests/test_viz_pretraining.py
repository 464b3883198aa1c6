"""Notebook 07's figures (each builder's panels, frames and marks on small inputs, byte-stable output) and its data:
the zero-shot probe (the numbers of ``run_zeroshot`` come from it) and typed text -> top-k images."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from matplotlib.colors import to_rgb
from matplotlib.patches import Rectangle

from muva_lib.eval.zeroshot import (ZeroShotCfg, encode_texts, probe, run_zeroshot, summarise, top_images,
                                    top_k)
from muva_lib.viz import pretraining as vp
from muva_lib.viz import save_figure
from muva_lib.viz.retrieval import MATCH_COLOUR, MISS_COLOUR


def _images(n: int, hw: tuple[int, int] = (32, 16)) -> list[np.ndarray]:
    return [np.full((*hw, 3), 40 * i % 256, np.uint8) for i in range(n)]


def _edge(ax) -> tuple[float, float, float]:
    return tuple(ax.spines["top"].get_edgecolor()[:3])

# ----------------------------------------------------------------------------- builders


def test_corpus_samples_grid_and_marked_part_captions(tmp_path):
    caps = [[("a person in red", "full"), ("upper body: a red shirt", "upper")], [("someone in blue", "full")],
            [("legs: black trousers", "legs")]]
    fig = vp.corpus_samples(_images(3), caps, ncols=2)
    assert len(fig.axes) == 4 and not fig.axes[3].axison  # 2 x 2 grid, the spare panel off
    texts = [[(t.get_text().replace("\n", " "), t.get_style()) for t in ax.texts] for ax in fig.axes[:3]]  # wrapped
    assert texts[0] == [("a person in red", "normal"), ("[upper] upper body: a red shirt", "italic")]
    assert texts[2] == [("[legs] legs: black trousers", "italic")]
    a = save_figure(fig, "t", "c", out_dir=tmp_path / "a").read_bytes()
    assert a == save_figure(fig, "t", "c", out_dir=tmp_path / "b").read_bytes()
    with pytest.raises(ValueError, match="2 images and 3 caption lists"):
        vp.corpus_samples(_images(2), caps)


def test_pretraining_curves_one_panel_per_logged_value():
    rows = [{"step": s, "epoch": 0, "lr": 1e-3 * s, "loss": 3.0 / s, "logit_scale": 10 + s, "logit_bias": ""}
            for s in (1, 2, 3)]
    fig = vp.pretraining_curves(rows)
    assert [ax.get_title() for ax in fig.axes] == ["loss", "logit scale", "lr"]  # the softmax loss has no bias
    x, y = fig.axes[0].lines[0].get_data()
    assert list(x) == [1, 2, 3] and list(y) == pytest.approx([3.0, 1.5, 1.0])
    rows[0]["logit_bias"] = -10.0
    assert len(vp.pretraining_curves(rows).axes) == 4
    with pytest.raises(ValueError, match="no logged steps"):
        vp.pretraining_curves([])


def test_text_retrieval_frames_green_red_and_grey_for_typed_text():
    scores = np.array([[0.9, 0.8, 0.7], [0.5, 0.4, 0.3]])
    images = [_images(3), _images(3)]
    fig = vp.text_retrieval(["a red shirt", "typed"], images, scores, [[1, 0, 1], [np.nan] * 3])
    axes = np.array(fig.axes).reshape(2, 3)
    assert _edge(axes[0][0]) == pytest.approx(to_rgb(MATCH_COLOUR))
    assert _edge(axes[0][1]) == pytest.approx(to_rgb(MISS_COLOUR))
    assert _edge(axes[1][2]) == pytest.approx(to_rgb(vp.NEUTRAL_COLOUR))
    assert axes[0][1].get_xlabel() == "0.800" and "a red shirt" in axes[0][0].get_title(loc="left")
    no_ids = vp.text_retrieval(["typed"], [_images(3)], scores[:1])
    assert all(_edge(ax) == pytest.approx(to_rgb(vp.NEUTRAL_COLOUR)) for ax in no_ids.axes)
    with pytest.raises(ValueError, match="every text needs 3 images"):
        vp.text_retrieval(["a", "b"], [_images(3), _images(2)], scores)


def test_attribute_bars_one_bar_per_model_and_attribute_with_chance():
    chance = {"hair_colour": 0.25, "sleeves": 0.5}
    acc = {"shipped": {"hair_colour": 0.8, "sleeves": 0.9}, "random": {"hair_colour": 0.3, "sleeves": 0.5}}
    fig = vp.attribute_bars(acc, chance)
    ax = fig.axes[0]
    assert [round(p.get_height(), 6) for p in ax.patches] == [80.0, 90.0, 30.0, 50.0]
    segments = ax.collections[0].get_segments()
    assert [s[0][1] for s in segments] == [25.0, 50.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["hair colour", "sleeves"]
    with pytest.raises(ValueError, match="sleeves"):
        vp.attribute_bars({"shipped": {"hair_colour": 0.8}}, chance)


def test_binding_histogram_counts_and_accuracy_in_the_legend():
    fig = vp.binding_histogram({"shipped": [0.2, -0.1, 0.3, 0.0], "random": [-0.2, 0.1]}, bins=4)
    ax = fig.axes[0]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["shipped: 62.5% right", "random: 50.0% right"]  # a tie counts half
    heights = [p.get_height() for p in ax.patches]
    assert sum(heights[:4]) == 4 and sum(heights[4:]) == 2
    assert ax.lines[0].get_xdata()[0] == 0.0  # the zero line
    with pytest.raises(ValueError, match="at least one pair"):
        vp.binding_histogram({"shipped": []})


def test_part_similarity_maps_boxes_and_best_patch():
    maps = np.zeros((2, 3, 4, 2))
    maps[0, 1, 2, 1] = 1.0  # image 0, part 1: best patch row 2, column 1
    boxes = np.full((2, 3, 4), np.nan)
    boxes[0, 1] = [0.0, 0.25, 1.0, 0.75]
    boxes[1, 0] = [0.25, 0.0, 0.75, 0.25]
    fig = vp.part_similarity_maps(_images(2), maps, boxes, ["head", "upper body", "legs"])
    axes = np.array(fig.axes).reshape(2, 4)
    assert [ax.get_title() for ax in axes[0]] == ["image", "head", "upper body", "legs"]
    rects = [[len([p for p in ax.patches if isinstance(p, Rectangle)]) for ax in row[1:]] for row in axes]
    assert rects == [[0, 1, 0], [1, 0, 0]]
    box = next(p for p in axes[0][2].patches if isinstance(p, Rectangle))
    assert (box.get_x(), box.get_y(), box.get_width(), box.get_height()) == (0.0, 8.0, 16.0, 16.0)
    x, y = axes[0][2].lines[0].get_data()
    assert (x[0], y[0]) == (12.0, 20.0)  # centre of patch (2, 1) on a 32 x 16 image, 8 x 8 pixels per patch
    with pytest.raises(ValueError, match="maps"):
        vp.part_similarity_maps(_images(1), maps, boxes, ["head", "upper body", "legs"])

# ----------------------------------------------------------------------------- the data


def test_top_k_best_first_ties_to_the_lower_index():
    sim = np.array([[0.1, 0.5, 0.5, 0.2], [0.9, 0.0, 0.3, 0.3]])
    index, scores = top_k(sim, 3)
    assert index.tolist() == [[1, 2, 3], [0, 2, 3]]
    assert scores.tolist() == [[0.5, 0.5, 0.2], [0.9, 0.3, 0.3]]
    assert top_k(sim, 9)[0].shape == (2, 4)
    with pytest.raises(ValueError, match="k must be >= 1"):
        top_k(sim, 0)


@pytest.fixture(scope="module")
def tiny_synth_b(tmp_path_factory):
    """synth-b alone: 12 identities (4 in the test split), 128 x 64, 3 distractors."""
    from muva_lib.data.synthetic import generate

    root = tmp_path_factory.mktemp("probe_synth")
    generate(root, seed=0, domains=["synth-b"], ids=12, images_per_id=1, height=128, width=64, distractors=3)
    return root / "synth-b"


def test_probe_holds_what_the_checks_use_and_top_images_agrees(tiny_synth_b, monkeypatch):
    monkeypatch.setenv("MUVA_SYNTH", str(tiny_synth_b.parent))
    cfg = ZeroShotCfg(dataset="synth-b", weights="random", seed=3, device="cpu")
    p = probe(cfg)
    n, (h, w) = len(p.items), p.model.grid
    assert p.records[0].relpath == p.items[0].relpath and len(p.records) == n
    assert p.feats.shape[0] == n and p.patches.shape[:2] == (n, h * w)
    assert np.allclose(p.sim, (p.feats @ encode_texts(p.model, p.plan.texts).T).numpy(), atol=1e-6)
    maps = p.part_maps()
    assert maps.shape == (n, 3, h, w)
    head = encode_texts(p.model, ["head"])[0]
    assert np.allclose(maps[0, 0].ravel(), (p.patches[0] @ head).numpy(), atol=1e-6)
    scores = p.binding_scores()
    assert scores.shape == (len(p.plan.binding_images), 2) and len(scores) > 0
    assert scores[0, 1] == p.sim[p.plan.binding_images[0], p.plan.binding_rows[0][1]]
    assert summarise(p) == run_zeroshot(cfg)
    # typed text: the caption of an identity ranks the images as the probe's similarity column does
    row = p.plan.t2i_rows[0]
    hits = top_images(p.model, p.feats, [p.plan.texts[row], "legs"], k=5)
    assert hits.index.shape == (2, 5) and hits.texts[1] == "legs"
    assert hits.index[0].tolist() == np.argsort(-p.sim[:, row], kind="stable")[:5].tolist()
    assert np.allclose(hits.scores[0], np.sort(p.sim[:, row])[::-1][:5], atol=1e-6)
    with pytest.raises(ValueError, match="non-empty"):
        top_images(p.model, p.feats, ["  "])
    torch.testing.assert_close(p.feats.norm(dim=1), torch.ones(n))
