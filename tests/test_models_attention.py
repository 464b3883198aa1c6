"""Masked attention on open_clip block weights: the boolean convention, fused vs explicit, vs open_clip."""
from __future__ import annotations

import pytest
import torch
from test_models_common import tiny_clip

from muva_lib.models.attention import block_forward, bool_to_additive, check_block, multihead_attention


@pytest.fixture(scope="module")
def block():
    return tiny_clip().visual.transformer.resblocks[0].eval()


def _random_allowed(b: int, t: int, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    allowed = torch.rand(b, t, t, generator=g) > 0.4
    allowed |= torch.eye(t, dtype=torch.bool)  # never a fully blocked row
    return allowed


def test_bool_to_additive_pins_true_as_allowed():
    allowed = torch.tensor([[True, False], [False, True]])
    out = bool_to_additive(allowed)
    assert out.dtype == torch.float32
    assert out[0, 0] == 0 and out[1, 1] == 0
    assert torch.isinf(out[0, 1]) and out[0, 1] < 0 and torch.isinf(out[1, 0])
    assert bool_to_additive(allowed, torch.float16).dtype == torch.float16
    with pytest.raises(TypeError):
        bool_to_additive(out)


def test_boolean_masks_are_refused(block):
    x = torch.randn(2, 5, block.attn.embed_dim)
    with pytest.raises(TypeError, match="bool_to_additive"):
        block_forward(block, x, torch.ones(5, 5, dtype=torch.bool))


def test_open_clip_reads_a_boolean_mask_as_additive_0_1(block):
    """Why we never hand open_clip a boolean: 3.3.0 casts it to floats and blocks nothing."""
    x = torch.randn(2, 6, block.attn.embed_dim)
    allowed = _random_allowed(1, 6)[0]
    with torch.no_grad():
        as_bool = block(x, attn_mask=~allowed)  # torch's convention: True = blocked
        as_01 = block(x, attn_mask=(~allowed).float())
        ours, _ = block_forward(block, x, bool_to_additive(allowed))
    torch.testing.assert_close(as_bool, as_01)
    assert (as_bool - ours).abs().max() > 1e-3


@pytest.mark.parametrize("need_weights", [False, True])
def test_all_allowed_equals_no_mask_equals_open_clip(block, need_weights):
    x = torch.randn(3, 7, block.attn.embed_dim)
    with torch.no_grad():
        ref = block(x)
        none, _ = block_forward(block, x, None, need_weights)
        allowed, w = block_forward(block, x, torch.zeros(3, 1, 7, 7), need_weights)
    torch.testing.assert_close(none, ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(allowed, ref, atol=1e-5, rtol=0)
    if need_weights:
        assert w.shape == (3, block.attn.num_heads, 7, 7)
        torch.testing.assert_close(w.sum(-1), torch.ones(3, block.attn.num_heads, 7))


@pytest.mark.parametrize("need_weights", [False, True])
def test_masked_equals_open_clip_with_a_float_mask_per_head(block, need_weights):
    b, t, h = 2, 9, block.attn.num_heads
    x = torch.randn(b, t, block.attn.embed_dim)
    allowed = _random_allowed(b, t)
    add = bool_to_additive(allowed)
    with torch.no_grad():
        ref = block(x, attn_mask=add.repeat_interleave(h, dim=0))  # [B*h, T, T], batch-major
        ours, w = block_forward(block, x, add[:, None], need_weights)
    torch.testing.assert_close(ours, ref, atol=1e-5, rtol=0)
    if need_weights:
        assert (w.masked_select(~allowed[:, None].expand_as(w)) == 0).all()


def test_explicit_path_equals_fused_path(block):
    x = torch.randn(2, 9, block.attn.embed_dim)
    add = bool_to_additive(_random_allowed(2, 9, seed=3))[:, None]
    fused, none = multihead_attention(block.attn, x, add)
    explicit, w = multihead_attention(block.attn, x, add, need_weights=True)
    assert none is None and w is not None
    torch.testing.assert_close(fused, explicit, atol=1e-5, rtol=0)


def test_mask_shapes_and_blocks_are_checked(block):
    x = torch.randn(2, 4, block.attn.embed_dim)
    with pytest.raises(ValueError, match="attention mask"):
        block_forward(block, x, torch.zeros(8, 4, 4))
    with pytest.raises(TypeError):
        check_block(torch.nn.Linear(3, 3))
    check_block(block)
