"""Per-identity learnable prompts (CLIP-ReID global, MUVA multi-grained, pi-VL part-informed) and the frozen CLIP
text encoder."""
from __future__ import annotations

from typing import Sequence

import open_clip
import torch
from torch import Tensor, nn

from ..data.types import PARTS

__all__ = ["PLACEHOLDER", "CLIPREID_TEMPLATE", "MUVA_TEMPLATES", "PART_AGNOSTIC_TEMPLATE", "TEMPLATE_TYPES",
           "PART_TEMPLATE", "build_templates", "part_templates", "TextEncoder", "PromptLearner", "PartPromptLearner",
           "encode_part_text"]

#: the word standing for one learnable context vector in a template
PLACEHOLDER = "X"
#: CLIP-ReID (peers.md 2.1): one global prompt per identity
CLIPREID_TEMPLATE = "A photo of a {ctx} person."
#: MUVA (muva_spec.md 1.3): global + one prompt per part, in the order of the part tokens
MUVA_TEMPLATES: dict[str, str] = {
    "global": "A photo of a {ctx} person",
    "head": "A photo of a {ctx} head of a person",
    "upper": "A photo of a {ctx} upper body of a person",
    "legs": "A photo of a {ctx} legs of a person",
}
#: MUVA ablation MGD.TEMPLATE_TYPE=part-agnostic: the same words for every granularity
PART_AGNOSTIC_TEMPLATE = "A photo of a {ctx}"
TEMPLATE_TYPES = ("multi-grained", "part-agnostic")
#: pi-VL (ours, the paper's wording is lost): CLIP-ReID's identity prompt followed by a parsing part name
PART_TEMPLATE = "A photo of a {ctx} person, {part}."


def build_templates(num_parts: int, template_type: str = "multi-grained", domain_context: str = "",
                    ctx_num: int = 4, parts: Sequence[str] = PARTS) -> list[str]:
    """The 1 + R prompt strings, with ``ctx_num`` placeholders each.

    ``num_parts=0``: CLIP-ReID's "A photo of a X X X X person."; otherwise MUVA's global + head / upper
    body / legs. ``part-agnostic``: "A photo of a X X X X" for all. ``domain_context`` appends ", <text>"
    (before a final full stop).
    """
    if template_type not in TEMPLATE_TYPES:
        raise ValueError(f"template_type={template_type!r}; expected one of {TEMPLATE_TYPES}")
    if num_parts > len(parts):
        raise ValueError(f"num_parts={num_parts} but only {len(parts)} part names ({', '.join(parts)})")
    if template_type == "part-agnostic":
        raw = [PART_AGNOSTIC_TEMPLATE] * (1 + num_parts)
    elif num_parts == 0:
        raw = [CLIPREID_TEMPLATE]
    else:
        raw = [MUVA_TEMPLATES["global"]] + [MUVA_TEMPLATES[p] for p in parts[:num_parts]]
    ctx = " ".join([PLACEHOLDER] * ctx_num)
    out = []
    for t in raw:
        t = t.format(ctx=ctx)
        if domain_context:
            t = f"{t[:-1]}, {domain_context}." if t.endswith(".") else f"{t}, {domain_context}"
        out.append(t)
    return out


def part_templates(part_words: Sequence[str], ctx_num: int = 4) -> list[str]:
    """One :data:`PART_TEMPLATE` per part word: "A photo of a X X X X person, upper body." ..."""
    ctx = " ".join([PLACEHOLDER] * ctx_num)
    return [PART_TEMPLATE.format(ctx=ctx, part=w) for w in part_words]


class TextEncoder(nn.Module):
    """The CLIP text transformer, frozen: prompt embeddings [N, n, w] + EOT index [N] -> features [N, d]."""

    def __init__(self, clip: nn.Module):
        super().__init__()
        if getattr(clip, "text_pool_type", "argmax") != "argmax":
            raise TypeError("expected a CLIP text tower pooled at the EOT token (argmax)")
        self.token_embedding = clip.token_embedding
        self.positional_embedding = clip.positional_embedding
        self.transformer = clip.transformer
        self.ln_final = clip.ln_final
        self.text_projection = clip.text_projection
        self.register_buffer("attn_mask", clip.attn_mask, persistent=False)  # causal, additive float
        self.requires_grad_(False)

    @property
    def context_length(self) -> int:
        return int(self.positional_embedding.shape[0])

    @property
    def width(self) -> int:
        return int(self.positional_embedding.shape[1])

    @torch.no_grad()
    def embed_tokens(self, token_ids: Tensor) -> Tensor:
        """Token ids [N, n] -> fixed token embeddings [N, n, w] (no gradient)."""
        return self.token_embedding(token_ids)

    def forward(self, prompts: Tensor, eot_index: Tensor) -> Tensor:
        """prompts [N, n, w] (token embeddings with learned context spliced in), eot_index [N] -> [N, d]."""
        dtype = self.transformer.get_cast_dtype()
        x = prompts.to(dtype) + self.positional_embedding.to(dtype)
        x = self.ln_final(self.transformer(x, attn_mask=self.attn_mask))
        x = x[torch.arange(x.shape[0], device=x.device), eot_index]
        proj = self.text_projection
        return proj(x) if isinstance(proj, nn.Linear) else x @ proj


def _placeholder_start(ids: Tensor, ctx_num: int) -> int:
    """Position of the first run of ``ctx_num`` placeholder tokens, the same in every template."""
    x_id = int(open_clip.tokenize([PLACEHOLDER])[0, 1])
    starts = set()
    for row in ids.tolist():
        hit = next((i for i in range(len(row) - ctx_num + 1) if row[i:i + ctx_num] == [x_id] * ctx_num), None)
        if hit is None:
            raise ValueError(f"a template has no run of {ctx_num} {PLACEHOLDER!r} placeholders")
        starts.add(hit)
    if len(starts) != 1:
        raise ValueError(f"placeholders start at different positions {sorted(starts)}; templates must share a prefix")
    return starts.pop()


