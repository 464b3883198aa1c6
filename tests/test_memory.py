"""Prototype memories: normalised class means and the hardest-positive / sequential momentum updates, by hand."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from muva_lib.losses import memory_ce
from muva_lib.memory import PrototypeMemory, class_means, visual_prototypes


def _unit(x, y):
    n = math.hypot(x, y)
    return [x / n, y / n]


def test_class_means_and_prototypes():
    feats = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    labels = torch.tensor([0, 0, 1])
    assert class_means(feats, labels, 3).tolist() == [[2.0, 0.0], [0.0, 2.0], [0.0, 0.0]]
    assert visual_prototypes(feats, labels, 3).tolist() == [[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]
    # the mean is taken before normalising (VPM-1 uses raw features)
    assert visual_prototypes(torch.tensor([[1.0, 0.0], [0.0, 3.0]]), torch.tensor([0, 0]), 1).tolist()[0] == \
        pytest.approx(_unit(1.0, 3.0))


def test_hard_update_picks_the_least_similar_sample():
    mem = PrototypeMemory(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), momentum=0.2, hard=True)
    x = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6]])  # id 0: sims 1 and 0.6 -> the second; id 1: 0.6
    mem.update(x, torch.tensor([0, 0, 1]))
    assert mem.bank[0].tolist() == pytest.approx(_unit(0.2 + 0.8 * 0.6, 0.8 * 0.8))
    assert mem.bank[1].tolist() == pytest.approx(_unit(0.8 * 0.8, 0.2 + 0.8 * 0.6))
    assert mem.bank[2].tolist() == [1.0, 0.0]  # absent ids keep their prototype


def test_sequential_update_follows_batch_order():
    mem = PrototypeMemory(torch.tensor([[1.0, 0.0]]), momentum=0.2, hard=False)
    mem.update(torch.tensor([[0.6, 0.8], [1.0, 0.0]]), torch.tensor([0, 0]))
    first = _unit(0.2 + 0.8 * 0.6, 0.8 * 0.8)
    assert mem.bank[0].tolist() == pytest.approx(_unit(0.2 * first[0] + 0.8, 0.2 * first[1]))


def test_loss_gradient_uses_the_memory_before_the_update():
    bank = F.normalize(torch.tensor([[1.0, 0.2], [0.1, 1.0], [0.5, 0.5]]), dim=1)
    mem = PrototypeMemory(bank.clone(), momentum=0.2, hard=True)
    x = F.normalize(torch.tensor([[0.9, 0.3], [0.2, 0.9]]), dim=1).requires_grad_(True)
    y = torch.tensor([0, 1])
    old = mem.bank
    loss = memory_ce(x, mem.bank, y, 0.01)
    mem.update(x.detach(), y)  # between forward and backward, as in the training step
    loss.backward()
    assert mem.bank is not old and torch.equal(old, bank), "the update must not modify the old bank in place"
    assert not torch.allclose(mem.bank, bank)
    p = torch.softmax(x.detach() @ bank.t() / 0.01, dim=1)
    expected = (p - F.one_hot(y, 3).float()) @ bank / 0.01 / 2  # mean over the batch of 2
    torch.testing.assert_close(x.grad, expected)


def test_from_features_builds_vpm():
    x = F.normalize(torch.randn(12, 8, generator=torch.Generator().manual_seed(0)), dim=1)
    y = torch.arange(12) % 4
    mem = PrototypeMemory.from_features(x, y, 4)
    assert mem.bank.shape == (4, 8) and torch.allclose(mem.bank.norm(dim=1), torch.ones(4))
    assert mem.momentum == 0.2 and mem.hard
