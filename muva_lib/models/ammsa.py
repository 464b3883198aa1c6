"""AM-MSA: the CLIP ViT run on [CLS, part tokens, patches] with a predicted part<->patch mask in every block.

Token layout, mask template, residual mask predictors (RMP) and gating follow muva_spec.md section 1.2.
``num_parts=0`` runs the same code as the plain CLIP image encoder (CLIP-ReID).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch
from open_clip.transformer import QuickGELU
from torch import Tensor, nn

from .attention import block_forward, bool_to_additive, check_block

if TYPE_CHECKING:
    from ..config import ModelCfg

__all__ = ["GATINGS", "PART_TOKEN_INITS", "template_base", "part_patch_mask", "ResidualMaskPredictor",
           "EncoderOutput", "AMMSAEncoder"]

GATINGS = ("offline", "online", "none")
PART_TOKEN_INITS = ("random", "cls", "patch_avg")


def template_base(num_parts: int, num_patches: int, dtype: torch.dtype = torch.float32,
                  device: torch.device | str | None = None) -> Tensor:
    """The gate-independent part of the mask, [T, T] with T = 1 + R + L: 0 everywhere except the
    part-part block, which is -inf off its diagonal (a part token sees itself, not the other parts)."""
    t = 1 + num_parts + num_patches
    allowed = torch.ones(t, t, dtype=torch.bool, device=device)
    allowed[1:1 + num_parts, 1:1 + num_parts] = torch.eye(num_parts, dtype=torch.bool, device=device)
    return bool_to_additive(allowed, dtype)


def part_patch_mask(gate: Tensor, base: Tensor | None = None) -> Tensor:
    """Fill the template with a gate. ``gate`` additive [B, R, L] (0 / -inf, or soft) -> mask [B, 1, T, T].

    Rows are queries, columns keys: CLS row and column stay 0, part->patch = ``gate``, patch->part =
    ``gate`` transposed (symmetric), patch-patch 0. One mask for all heads (dimension 1 broadcasts).
    No row is ever fully blocked: every token sees CLS and itself.
    """
    b, r, l = gate.shape
    if base is None:
        base = template_base(r, l, gate.dtype, gate.device)
    mask = base.to(gate.dtype).expand(b, -1, -1).clone()
    mask[:, 1:1 + r, 1 + r:] = gate
    mask[:, 1 + r:, 1:1 + r] = gate.transpose(1, 2)
    return mask.unsqueeze(1)


class ResidualMaskPredictor(nn.Module):
    """One block's mask predictor: parts query patches (cross-attention), MLP -> per-patch logits [B, R, L].

    ``LN_a(P)`` queries, ``LN_b(Z)`` keys/values (bias-free q/k/v, output Linear with bias), inner shortcut
    ``U + P``, then ``Linear(D, L) -> QuickGELU -> Linear(L, L)`` on ``LN_c(U)``. About 2.48 M parameters
    for D=768, L=128. The cross-attention is evaluated as ``(q W_k) Z^T`` and ``(A Z) W_v^T`` instead of
    projecting all L patches: the same math, R*h instead of L rows through the D x D projections.
    """

    def __init__(self, width: int, num_patches: int, num_heads: int = 2, layernorm: bool = True,
                 inner_shortcut: bool = True):
        super().__init__()
        if width % num_heads:
            raise ValueError(f"RMP heads {num_heads} do not divide the width {width}")
        self.num_heads = num_heads
        self.inner_shortcut = inner_shortcut
        norm = (lambda: nn.LayerNorm(width)) if layernorm else nn.Identity
        self.ln_q, self.ln_kv, self.ln_out = norm(), norm(), norm()
        self.q = nn.Linear(width, width, bias=False)
        self.k = nn.Linear(width, width, bias=False)
        self.v = nn.Linear(width, width, bias=False)
        self.out = nn.Linear(width, width)  # bias keeps PyTorch's default init
        self.mlp = nn.Sequential(nn.Linear(width, num_patches), QuickGELU(), nn.Linear(num_patches, num_patches))
        for lin in (self.q, self.k, self.v, self.out, self.mlp[0], self.mlp[2]):
            nn.init.trunc_normal_(lin.weight, std=0.02)
        nn.init.zeros_(self.mlp[0].bias)
        nn.init.zeros_(self.mlp[2].bias)

    def cross_attention(self, parts: Tensor, patches: Tensor) -> Tensor:
        """Multi-head cross-attention, parts [B, R, D] query patches [B, L, D] -> [B, R, D] (before ``out``)."""
        b, r, d = parts.shape
        h, c = self.num_heads, d // self.num_heads
        q = self.q(self.ln_q(parts)).view(b, r, h, c)
        z = self.ln_kv(patches)
        qk = torch.einsum("brhc,hcd->brhd", q, self.k.weight.view(h, c, d)).reshape(b, r * h, d)
        attn = (qk @ z.transpose(1, 2) * c ** -0.5).softmax(dim=-1)  # [B, R*h, L]
        ctx = (attn @ z).view(b, r, h, d)
        return torch.einsum("brhd,hcd->brhc", ctx, self.v.weight.view(h, c, d)).reshape(b, r, d)

    def forward(self, parts: Tensor, patches: Tensor) -> Tensor:
        """parts [B, R, D], patches [B, L, D] -> this block's logits S [B, R, L]."""
        u = self.out(self.cross_attention(parts, patches))
        if self.inner_shortcut:
            u = u + parts
        return self.mlp(self.ln_out(u))


