"""Masked self-attention run on the weights of open_clip's ``ResidualAttentionBlock`` (masks: additive floats).

open_clip 3.3.0 casts any mask to the activation dtype, so a boolean mask silently becomes an additive
0/1 bias that blocks nothing. Here a mask is always an additive float (0 = allowed, -inf = blocked);
:func:`bool_to_additive` is the one converter (True = allowed) and boolean masks are refused elsewhere.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["bool_to_additive", "check_block", "multihead_attention", "block_forward"]


def bool_to_additive(allowed: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """``True`` = may attend -> 0.0, ``False`` = blocked -> -inf. Same shape as ``allowed``."""
    if allowed.dtype != torch.bool:
        raise TypeError(f"expected a boolean mask (True = allowed), got {allowed.dtype}")
    out = torch.zeros(allowed.shape, dtype=dtype, device=allowed.device)
    return out.masked_fill(~allowed, float("-inf"))


def check_block(block: nn.Module) -> None:
    """Raise unless ``block`` is a plain open_clip ``ResidualAttentionBlock`` (self-attention, batch-first)."""
    attn = getattr(block, "attn", None)
    needed = ("ln_1", "ls_1", "ln_2", "mlp", "ls_2")
    if not isinstance(attn, nn.MultiheadAttention) or not all(hasattr(block, n) for n in needed):
        raise TypeError(f"{type(block).__name__} is not open_clip's ResidualAttentionBlock "
                        "(custom blocks with qk-norm / scaled-cosine attention are not supported)")
    if hasattr(block, "ln_1_kv") or not attn.batch_first or not attn._qkv_same_embed_dim:
        raise TypeError("expected a batch-first self-attention block with a packed in-projection")
    if attn.dropout:
        raise ValueError(f"attention dropout {attn.dropout} is not supported (CLIP uses 0)")


def _as_4d(mask: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        raise TypeError("boolean attention mask: convert it with bool_to_additive (True = allowed) first")
    if mask.dim() == 2:
        mask = mask[None, None]
    elif mask.dim() != 4:
        raise ValueError(f"attention mask must be [T, T] or [B, 1 or heads, T, T], got {tuple(mask.shape)}")
    return mask.to(dtype)


def multihead_attention(attn: nn.MultiheadAttention, x: Tensor, mask: Tensor | None = None,
                        need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
    """Self-attention with ``attn``'s weights. ``x`` [B, T, D]; ``mask`` additive [T, T] or [B, 1|h, T, T].

    Fused ``scaled_dot_product_attention`` by default; ``need_weights`` takes the explicit softmax path
    (same result) and also returns the attention weights [B, h, T, T].
    """
    b, t, d = x.shape
    h = attn.num_heads
    qkv = F.linear(x, attn.in_proj_weight, attn.in_proj_bias)
    q, k, v = qkv.view(b, t, 3, h, d // h).permute(2, 0, 3, 1, 4).unbind(0)  # each [B, h, T, d/h]
    mask = _as_4d(mask, q.dtype)
    weights = None
    if need_weights:
        scores = (q * (d // h) ** -0.5) @ k.transpose(-2, -1)
        if mask is not None:
            scores = scores + mask
        weights = scores.softmax(dim=-1)
        o = weights @ v
    else:
        o = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    o = o.transpose(1, 2).reshape(b, t, d)
    return attn.out_proj(o), weights


def block_forward(block: nn.Module, x: Tensor, mask: Tensor | None = None,
                  need_weights: bool = False) -> tuple[Tensor, Tensor | None]:
    """One open_clip residual block with an additive mask: ln_1 -> attention -> ls_1 + residual -> ln_2 -> mlp.

    ``x`` [B, T, D] -> ([B, T, D], attention weights [B, h, T, T] or None).
    """
    a, weights = multihead_attention(block.attn, block.ln_1(x), mask, need_weights)
    x = x + block.ls_1(a)
    x = x + block.ls_2(block.mlp(block.ln_2(x)))
    return x, weights
