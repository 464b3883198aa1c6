"""Pure diagnostics of trained runs: text-to-prototype retrieval, memory statistics, mask IoU per layer, token attention, ranked lists."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .data.types import PARTS
from .memory import visual_prototypes

__all__ = ["granularity_names", "text_to_prototype_accuracy", "text_prototype_similarity", "memory_similarities",
           "memory_stats", "mask_iou", "mask_iou_per_layer", "token_attention", "ranked_gallery", "decreased"]


def granularity_names(num_tokens: int, parts: Sequence[str] = PARTS) -> list[str]:
    """Names of the 1 + R token / prompt slices: ``global`` then the parts (``head``, ``upper``, ``legs``)."""
    if not 1 <= num_tokens <= 1 + len(parts):
        raise ValueError(f"{num_tokens} tokens; expected 1 to {1 + len(parts)} (global + parts)")
    return ["global", *parts[:num_tokens - 1]]


def _slices(text: Tensor, feats: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, int]:
    """Check shapes: text [N, G, d], feats [M, G*d], labels [M] -> (text fp32, feats [M, G, d] fp32, G)."""
    if text.ndim != 3:
        raise ValueError(f"text features must be [N, G, d], got {tuple(text.shape)}")
    n, g, d = text.shape
    if feats.ndim != 2 or feats.shape[1] != g * d or len(labels) != len(feats):
        raise ValueError(f"feats {tuple(feats.shape)} / labels {tuple(labels.shape)} do not fit text "
                         f"{tuple(text.shape)}: expected feats [M, {g * d}] and labels [M]")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= n):
        raise ValueError(f"labels must lie in 0..{n - 1}")
    return text.float(), feats.float().view(len(feats), g, d), g


def text_prototype_similarity(text: Tensor, feats: Tensor, labels: Tensor) -> Tensor:
    """Cosine similarity of every identity's text feature to every visual prototype, per granularity.

    text [N, G, d] (one prompt per granularity), feats [M, G*d] (image features, the G token slices
    concatenated), labels [M] in 0..N-1 -> [G, N, N] (row: text of id i, column: prototype of id j;
    a prototype is the L2-normalised mean of the id's image slices, as VPM-1)."""
    text, feats, g = _slices(text, feats, labels)
    n = text.shape[0]
    out = []
    for s in range(g):
        protos = visual_prototypes(feats[:, s], labels.to(feats.device), n)  # [N, d]
        out.append(F.normalize(text[:, s], dim=1) @ protos.t())
    return torch.stack(out)


def text_to_prototype_accuracy(text: Tensor, feats: Tensor, labels: Tensor,
                               names: Sequence[str] | None = None) -> dict[str, float]:
    """For each granularity g: the fraction of identities (those with at least one image) whose text
    feature of granularity g is nearest (cosine) to its own visual prototype slice g.

    Shapes as :func:`text_prototype_similarity`; ``names`` default to :func:`granularity_names`.
    Chance level is 1 / (number of identities)."""
    sim = text_prototype_similarity(text, feats, labels)
    names = list(names) if names is not None else granularity_names(sim.shape[0])
    present = torch.unique(labels.to(sim.device))
    sim = sim[:, present][:, :, present]  # ids without images have no prototype
    hits = sim.argmax(dim=2) == torch.arange(len(present), device=sim.device)
    return {name: float(h.float().mean()) for name, h in zip(names, hits)}


def memory_similarities(bank: Tensor, x: Tensor, labels: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: cosine similarity to its own prototype and to the most similar other prototype.

    bank [N, F] (L2-normalised prototypes), x [M, F] (L2-normalised features), labels [M] ->
    (own [M], nearest other [M]) as float64 NumPy arrays (needs N >= 2)."""
    if bank.ndim != 2 or x.ndim != 2 or bank.shape[1] != x.shape[1] or len(labels) != len(x):
        raise ValueError(f"bank {tuple(bank.shape)}, x {tuple(x.shape)}, labels {tuple(labels.shape)}: "
                         "expected [N, F], [M, F], [M]")
    if bank.shape[0] < 2:
        raise ValueError("memory statistics need at least two prototypes")
    sims = x.double() @ bank.double().t()  # [M, N]
    idx = labels.long().to(sims.device)
    own = sims.gather(1, idx[:, None]).squeeze(1)
    other = sims.scatter(1, idx[:, None], float("-inf")).max(dim=1).values
    return own.cpu().numpy(), other.cpu().numpy()


def memory_stats(bank: Tensor, x: Tensor, labels: Tensor) -> dict[str, float]:
    """Summary of a prototype memory against the features it was built from (shapes as
    :func:`memory_similarities`): mean similarity to the own prototype (``own_sim``), mean of each
    id's hardest (lowest) own similarity (``hardest_own_sim``), mean similarity to the nearest other
    prototype (``other_sim``), the fraction of samples nearest to their own prototype
    (``nearest_own``), and the mean cosine similarity between distinct prototypes (``proto_sim``)."""
    own, other = memory_similarities(bank, x, labels)
    lab = labels.cpu().numpy()
    hardest = [own[lab == k].min() for k in np.unique(lab)]
    b = F.normalize(bank.double(), dim=1)
    gram = (b @ b.t()).cpu().numpy()
    n = len(gram)
    return {"own_sim": float(own.mean()), "hardest_own_sim": float(np.mean(hardest)),
            "other_sim": float(other.mean()), "nearest_own": float((own > other).mean()),
            "proto_sim": float((gram.sum() - np.trace(gram)) / (n * (n - 1)))}


def mask_iou(pred: Tensor, target: Tensor) -> Tensor:
    """IoU of boolean masks pred, target [..., L] over the last axis -> [...] (both empty: 1)."""
    pred, target = pred.bool(), target.bool()
    inter = (pred & target).sum(-1).double()
    union = (pred | target).sum(-1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def mask_iou_per_layer(mask_logits: Sequence[Tensor], target: Tensor, tau: float = 1.0, thresh: float = 0.5
                       ) -> np.ndarray:
    """Mean IoU over images of each block's predicted mask (sigmoid(A_i / tau) > thresh, as the offline
    gate) with the VGE mask: mask_logits = per block [B, R, L], target Bool[B, R, L] -> [blocks, R]."""
    if not mask_logits:
        raise ValueError("no mask logits (a model without part tokens?)")
    rows = []
    for logits in mask_logits:
        if logits.shape != target.shape:
            raise ValueError(f"mask logits {tuple(logits.shape)} vs target {tuple(target.shape)}")
        rows.append(mask_iou(torch.sigmoid(logits.float() / tau) > thresh, target).mean(0))
    return torch.stack(rows).cpu().numpy()


def token_attention(attn: Tensor, num_parts: int, grid_hw: tuple[int, int]) -> Tensor:
    """Attention of the CLS and part tokens over the patches, averaged over heads and renormalised
    over the patches: attn [B, h, T, T] (T = 1 + R + L, rows are queries) -> [B, 1 + R, gh, gw]."""
    gh, gw = grid_hw
    b, _, t, t2 = attn.shape
    if t != t2 or t != 1 + num_parts + gh * gw:
        raise ValueError(f"attention {tuple(attn.shape)} does not fit 1 + {num_parts} parts + {gh}x{gw} patches")
    rows = attn.float().mean(1)[:, :1 + num_parts, 1 + num_parts:]  # [B, 1+R, L]
    rows = rows / rows.sum(-1, keepdim=True).clamp(min=1e-12)
    return rows.reshape(b, 1 + num_parts, gh, gw)


def ranked_gallery(dist: Any, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any, topk: int = 10
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Each query's top-``topk`` gallery items under the Market rule (same id AND same camera removed,
    as the evaluator does; ties by gallery index): dist [Q, G] -> (indices [Q, k] into the gallery,
    -1 where the list is shorter; true match [Q, k] bool)."""
    dist = np.asarray(dist, dtype=np.float64)
    qp, gp, qc, gc = (np.asarray(a).astype(np.int64) for a in (q_pids, g_pids, q_camids, g_camids))
    if dist.shape != (len(qp), len(gp)) or len(qc) != len(qp) or len(gc) != len(gp):
        raise ValueError(f"dist {dist.shape} does not fit {len(qp)} queries x {len(gp)} gallery items")
    idx = np.full((len(qp), topk), -1, np.int64)
    match = np.zeros((len(qp), topk), bool)
    for i in range(len(qp)):
        order = np.argsort(dist[i], kind="stable")
        keep = order[~((gp[order] == qp[i]) & (gc[order] == qc[i]))][:topk]
        idx[i, :len(keep)] = keep
        match[i, :len(keep)] = gp[keep] == qp[i]
    return idx, match


def decreased(rows: Sequence[Mapping[str, Any]], key: str = "loss") -> bool:
    """Did ``key`` end lower than it started over the epoch rows (``logs/<stage>.csv``)?"""
    values = [float(r[key]) for r in rows if key in r]
    if len(values) < 2:
        raise ValueError(f"need at least two epochs with {key!r}, got {len(values)}")
    return values[-1] < values[0]