@dataclass
class EncoderOutput:
    """What the image encoder returns. d = CLIP embedding size, D = ViT width, h = heads."""

    tokens: Tensor  # [B, 1+R, d] projected [CLS, parts]
    feat: Tensor  # [B, (1+R)*d] concatenated (pre-BN f)
    cls_hidden: Tensor  # [B, D] ln_post(CLS) before the projection (CLIP-ReID's 768-d feature)
    cls_penultimate: Tensor  # [B, D] CLS entering the last block (CLIP-ReID's third triplet feature)
    mask_logits: list[Tensor] = field(default_factory=list)  # per block accumulated A_i [B, R, L]
    attn_weights: list[Tensor] | None = None  # per block [B, h, T, T] when asked
    patch_tokens: Tensor | None = None  # [B, L, d] projected patches when asked
    hidden: list[Tensor] | None = None  # per asked block: its output's patch tokens [B, L, D] (pi-VL fusion)


class AMMSAEncoder(nn.Module):
    """CLIP ViT (open_clip ``VisionTransformer``) with R part tokens and adaptively masked attention.

    Built only from the public parameters of ``visual`` (``conv1``, ``class_embedding``,
    ``positional_embedding``, ``ln_pre``, ``transformer.resblocks``, ``ln_post``, ``proj``).
    """

    @classmethod
    def from_config(cls, visual: nn.Module, cfg: ModelCfg) -> AMMSAEncoder:
        """The encoder of the model slice ``cfg`` around ``visual`` (every AM-MSA field by name, so a new
        constructor argument cannot shift the others)."""
        return cls(visual, cfg.num_parts, part_token_init=cfg.part_token_init, part_token_std=cfg.part_token_std,
                   rmp_num_heads=cfg.rmp_num_heads, rmp_layernorm=cfg.rmp_layernorm,
                   rmp_inner_shortcut=cfg.rmp_inner_shortcut, sigmoid_tau=cfg.rmp_sigmoid_tau,
                   gating=cfg.gating, gate_thresh=cfg.gate_thresh, mask_max_value=cfg.mask_max_value)

    def __init__(self, visual: nn.Module, num_parts: int = 3, *, part_token_init: str = "random",
                 part_token_std: float = 0.02, rmp_num_heads: int = 2, rmp_layernorm: bool = True,
                 rmp_inner_shortcut: bool = True, sigmoid_tau: float = 1.0, gating: str = "offline",
                 gate_thresh: float = 0.5, mask_max_value: float = 0.0):
        super().__init__()
        if gating not in GATINGS:
            raise ValueError(f"gating={gating!r}; expected one of {GATINGS}")
        if part_token_init not in PART_TOKEN_INITS:
            raise ValueError(f"part_token_init={part_token_init!r}; expected one of {PART_TOKEN_INITS}")
        if num_parts < 0:
            raise ValueError(f"num_parts={num_parts} must be >= 0")
        if getattr(visual, "attn_pool", None) is not None or getattr(visual, "final_ln_after_pool", False) \
                or not isinstance(getattr(visual, "patch_dropout", None), nn.Identity) or visual.proj is None:
            raise TypeError("expected a plain CLIP ViT (no attention pooling, no patch dropout, with a projection)")
        for blk in visual.transformer.resblocks:
            check_block(blk)
        self.visual = visual
        self.num_parts = num_parts
        self.part_token_init = part_token_init
        self.sigmoid_tau = sigmoid_tau
        self.gating = gating
        self.gate_thresh = gate_thresh
        self.mask_max_value = mask_max_value
        width = self.width
        self.part_tokens: nn.Parameter | None
        self.part_pos_embed: nn.Parameter | None
        if num_parts and part_token_init != "patch_avg":
            init = (visual.class_embedding.detach().clone().expand(num_parts, -1).clone()
                    if part_token_init == "cls" else nn.init.trunc_normal_(torch.empty(num_parts, width),
                                                                           std=part_token_std))
            self.part_tokens = nn.Parameter(init.to(visual.class_embedding))
        else:
            self.register_parameter("part_tokens", None)
        if num_parts:  # part positional embeddings start as copies of CLS's
            pos0 = visual.positional_embedding.detach()[0]
            self.part_pos_embed = nn.Parameter(pos0.expand(num_parts, -1).clone())
        else:
            self.register_parameter("part_pos_embed", None)
        self.rmp = nn.ModuleList([
            ResidualMaskPredictor(width, self.num_patches, rmp_num_heads, rmp_layernorm, rmp_inner_shortcut)
            for _ in range(len(visual.transformer.resblocks) if num_parts else 0)]).to(visual.class_embedding)
        self.register_buffer("mask_base", template_base(num_parts, self.num_patches,
                                                        device=visual.class_embedding.device), persistent=False)

    # ------------------------------------------------------------------ sizes
    @property
    def width(self) -> int:
        return int(self.visual.class_embedding.shape[0])

    @property
    def grid_size(self) -> tuple[int, int]:
        return tuple(self.visual.grid_size)

    @property
    def num_patches(self) -> int:
        return self.grid_size[0] * self.grid_size[1]

    @property
    def num_tokens(self) -> int:
        return 1 + self.num_parts + self.num_patches

    @property
    def output_dim(self) -> int:
        return int(self.visual.proj.shape[1])

    @property
    def feat_dim(self) -> int:
        return (1 + self.num_parts) * self.output_dim

    # ------------------------------------------------------------------ pieces
    def _part_tokens(self, patches: Tensor) -> Tensor:
        """[B, L, D] patch embeddings -> [B, R, D] part tokens (shared, or per-image stripe means)."""
        if self.part_tokens is not None:
            return self.part_tokens.to(patches.dtype).expand(patches.shape[0], -1, -1)
        h, w = self.grid_size
        rows = patches.view(patches.shape[0], h, w, -1)
        return torch.stack([s.mean(dim=(1, 2)) for s in rows.tensor_split(self.num_parts, dim=1)], dim=1)

    def embed(self, images: Tensor) -> Tensor:
        """images [B, 3, H, W] -> ln_pre([CLS, parts, patches] + positions) [B, T, D]."""
        v = self.visual
        if tuple(images.shape[-2:]) != tuple(v.image_size):
            raise ValueError(f"input {tuple(images.shape[-2:])} does not match the encoder's image size "
                             f"{tuple(v.image_size)} (patch grid {self.grid_size})")
        patches = v.conv1(images).flatten(2).transpose(1, 2)  # [B, L, D]
        pos = v.positional_embedding.to(patches.dtype)
        cls = (v.class_embedding.to(patches.dtype) + pos[0]).expand(patches.shape[0], 1, -1)
        seq = [cls]
        if self.num_parts:
            seq.append(self._part_tokens(patches) + self.part_pos_embed.to(patches.dtype))
        seq.append(patches + pos[1:])
        return v.ln_pre(torch.cat(seq, dim=1))

    def mask_prob(self, logits: Tensor) -> Tensor:
        """Accumulated logits A [B, R, L] -> mask probability M = sigmoid(A / tau)."""
        return torch.sigmoid(logits / self.sigmoid_tau)

    def gate(self, logits: Tensor) -> Tensor:
        """A_i [B, R, L] -> additive gate G_i: offline 0 / -inf on a detached copy (M > thresh),
        online the soft (2M - 1) * m, none all zeros."""
        if self.gating == "none":
            return torch.zeros_like(logits).detach()
        prob = self.mask_prob(logits)
        if self.gating == "offline":
            return bool_to_additive(prob.detach() > self.gate_thresh, logits.dtype)
        return (2 * prob - 1) * self.mask_max_value

    # ------------------------------------------------------------------ forward
    def forward(self, images: Tensor, part_masks: Tensor | None = None, need_weights: bool = False,
                return_patches: bool = False, hidden_blocks: tuple[int, ...] = ()) -> EncoderOutput:
        """images [B, 3, H, W]; ``part_masks`` Bool[B, R, L] (True = patch inside part) = teacher forcing:
        the RMPs are skipped and that gate is used in every block. Otherwise each block's RMP predicts it.
        ``hidden_blocks``: 0-based blocks whose output patch tokens [B, L, D] are returned in ``hidden``."""
        r = self.num_parts
        x = self.embed(images)
        fixed_mask = None
        if part_masks is not None:
            if r == 0:
                raise ValueError("part_masks given to an encoder without part tokens (num_parts=0)")
            if tuple(part_masks.shape) != (x.shape[0], r, self.num_patches):
                raise ValueError(f"part_masks {tuple(part_masks.shape)}; expected "
                                 f"{(x.shape[0], r, self.num_patches)} (B, R, L) boolean")
            fixed_mask = part_patch_mask(bool_to_additive(part_masks, x.dtype), self.mask_base)
        blocks = self.visual.transformer.resblocks
        logits: Tensor | None = None
        mask_logits: list[Tensor] = []
        weights: list[Tensor] = []
        hidden: list[Tensor] = []
        penultimate = x[:, 0]
        for i, blk in enumerate(blocks):
            mask = fixed_mask
            if r and fixed_mask is None:
                s = self.rmp[i](x[:, 1:1 + r], x[:, 1 + r:])
                logits = s if logits is None else logits + s
                mask_logits.append(logits)
                mask = part_patch_mask(self.gate(logits), self.mask_base)
            if i == len(blocks) - 1:
                penultimate = x[:, 0]
            x, w = block_forward(blk, x, mask, need_weights)
            if need_weights:
                weights.append(w)
            if i in hidden_blocks:
                hidden.append(x[:, 1 + r:])
        head = self.visual.ln_post(x[:, :1 + r])
        tokens = head @ self.visual.proj
        patches = self.visual.ln_post(x[:, 1 + r:]) @ self.visual.proj if return_patches else None
        return EncoderOutput(tokens=tokens, feat=tokens.flatten(1), cls_hidden=head[:, 0],
                             cls_penultimate=penultimate, mask_logits=mask_logits,
                             attn_weights=weights if need_weights else None, patch_tokens=patches,
                             hidden=hidden if hidden_blocks else None)
