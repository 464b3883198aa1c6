"""AM-MSA encoder: token layout, mask template, RMP, gating, teacher forcing, equivalence with open_clip."""
from __future__ import annotations

import open_clip
import pytest
import torch
from test_models_common import tiny_clip

from muva_lib.models.ammsa import AMMSAEncoder, ResidualMaskPredictor, part_patch_mask, template_base

NEG = float("-inf")


def _encoder(size=(128, 64), num_parts=3, seed=0, **kw) -> tuple[torch.nn.Module, AMMSAEncoder]:
    clip = tiny_clip(size, seed)
    return clip, AMMSAEncoder(clip.visual, num_parts, **kw)


def _images(b=2, size=(128, 64), seed=1):
    return torch.randn(b, 3, *size, generator=torch.Generator().manual_seed(seed))


def _reference_mask(gate: torch.Tensor) -> torch.Tensor:
    """The spec's template written out entry by entry: [B, T, T], rows = queries."""
    b, r, l = gate.shape
    t = 1 + r + l
    m = torch.zeros(b, t, t)
    for i in range(r):
        for j in range(r):
            if i != j:
                m[:, 1 + i, 1 + j] = NEG
        for p in range(l):
            m[:, 1 + i, 1 + r + p] = gate[:, i, p]
            m[:, 1 + r + p, 1 + i] = gate[:, i, p]
    return m


# ----------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("size", [(128, 64), (256, 128)])
@pytest.mark.parametrize("num_parts", [0, 3])
def test_shapes(size, num_parts):
    clip, enc = _encoder(size, num_parts)
    out = enc(_images(2, size), need_weights=True, return_patches=True)
    l, d, w = size[0] // 16 * size[1] // 16, clip.visual.output_dim, enc.width
    assert enc.num_patches == l and enc.num_tokens == 1 + num_parts + l
    assert out.tokens.shape == (2, 1 + num_parts, d)
    assert out.feat.shape == (2, (1 + num_parts) * d) == (2, enc.feat_dim)
    assert out.cls_hidden.shape == (2, w) and out.cls_penultimate.shape == (2, w)
    assert out.patch_tokens.shape == (2, l, d)
    n_blocks = len(clip.visual.transformer.resblocks)
    assert len(out.mask_logits) == (n_blocks if num_parts else 0)
    assert all(a.shape == (2, num_parts, l) for a in out.mask_logits)
    heads = clip.visual.transformer.resblocks[0].attn.num_heads
    assert [tuple(a.shape) for a in out.attn_weights] == [(2, heads, enc.num_tokens, enc.num_tokens)] * n_blocks
    torch.testing.assert_close(out.feat.view(2, 1 + num_parts, d), out.tokens)


def test_wrong_inputs_are_refused():
    _, enc = _encoder()
    with pytest.raises(ValueError, match="image size"):
        enc(torch.randn(1, 3, 64, 64))
    with pytest.raises(ValueError, match="part_masks"):
        enc(_images(2), part_masks=torch.ones(2, 3, 5, dtype=torch.bool))
    _, enc0 = _encoder(num_parts=0)
    with pytest.raises(ValueError, match="num_parts=0"):
        enc0(_images(2), part_masks=torch.ones(2, 3, 32, dtype=torch.bool))
    with pytest.raises(ValueError, match="gating"):
        _encoder(gating="soft")


# ----------------------------------------------------------------------------- mask template

def test_mask_template_exactly_as_spec():
    g = torch.Generator().manual_seed(0)
    b, r, l = 2, 3, 10
    gate = torch.where(torch.rand(b, r, l, generator=g) > 0.5, 0.0, NEG)
    mask = part_patch_mask(gate)
    assert mask.shape == (b, 1, 1 + r + l, 1 + r + l)  # one mask, broadcast over all heads
    torch.testing.assert_close(mask[:, 0], _reference_mask(gate))
    m = mask[:, 0]
    assert (m[:, 0] == 0).all() and (m[:, :, 0] == 0).all()  # CLS row and column
    assert (m[:, 1 + r:, 1 + r:] == 0).all()  # patch-patch
    assert torch.equal(m[:, 1:1 + r, 1:1 + r].isfinite(), torch.eye(r, dtype=torch.bool).expand(b, r, r))
    assert torch.equal(m[:, 1:1 + r, 1 + r:], gate) and torch.equal(m[:, 1 + r:, 1:1 + r], gate.transpose(1, 2))
    torch.testing.assert_close(part_patch_mask(gate, template_base(r, l)), mask)


