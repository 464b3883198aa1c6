"""Every loss of muva_lib.losses on toy tensors, against values computed by hand."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from muva_lib import losses as L


def approx(x, rel=1e-5, abs=1e-6):
    return pytest.approx(x, rel=rel, abs=abs)


def test_label_smoothed_ce_by_hand():
    logits = torch.tensor([[math.log(3.0), 0.0]])  # softmax [3/4, 1/4]
    y = torch.tensor([0])
    # (1 - eps) * -log(3/4) + eps * mean(-log(3/4), -log(1/4))
    hand = 0.9 * -math.log(0.75) + 0.1 * (-math.log(0.75) - math.log(0.25)) / 2
    assert L.label_smoothed_ce(logits, y, 0.1).item() == approx(hand)
    assert L.label_smoothed_ce(logits, y, 0.0).item() == approx(-math.log(0.75))
    z = torch.randn(5, 7, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([0, 3, 6, 2, 2])
    assert L.label_smoothed_ce(z, t, 0.1).item() == approx(F.cross_entropy(z, t, label_smoothing=0.1).item())


def test_triplet_hard_by_hand():
    # 1-D points 0, 1 (id 0) and 1.5, 4 (id 1); margin 0.3
    feats = torch.tensor([[0.0], [1.0], [1.5], [4.0]])
    y = torch.tensor([0, 0, 1, 1])
    # anchors: 0 -> ap 1, an 1.5 -> 0;  1 -> ap 1, an 0.5 -> 0.8;  1.5 -> ap 2.5, an 0.5 -> 2.3;  4 -> ap 2.5, an 3 -> 0
    assert L.triplet_hard(feats, y, 0.3).item() == approx((0.8 + 2.3) / 4)
    assert L.triplet_hard(feats, torch.zeros(4, dtype=torch.long)).item() == 0.0  # no negatives at all
    assert L.pairwise_euclidean(feats, feats)[1, 3].item() == approx(3.0)


def test_cluster_nce_by_hand():
    text = torch.tensor([[3.0, 4.0]])  # normalised -> (0.6, 0.8)
    protos = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    y = torch.tensor([1])
    assert L.cluster_nce(text, protos, y, 1.0).item() == approx(math.log(math.exp(0.6) + math.exp(0.8)) - 0.8)
    assert L.cluster_nce(text, protos, y, 0.5).item() == approx(math.log(math.exp(1.2) + math.exp(1.6)) - 1.6)


def test_supcon_by_hand():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    ya = torch.tensor([0, 1])
    c = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]])
    yc = torch.tensor([0, 0, 1])
    # anchor 0: logits (1, 1, 0), positives c0, c1; anchor 1: logits (0, 1, 2), positive c2
    lse0 = math.log(2 * math.e + 1)
    lse1 = math.log(1 + math.e + math.e ** 2)
    hand = -((1 - lse0) + (2 - lse1)) / 2
    assert L.supcon(a, c, ya, yc).item() == approx(hand)
    # temperature 2 halves the logits; un-normalised features are used as they are
    lse0h, lse1h = math.log(2 * math.exp(0.5) + 1), math.log(1 + math.exp(0.5) + math.e)
    assert L.supcon(a, c, ya, yc, 2.0).item() == approx(-((0.5 - lse0h) + (1 - lse1h)) / 2)


def test_i2t_ce_by_hand():
    feats = torch.tensor([[1.0, 2.0]])
    text = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # logits (1, 2, 3)
    y = torch.tensor([2])
    lse = math.log(math.e + math.e ** 2 + math.e ** 3)
    assert L.i2t_ce(feats, text, y, 1.0, 0.0).item() == approx(lse - 3)
    smoothed = 0.9 * (lse - 3) + 0.1 * (3 * lse - 6) / 3
    assert L.i2t_ce(feats, text, y, 1.0, 0.1).item() == approx(smoothed)
    assert L.i2t_ce(feats, text, y, 2.0, 0.1).item() == approx(
        L.label_smoothed_ce(torch.tensor([[0.5, 1.0, 1.5]]), y, 0.1).item())


def test_memory_ce_value_and_gradient():
    x = torch.tensor([[1.0, 0.0]], requires_grad=True)
    memory = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss = L.memory_ce(x, memory, torch.tensor([0]), 0.5)  # logits (2, 0)
    assert loss.item() == approx(math.log(1 + math.exp(-2)))
    loss.backward()
    p0 = math.exp(2) / (math.exp(2) + 1)
    assert x.grad.tolist()[0] == approx([2 * (p0 - 1), 2 * (1 - p0)])  # (softmax - onehot) M / T


def test_mask_bce_dice_mse_by_hand():
    a = torch.tensor([[[0.0, math.log(3.0)], [-100.0, -100.0]]])  # [B=1, R=2, L=2]
    t = torch.tensor([[[True, False], [False, False]]])
    # BCE terms: (0, 1) -> ln 2; (ln 3, 0) -> ln 4; (-100, 0) -> ~0 twice
    assert L.mask_bce([a], t).item() == approx(3 * math.log(2) / 4)
    # Dice: row 0 with M = (0.5, 0.75): (2*0.5 + e) / (1.25 + 1 + e); row 1 empty/empty scores 1
    e = L.DICE_SMOOTH
    row0 = (1.0 + e) / (2.25 + e)
    assert L.mask_dice([a], t).item() == approx(1 - (row0 + 1) / 2)
    # a second layer of zero logits: every BCE term ln 2; its Dice rows (1 + e)/(2 + e) and e/(1 + e)
    z = torch.zeros_like(a)
    assert L.mask_bce([a, z], t).item() == approx((3 * math.log(2) / 4 + math.log(2)) / 2)
    rows_z = [(1 + e) / (2 + e), e / (1 + e)]
    assert L.mask_dice([a, z], t).item() == approx(1 - (row0 + 1 + sum(rows_z)) / 4)
    assert L.mask_dice(torch.stack([a, z]), t).item() == approx(L.mask_dice([a, z], t).item())
    # MSE: row 0 (0.5 - 1)^2 + 0.75^2, row 1 ~0
    assert L.mask_mse([a], t).item() == approx((0.25 + 0.5625) / 4)


def test_mask_dice_empty_rows_score_one():
    a = torch.full((2, 3, 5), -60.0)
    t = torch.zeros(2, 3, 5, dtype=torch.bool)
    assert L.mask_dice([a], t).item() == approx(0.0)
    full = torch.full((2, 3, 5), 60.0)
    assert L.mask_dice([full], ~t).item() == approx(0.0, abs=1e-6)


def test_losses_are_fp32_under_half_inputs():
    logits = torch.randn(4, 6).half()
    y = torch.tensor([0, 1, 2, 3])
    out = L.label_smoothed_ce(logits, y)
    assert out.dtype == torch.float32 and torch.isfinite(out)


def test_dense_part_nce_by_hand():
    # U = 2 identities x P = 2 parts, unit texts: (id 0: head (1, 0), upper (0, 1)), (id 1: (-1, 0), (0, -1))
    text = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[-1.0, 0.0], [0.0, -1.0]]])
    patches = torch.tensor([[[2.0, 0.0], [5.0, 5.0], [1.0, 1.0]]])  # one image of identity 1, three patches
    parts = torch.tensor([[1, 0, 2]])  # head, background (ignored), upper
    # patch 0 -> cosines (1, 0, -1, 0), positive = (id 1, head) = -1: 1 + log(e + 2 + 1/e)
    # patch 2 -> cosines (s, s, -s, -s), s = 1/sqrt 2, positive = (id 1, upper) = -s: s + log(2 e^s + 2 e^-s)
    s = 1 / math.sqrt(2)
    a0 = 1 + math.log(math.e + 2 + 1 / math.e)
    a2 = s + math.log(2 * math.exp(s) + 2 * math.exp(-s))
    got = L.dense_part_nce(patches, parts, text, torch.tensor([1]), temperature=1.0)
    assert got.item() == pytest.approx((a0 + a2) / 2, rel=1e-6)
    # temperature 0.5 doubles the logits: patch 0 alone -> 2 + log(e^2 + 2 + e^-2)
    got = L.dense_part_nce(patches[:, :1], parts[:, :1], text, torch.tensor([1]), temperature=0.5)
    assert got.item() == pytest.approx(2 + math.log(math.e ** 2 + 2 + math.e ** -2), rel=1e-6)
    # shared prompts (U = 1): patch 0 against (1, 0), (0, 1) with positive (1, 0): -1 + log(e + 1)
    got = L.dense_part_nce(patches[:, :1], parts[:, :1], text[:1], torch.tensor([0]), temperature=1.0)
    assert got.item() == pytest.approx(-1 + math.log(math.e + 1), rel=1e-6)
    # only background: 0, still differentiable
    p = patches.clone().requires_grad_(True)
    zero = L.dense_part_nce(p, torch.zeros_like(parts), text, torch.tensor([1]))
    zero.backward()
    assert zero.item() == 0 and p.grad is not None


def test_part_fusion_mse_by_hand():
    fused = torch.tensor([[[3.0, 4.0], [1.0, 0.0]]])  # one image, two locations
    parts = torch.tensor([[1, 0]])  # the second location is background: excluded
    text = torch.tensor([[[9.0, 9.0]], [[0.0, 2.0]]])  # N = 2 identities, P = 1 part
    ids = torch.tensor([1])
    # raw: (3 - 0)^2 + (4 - 2)^2 = 13; normalised: (0.6, 0.8) vs (0, 1): 0.36 + 0.04 = 0.4
    assert L.part_fusion_mse(fused, parts, text, ids, normalize=False).item() == pytest.approx(13.0)
    assert L.part_fusion_mse(fused, parts, text, ids, normalize=True).item() == pytest.approx(0.4)
    assert L.part_fusion_mse(fused, torch.zeros_like(parts), text, ids).item() == 0
