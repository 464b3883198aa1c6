"""The pure run diagnostics of muva_lib.analysis, on hand-made tensors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from muva_lib import analysis as an


def test_granularity_names():
    assert an.granularity_names(4) == ["global", "head", "upper", "legs"]
    assert an.granularity_names(1) == ["global"]
    with pytest.raises(ValueError):
        an.granularity_names(5)


def _toy():
    """3 ids, 2 granularities of d=2: the global slice separates ids, the part slice confuses 1 and 2."""
    text = torch.tensor([[[1.0, 0.0], [1.0, 0.0]],
                         [[0.0, 1.0], [0.0, 1.0]],
                         [[-1.0, 0.0], [0.0, 1.0]]])  # [N=3, G=2, d=2]
    feats = torch.tensor([[2.0, 0.0, 1.0, 0.0], [1.0, 0.0, 3.0, 0.0],  # id 0
                          [0.0, 1.0, 0.0, 1.0],                        # id 1
                          [-1.0, 0.0, 0.1, 1.0]])                      # id 2
    labels = torch.tensor([0, 0, 1, 2])
    return text, feats, labels


def test_text_prototype_similarity_by_hand():
    text, feats, labels = _toy()
    sim = an.text_prototype_similarity(text, feats, labels)
    assert sim.shape == (2, 3, 3)
    # global slice: prototypes (1,0), (0,1), (-1,0)
    assert torch.allclose(sim[0], torch.tensor([[1.0, 0, -1], [0, 1, 0], [-1, 0, 1]]))
    # part slice: id 2's prototype is normalise(0.1, 1); text of id 1 and id 2 is (0, 1)
    p2 = torch.tensor([0.1, 1.0]) / torch.tensor([0.1, 1.0]).norm()
    assert torch.isclose(sim[1, 1, 2], p2[1]) and torch.isclose(sim[1, 2, 1], torch.tensor(1.0))


def test_text_to_prototype_accuracy_by_hand():
    text, feats, labels = _toy()
    acc = an.text_to_prototype_accuracy(text, feats, labels)
    assert acc["global"] == 1.0
    # part slice: id 0 -> itself, id 1 -> itself (1.0 vs 0.995), id 2 -> id 1 (1.0 > 0.995): 2 of 3
    assert acc["head"] == pytest.approx(2 / 3)


def test_text_to_prototype_accuracy_skips_ids_without_images():
    text, feats, labels = _toy()
    keep = labels != 1
    acc = an.text_to_prototype_accuracy(text, feats[keep], labels[keep], names=["g", "p"])
    assert acc == {"g": 1.0, "p": 1.0}


def test_text_to_prototype_rejects_bad_shapes():
    text, feats, labels = _toy()
    with pytest.raises(ValueError, match="do not fit"):
        an.text_to_prototype_accuracy(text, feats[:, :3], labels)
    with pytest.raises(ValueError, match="labels"):
        an.text_to_prototype_accuracy(text, feats, torch.tensor([0, 0, 1, 3]))


def test_memory_stats_by_hand():
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    x = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.0, 1.0]])
    labels = torch.tensor([0, 0, 1])
    own, other = an.memory_similarities(bank, x, labels)
    np.testing.assert_allclose(own, [1.0, 0.6, 1.0])
    np.testing.assert_allclose(other, [0.0, 0.8, 0.0])
    st = an.memory_stats(bank, x, labels)
    assert st["own_sim"] == pytest.approx(2.6 / 3)
    assert st["hardest_own_sim"] == pytest.approx((0.6 + 1.0) / 2)
    assert st["other_sim"] == pytest.approx(0.8 / 3)
    assert st["nearest_own"] == pytest.approx(2 / 3)
    assert st["proto_sim"] == pytest.approx(0.0)
    with pytest.raises(ValueError):
        an.memory_stats(bank[:1], x, labels)


def test_mask_iou_and_per_layer():
    t = torch.tensor([[[1, 1, 0, 0], [0, 0, 0, 0]]], dtype=torch.bool)  # [B=1, R=2, L=4]
    p = torch.tensor([[[1, 0, 1, 0], [0, 0, 0, 0]]], dtype=torch.bool)
    assert an.mask_iou(p, t).tolist() == [[1 / 3, 1.0]]  # empty vs empty counts 1
    big = 10.0
    layer1 = (p.float() * 2 - 1) * big  # sigmoid > 0.5 exactly where p
    layer2 = (t.float() * 2 - 1) * big
    iou = an.mask_iou_per_layer([layer1, layer2], t)
    np.testing.assert_allclose(iou, [[1 / 3, 1.0], [1.0, 1.0]])
    with pytest.raises(ValueError):
        an.mask_iou_per_layer([], t)


def test_token_attention_picks_rows_and_patch_columns():
    b, h, r, gh, gw = 2, 2, 1, 2, 2
    t = 1 + r + gh * gw
    attn = torch.zeros(b, h, t, t)
    attn[:, :, 0, 2] = 1.0  # CLS looks at patch 0
    attn[:, 0, 1, 5] = 3.0  # part looks at patch 3 (head 0), and at CLS (ignored)
    attn[:, 1, 1, 0] = 5.0
    out = an.token_attention(attn, r, (gh, gw))
    assert out.shape == (b, 2, gh, gw)
    assert out[0, 0].tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert out[0, 1].tolist() == [[0.0, 0.0], [0.0, 1.0]]
    with pytest.raises(ValueError):
        an.token_attention(attn, 2, (gh, gw))


def test_ranked_gallery_removes_junk_and_marks_matches():
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.2]])
    idx, match = an.ranked_gallery(dist, [7], [7, 7, 3, 7, 0], [1], [1, 2, 1, 3, 2], topk=4)
    # gallery 0 is junk (same id, same camera); ties 1 and 4 keep index order
    assert idx.tolist() == [[1, 4, 2, 3]]
    assert match.tolist() == [[True, False, False, True]]
    idx, match = an.ranked_gallery(dist, [7], [7, 7, 3, 7, 0], [1], [1, 2, 1, 3, 2], topk=6)
    assert idx[0, -2:].tolist() == [-1, -1] and not match[0, -2:].any()


def test_decreased():
    assert an.decreased([{"loss": 3.0}, {"loss": 2.0}])
    assert not an.decreased([{"loss": 1.0}, {"loss": 2.0}])
    with pytest.raises(ValueError):
        an.decreased([{"loss": 1.0}])


def test_predicted_masks_and_attention_inside():
    logits = [torch.tensor([[[2.0, -2.0, 0.0]]]), torch.tensor([[[-1.0, 1.0, 3.0]]])]  # 2 blocks, B=1, R=1, L=3
    pred = an.predicted_masks(logits)
    assert pred.shape == (1, 2, 1, 3)
    assert pred[0, :, 0].tolist() == [[True, False, False], [False, True, True]]
    assert an.predicted_masks(logits, tau=1.0, thresh=0.9)[0, 1, 0].tolist() == [False, False, True]
    t = 1 + 1 + 3
    attn = torch.zeros(1, 2, t, t)
    attn[0, :, 1, 2:] = torch.tensor([0.2, 0.3, 0.1])  # the part token over the three patches
    attn[0, :, 1, 0] = 0.4  # and CLS, which does not count
    inside = an.attention_inside(attn, torch.tensor([[[True, False, True]]]), 1)
    assert inside.shape == (1, 1) and inside.item() == pytest.approx(0.5)
    mass = an.attention_inside(attn, torch.tensor([[[False, True, False]]]), 1, share=False)
    assert mass.item() == pytest.approx(0.3)


def test_part_patch_stats_by_hand():
    # 3 images of 4 patches; classes: background, head, shoes
    labels = np.array([[0, 0, 1, 2],   # 2 part patches, a shoe
                       [0, 0, 0, 1],   # 1 part patch
                       [1, 1, 2, 0]])  # 3 part patches, a shoe
    s = an.part_patch_stats(labels, ["background", "head", "shoes"], few=2)
    assert s["images"] == 3 and s["patches"] == 4
    assert s["background"] == pytest.approx(6 / 12)
    assert s["part_mean"] == pytest.approx(2.0) and s["part_min"] == 1
    assert s["few_share"] == pytest.approx(2 / 3)
    assert s["with"] == pytest.approx({"head": 1.0, "shoes": 2 / 3})
    row = an.part_patch_row(s, grid="2x2", vote="majority")
    assert row == {"grid": "2x2", "vote": "majority", "images": 3, "background": "50.0%",
                   "part patches / image": "2.0", "fewest": 1, "images with <= 2": "66.7%",
                   "images with head": "100.0%", "images with shoes": "66.7%"}


def test_part_patch_stats_refuses_bad_labels():
    with pytest.raises(ValueError, match=r"0\.\.1"):
        an.part_patch_stats(np.array([[0, 2]]), ["background", "head"])
    with pytest.raises(ValueError, match=r"\[N, P\]"):
        an.part_patch_stats(np.zeros(4, int), ["background", "head"])


def test_placement_row_by_hand():
    head, upper, legs = (10, 0, 20, 10), (5, 10, 25, 40), (5, 40, 25, 80)
    boxes = [{"head": head, "upper": upper, "legs": legs},     # complete, upright
             {"head": legs, "upper": upper, "legs": head},     # complete, upside down
             {"head": None, "upper": upper, "legs": legs},     # a part missing
             {"head": head, "upper": upper, "legs": legs}]     # complete, upright
    assert an.placement_row(boxes, backend="pose") == {"backend": "pose", "crops": 4,
                                                       "every part placed": "75.0%", "upright order": "66.7%"}
    assert an.placement_row(boxes[2:3])["upright order"] == "-"


def test_probe_masks_are_the_masks_training_used(synth_small, tmp_path, monkeypatch):
    """A notebook probing a few training images sees the masks of the whole training set's calibration,
    not a calibration over those few images (which falls back to the prior bands)."""
    import numpy as np

    from muva_lib.analysis import probe_masks
    from muva_lib.config import RunCfg
    from muva_lib.data.readers import read_dataset
    from muva_lib.grounding import part_masks_for

    monkeypatch.setenv("MUVA_DATA", str(tmp_path))
    train = list(read_dataset("synth-a", root=synth_small.root / "synth-a").train)
    few = train[::len(train) // 6][:6]
    vge = RunCfg().vge
    full = part_masks_for(train, vge, (16, 8))
    probed = probe_masks(train, few, vge, (16, 8))
    assert all(np.array_equal(probed[it.key], full[it.key]) for it in few)
    alone = part_masks_for(few, vge, (16, 8))  # what the probe used to show
    assert any(not np.array_equal(alone[it.key], full[it.key]) for it in few)