def test_no_row_is_fully_blocked_even_with_every_gate_closed():
    gate = torch.full((2, 3, 8), NEG)
    m = part_patch_mask(gate)[:, 0]
    assert m.isfinite().any(dim=-1).all()
    _, enc = _encoder()
    out = enc(_images(2), part_masks=torch.zeros(2, 3, 32, dtype=torch.bool))
    assert out.feat.isfinite().all()


# ----------------------------------------------------------------------------- equivalence

@pytest.mark.parametrize("size", [(128, 64), (256, 128)])
@pytest.mark.parametrize("train", [False, True])
def test_num_parts_0_equals_open_clip_encode_image(size, train):
    clip, enc = _encoder(size, num_parts=0)
    clip.train(train)
    x = _images(3, size)
    with torch.no_grad():
        ref = clip.encode_image(x)
        out = enc(x)
    torch.testing.assert_close(out.tokens[:, 0], ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.feat, ref, atol=1e-5, rtol=0)


def _reference_forward(clip, enc, x, part_masks=None):
    """[CLS, parts, patches] through open_clip's own blocks with the spec's mask as [B*heads, T, T]."""
    v, r = clip.visual, enc.num_parts
    patches = v.conv1(x).flatten(2).transpose(1, 2)
    pos = v.positional_embedding
    parts = enc.part_tokens.expand(x.shape[0], -1, -1) + pos[0]  # part positions = copies of CLS's
    seq = torch.cat([(v.class_embedding + pos[0]).expand(x.shape[0], 1, -1), parts, patches + pos[1:]], 1)
    seq = v.ln_pre(seq)
    acc = None
    for i, blk in enumerate(v.transformer.resblocks):
        if part_masks is not None:
            gate = torch.where(part_masks, 0.0, NEG)
        else:
            s = enc.rmp[i](seq[:, 1:1 + r], seq[:, 1 + r:])
            acc = s if acc is None else acc + s
            gate = torch.where(torch.sigmoid(acc) > 0.5, 0.0, NEG)
        mask = _reference_mask(gate).repeat_interleave(blk.attn.num_heads, dim=0)
        seq = blk(seq, attn_mask=mask)
    return v.ln_post(seq)[:, :1 + r] @ v.proj


@pytest.mark.parametrize("teacher", [False, True])
def test_parts_path_equals_open_clip_blocks_with_the_spec_mask(teacher):
    """R > 0: CLS always attends to the part tokens (spec template), so no R > 0 output can equal
    plain encode_image; instead the whole masked path is checked against open_clip's own blocks fed
    with the template written out by hand."""
    clip, enc = _encoder(num_parts=3)
    x = _images(2)
    pm = torch.rand(2, 3, 32, generator=torch.Generator().manual_seed(5)) > 0.5 if teacher else None
    with torch.no_grad():
        ref = _reference_forward(clip, enc, x, pm)
        out = enc(x, part_masks=pm)
        plain = clip.encode_image(x)
    torch.testing.assert_close(out.tokens, ref, atol=1e-5, rtol=0)
    assert (out.tokens[:, 0] - plain).abs().max() > 1e-4  # the parts do reach the CLS token