class _Templates(nn.Module):
    """Fixed templates with a run of ``ctx_num`` placeholders: token embeddings around it as buffers
    ``prefix`` [P, s, w] and ``suffix`` [P, n - s - ctx_num, w], ``token_ids`` [P, n], ``eot_index`` [P].
    Computed once with the text encoder's frozen token embedding; ``text_encoder`` is used, not stored."""

    def __init__(self, templates: Sequence[str], text_encoder: TextEncoder, ctx_num: int):
        super().__init__()
        n = text_encoder.context_length
        lengths = [len(r) for r in _token_lists(templates)]
        if max(lengths) > n:
            raise ValueError(f"a prompt needs {max(lengths)} tokens but the text context is {n}: {list(templates)}")
        ids = open_clip.tokenize(list(templates), context_length=n)
        start = _placeholder_start(ids, ctx_num)
        device = text_encoder.positional_embedding.device
        emb = text_encoder.embed_tokens(ids.to(device))
        self.templates = list(templates)
        self.register_buffer("token_ids", ids.to(device))
        self.register_buffer("eot_index", ids.argmax(dim=-1).to(device))
        self.register_buffer("prefix", emb[:, :start].clone())
        self.register_buffer("suffix", emb[:, start + ctx_num:].clone())

    def splice(self, ctx: Tensor) -> Tensor:
        """Context [B, P, ctx_num, w] -> prompt embeddings [B, P, n, w]."""
        b = ctx.shape[0]
        return torch.cat([self.prefix.expand(b, -1, -1, -1), ctx, self.suffix.expand(b, -1, -1, -1)], dim=2)


class PromptLearner(_Templates):
    """Learnable context [N ids, P prompts, ctx_num, w] spliced into P fixed templates.

    The templates' token embeddings are computed once here, with the text encoder's (frozen) token
    embedding, and kept as buffers ``prefix`` [P, s, w] and ``suffix`` [P, n - s - ctx_num, w]; the
    forward only indexes the context and concatenates. ``text_encoder`` is used, not stored.
    """

    def __init__(self, num_ids: int, templates: Sequence[str], text_encoder: TextEncoder, ctx_num: int = 4,
                 init_std: float = 0.002):
        super().__init__(templates, text_encoder, ctx_num)
        self.ctx = nn.Parameter(torch.randn(num_ids, len(templates), ctx_num, text_encoder.width,
                                            device=self.prefix.device, dtype=self.prefix.dtype) * init_std)

    @property
    def num_prompts(self) -> int:
        return int(self.ctx.shape[1])

    def forward(self, labels: Tensor) -> Tensor:
        """labels [B] -> prompt embeddings [B, P, n, w]."""
        return self.splice(self.ctx[labels])


class PartPromptLearner(_Templates):
    """pi-VL's part-informed prompts: one :data:`PART_TEMPLATE` per part class (P parts, background excluded).

    ``identity=True`` (identity-aware, the paper's): the context is an identity's learned CLIP-ReID context
    (``PromptLearner.ctx[y, 0]``), so the part prompts of identity y are "A photo of a <y's tokens> person,
    head." ...; this module then has no parameter of its own. ``identity=False`` (the parsing-label-prompt
    ablation): a context [P, ctx_num, w] of its own, shared by every identity.
    """

    def __init__(self, part_words: Sequence[str], text_encoder: TextEncoder, ctx_num: int = 4,
                 identity: bool = True, init_std: float = 0.02):
        super().__init__(part_templates(part_words, ctx_num), text_encoder, ctx_num)
        self.identity = identity
        self.ctx: nn.Parameter | None = None
        if not identity:
            self.ctx = nn.Parameter(torch.randn(len(part_words), ctx_num, text_encoder.width,
                                                device=self.prefix.device, dtype=self.prefix.dtype) * init_std)

    @property
    def num_parts(self) -> int:
        return int(self.prefix.shape[0])

    def forward(self, id_ctx: Tensor | None = None) -> Tensor:
        """Identity contexts [U, ctx_num, w] -> prompt embeddings [U, P, n, w] (identity-aware); shared: no
        argument (or one that is ignored) -> [1, P, n, w]."""
        if not self.identity:
            return self.splice(self.ctx.unsqueeze(0))
        if id_ctx is None:
            raise ValueError("identity-aware part prompts need the identities' context [U, ctx_num, w]")
        return self.splice(id_ctx.unsqueeze(1).expand(-1, self.num_parts, -1, -1))


def encode_part_text(part_prompts: PartPromptLearner, prompt_learner: PromptLearner, text_encoder: TextEncoder,
                     labels: Tensor | None) -> Tensor:
    """Text features of the part prompts: distinct identity labels [U] -> [U, P, d] (identity-aware; the
    gradient reaches ``prompt_learner.ctx``), or [1, P, d] for shared prompts (labels ignored)."""
    id_ctx = None
    if part_prompts.identity:
        if labels is None:
            raise ValueError("identity-aware part prompts need identity labels")
        id_ctx = prompt_learner.ctx[labels, 0]
    prompts = part_prompts(id_ctx)
    u, p = prompts.shape[:2]
    return text_encoder(prompts.flatten(0, 1), part_prompts.eot_index.repeat(u)).view(u, p, -1)


def _token_lists(texts: Sequence[str]) -> list[list[int]]:
    """Token ids with SOT/EOT but no padding (to check a template fits the context)."""
    ids = open_clip.tokenize(list(texts), context_length=1024)
    return [[t for t in row if t] for row in ids.tolist()]
