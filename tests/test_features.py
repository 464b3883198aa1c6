"""The one feature loop (muva_lib.features): batch order, masks per batch, flip averaging of tuples, fp32
outputs, no gradients; model_features' masks, select and train-mode restoring."""
from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn

import muva_lib.features as features
from muva_lib.features import batch_features, model_features


def _batches(n: int = 5, size: int = 2) -> list[dict]:
    imgs = torch.arange(n * 3 * 2 * 4, dtype=torch.float32).reshape(n, 3, 2, 4)
    masks = torch.arange(n).reshape(n, 1, 1).expand(n, 2, 3) % 2 == 0
    return [{"img": imgs[s:s + size], "mask": masks[s:s + size], "key": [f"k{i}" for i in range(s, min(s + size, n))]}
            for s in range(0, n, size)]


def test_batch_features_order_tuples_flip_and_dtype():
    loader = _batches()
    w = torch.ones(1, requires_grad=True)

    def encode(batch):  # not flip-invariant on purpose; half precision to check the fp32 cast
        assert not torch.is_grad_enabled()
        left = (batch["img"][:, :, 0, 0] * w).half()
        return left, batch["mask"].float().sum(dim=(1, 2)) + batch["img"][:, 0, 0, -1]

    got = list(batch_features(loader, encode, "cpu", progress=False))
    assert [b["key"] for b, _ in got] == [b["key"] for b in loader]
    left = torch.cat([o[0] for _, o in got])
    assert left.dtype == torch.float32 and not left.requires_grad
    imgs = torch.cat([b["img"] for b in loader])
    torch.testing.assert_close(left, imgs[:, :, 0, 0])
    flipped = list(batch_features(loader, encode, torch.device("cpu"), flip=True, progress=False))
    second = torch.cat([o[1] for _, o in flipped])
    masks = torch.cat([b["mask"] for b in loader]).float().sum(dim=(1, 2))
    torch.testing.assert_close(second, masks + (imgs[:, 0, 0, -1] + imgs[:, 0, 0, 0]) / 2)  # the mask is not mirrored


class _Model(nn.Module):
    num_parts = 1

    def forward(self, img, *, part_masks=None, return_patches=False):
        assert not self.training
        gate = part_masks.float().mean(dim=(1, 2)) if part_masks is not None else torch.zeros(img.shape[0])
        return SimpleNamespace(feat=img[:, :, 0, 0] + gate[:, None], patches=return_patches)


def test_model_features_masks_select_and_mode(monkeypatch):
    loader = _batches()
    seen = {}

    def fake_loader(items, data_cfg, device, masks=None):
        seen.update(items=items, masks=masks)
        return loader

    monkeypatch.setattr(features, "make_test_loader", fake_loader)
    model = _Model().train()
    imgs = torch.cat([b["img"] for b in loader])[:, :, 0, 0]
    out = model_features(model, ["a", "b"], None, torch.device("cpu"), lambda o: o.feat, progress=False)
    assert model.training and seen == {"items": ["a", "b"], "masks": None}
    torch.testing.assert_close(out, imgs)
    forced = model_features(model, ["a"], None, torch.device("cpu"), lambda o: o.feat, masks={"k": 1}, progress=False)
    gate = torch.cat([b["mask"] for b in loader]).float().mean(dim=(1, 2))
    torch.testing.assert_close(forced, imgs + gate[:, None])