def test_rmp_cross_attention_equals_the_textbook_form():
    torch.manual_seed(0)
    rmp = ResidualMaskPredictor(64, 12, num_heads=4)
    parts, patches = torch.randn(2, 3, 64), torch.randn(2, 12, 64)
    q = rmp.q(rmp.ln_q(parts)).view(2, 3, 4, 16).transpose(1, 2)
    z = rmp.ln_kv(patches)
    k = rmp.k(z).view(2, 12, 4, 16).transpose(1, 2)
    v = rmp.v(z).view(2, 12, 4, 16).transpose(1, 2)
    ref = ((q @ k.transpose(-1, -2) / 4).softmax(-1) @ v).transpose(1, 2).reshape(2, 3, 64)
    torch.testing.assert_close(rmp.cross_attention(parts, patches), ref, atol=1e-5, rtol=0)
    s = rmp(parts, patches)
    torch.testing.assert_close(s, rmp.mlp(rmp.ln_out(rmp.out(ref) + parts)), atol=1e-5, rtol=0)


def test_rmp_size_and_init_match_the_spec():
    rmp = ResidualMaskPredictor(768, 128, num_heads=2)
    assert sum(p.numel() for p in rmp.parameters()) == 2_479_616  # ~2.48 M per layer for ViT-B/16
    assert rmp.q.bias is None and rmp.k.bias is None and rmp.v.bias is None and rmp.out.bias is not None
    assert (rmp.mlp[0].bias == 0).all() and (rmp.mlp[2].bias == 0).all()
    assert abs(rmp.k.weight.std().item() - 0.02) < 0.002
    plain = ResidualMaskPredictor(32, 8, layernorm=False)
    assert isinstance(plain.ln_q, torch.nn.Identity)


# ----------------------------------------------------------------------------- part tokens

def test_part_token_inits_and_positions():
    clip, enc = _encoder(part_token_init="cls")
    torch.testing.assert_close(enc.part_tokens, clip.visual.class_embedding.expand(3, -1))
    torch.testing.assert_close(enc.part_pos_embed, clip.visual.positional_embedding[0].expand(3, -1))
    _, enc = _encoder(size=(256, 128), part_token_init="random", part_token_std=0.02)
    assert enc.part_tokens.shape == (3, enc.width) and abs(enc.part_tokens.std().item() - 0.02) < 0.005
    clip, enc = _encoder(part_token_init="patch_avg")
    assert enc.part_tokens is None
    x = _images(2)
    patches = clip.visual.conv1(x)  # [B, D, 8, 4]: stripes of rows 0-2, 3-5, 6-7
    want = torch.stack([patches[:, :, a:b].mean(dim=(2, 3)) for a, b in ((0, 3), (3, 6), (6, 8))], 1)
    torch.testing.assert_close(enc._part_tokens(patches.flatten(2).transpose(1, 2)), want)


# ----------------------------------------------------------------------------- gating

def test_offline_gate_is_hard_and_detached():
    _, enc = _encoder()
    logits = torch.randn(2, 3, 32, requires_grad=True)
    gate = enc.gate(logits)
    assert not gate.requires_grad
    assert torch.equal(gate == 0, torch.sigmoid(logits) > 0.5) and torch.isinf(gate[gate != 0]).all()
    out = enc(_images(2))
    out.feat.square().sum().backward()
    assert all(p.grad is None for p in enc.rmp.parameters())  # features do not train the RMP
    assert enc.part_tokens.grad is not None and enc.visual.transformer.resblocks[0].mlp.c_fc.weight.grad is not None
    enc.zero_grad(set_to_none=True)
    out = enc(_images(2))
    sum(a.mean() for a in out.mask_logits).backward()  # the mask-logit path does
    assert all(p.grad is not None for p in enc.rmp.parameters())


def test_online_gate_is_soft_and_trains_the_rmp_through_the_features():
    _, enc = _encoder(gating="online", mask_max_value=2.0)
    logits = torch.randn(2, 3, 32, requires_grad=True)
    torch.testing.assert_close(enc.gate(logits), (2 * torch.sigmoid(logits) - 1) * 2.0)
    out = enc(_images(2))
    out.feat.square().sum().backward()
    grads = [p.grad for p in enc.rmp[:-1].parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_gating_none_opens_every_gate_but_still_predicts():
    _, enc = _encoder(gating="none")
    _, enc_tf = _encoder(gating="none")
    x = _images(2)
    out = enc(x)
    assert len(out.mask_logits) == len(enc.rmp)
    with torch.no_grad():
        forced = enc_tf(x, part_masks=torch.ones(2, 3, 32, dtype=torch.bool))
    torch.testing.assert_close(out.tokens, forced.tokens, atol=1e-5, rtol=0)


# ----------------------------------------------------------------------------- teacher forcing

def test_teacher_forcing_skips_the_rmp_and_uses_the_mask_in_every_block(monkeypatch):
    _, enc = _encoder()
    for m in enc.rmp:
        monkeypatch.setattr(m, "forward", lambda *a: pytest.fail("RMP called under teacher forcing"))
    pm = torch.rand(2, 3, 32, generator=torch.Generator().manual_seed(2)) > 0.5
    out = enc(_images(2), part_masks=pm, need_weights=True)
    assert out.mask_logits == []
    for w in out.attn_weights:  # [B, h, T, T]
        part_to_patch = w[:, :, 1:4, 4:]
        patch_to_part = w[:, :, 4:, 1:4]
        assert (part_to_patch[~pm[:, None].expand_as(part_to_patch)] == 0).all()
        assert (patch_to_part[~pm.transpose(1, 2)[:, None].expand_as(patch_to_part)] == 0).all()
        assert (part_to_patch[pm[:, None].expand_as(part_to_patch)] > 0).all()


def test_teacher_forced_part_token_ignores_a_blocked_patch():
    """One block: a part token's output depends on allowed patches only (deeper, CLS relays them)."""
    torch.manual_seed(0)
    clip = open_clip.create_model("muva-tiny", force_image_size=(128, 64),
                                  vision_cfg={"image_size": [128, 64], "layers": 1, "width": 192,
                                              "head_width": 64, "patch_size": 16})
    enc = AMMSAEncoder(clip.visual, 3)
    pm = torch.ones(1, 3, 32, dtype=torch.bool)
    pm[0, 0, 5] = False  # head part may not see patch 5 (row 1, column 1)
    x = _images(1)
    y_blocked, y_allowed = x.clone(), x.clone()
    y_blocked[..., 16:32, 16:32] += 3.0  # patch 5
    y_allowed[..., 0:16, 16:32] += 3.0  # patch 1
    with torch.no_grad():
        base, blocked, allowed = (enc(z, part_masks=pm).tokens for z in (x, y_blocked, y_allowed))
    torch.testing.assert_close(blocked[:, 1], base[:, 1], atol=1e-6, rtol=0)
    assert (blocked[:, 2] - base[:, 2]).abs().max() > 1e-4  # upper-body part may see it
    assert (allowed[:, 1] - base[:, 1]).abs().max() > 1e-4


def test_from_config_passes_every_encoder_field_by_name():
    """A model slice with no default AM-MSA value reaches the matching encoder attribute (a field passed
    to the wrong parameter, or not at all, shows up here)."""
    from muva_lib.config import ModelCfg

    cfg = ModelCfg(num_parts=2, part_token_init="cls", part_token_std=0.5, rmp_num_heads=4, rmp_layernorm=False,
                   rmp_inner_shortcut=False, rmp_sigmoid_tau=0.25, gating="online", gate_thresh=0.3,
                   mask_max_value=2.0)
    enc = AMMSAEncoder.from_config(tiny_clip((128, 64), 0).visual, cfg)
    assert (enc.num_parts, enc.part_token_init, enc.sigmoid_tau) == (2, "cls", 0.25)
    assert (enc.gating, enc.gate_thresh, enc.mask_max_value) == ("online", 0.3, 2.0)
    rmp = enc.rmp[0]
    assert rmp.num_heads == 4 and not rmp.inner_shortcut and isinstance(rmp.ln_q, torch.nn.Identity)
    torch.testing.assert_close(enc.part_tokens, enc.visual.class_embedding.expand(2, -1))  # "cls" init
    random = AMMSAEncoder.from_config(tiny_clip((128, 64), 0).visual, ModelCfg(part_token_std=0.5))
    assert random.part_tokens.std() > 0.2  # part_token_std reached the random init
