"""Pure loss functions of both training stages (muva_spec.md 1.4-1.7, peers.md 2.2-2.3): tensors in, a scalar out.

Every function computes in fp32 whatever the autocast dtype of its inputs, takes its hyper-parameters
as arguments (no config object) and keeps no state; the memory update lives in :mod:`muva_lib.memory`.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["label_smoothed_ce", "pairwise_euclidean", "triplet_hard", "cluster_nce", "supcon", "i2t_ce",
           "memory_ce", "mask_bce", "mask_dice", "mask_mse", "dense_part_nce", "part_fusion_mse", "DICE_SMOOTH"]

#: Dice smoothing on raw counts (the official code divides the sums by 1000 and adds 1e-6: the same)
DICE_SMOOTH = 1e-3


def label_smoothed_ce(logits: Tensor, targets: Tensor, epsilon: float = 0.1) -> Tensor:
    """Cross-entropy with label smoothing: logits [B, N], targets [B] -> mean over B.

    The target distribution is ``(1 - eps) * onehot + eps / N`` (CLIP-ReID's CrossEntropyLabelSmooth).
    """
    logp = F.log_softmax(logits.float(), dim=1)
    nll = -logp.gather(1, targets.view(-1, 1)).squeeze(1)
    return ((1 - epsilon) * nll - epsilon * logp.mean(dim=1)).mean()


def pairwise_euclidean(a: Tensor, b: Tensor) -> Tensor:
    """Euclidean distances [M, N] between rows of a [M, F] and b [N, F] (clamped at 1e-12 before the root)."""
    a, b = a.float(), b.float()
    d2 = a.pow(2).sum(1, keepdim=True) + b.pow(2).sum(1).unsqueeze(0) - 2 * a @ b.t()
    return d2.clamp(min=1e-12).sqrt()


def triplet_hard(feats: Tensor, labels: Tensor, margin: float = 0.3) -> Tensor:
    """Batch-hard triplet loss: feats [B, F], labels [B] -> mean over anchors of
    ``max(0, d(a, hardest positive) - d(a, hardest negative) + margin)``, Euclidean, features as given.

    Anchors with no positive other than themselves use d(a, a) ~ 1e-6; anchors with no negative are
    dropped (a batch of one identity gives 0).
    """
    dist = pairwise_euclidean(feats, feats)
    same = labels.view(-1, 1) == labels.view(1, -1)
    d_ap = dist.masked_fill(~same, float("-inf")).amax(dim=1)
    d_an = dist.masked_fill(same, float("inf")).amin(dim=1)
    ok = torch.isfinite(d_an)
    if not ok.any():
        return dist.sum() * 0
    return F.relu(d_ap[ok] - d_an[ok] + margin).mean()


def cluster_nce(text: Tensor, prototypes: Tensor, labels: Tensor, temperature: float = 1.0) -> Tensor:
    """MUVA stage 1 (L_cmp): CE over N of <normalise(text_b), c_k> / T.

    text [B, F] (un-normalised text features), prototypes [N, F] (L2-normalised VPM-1), labels [B].
    """
    logits = F.normalize(text.float(), dim=1) @ prototypes.float().t() / temperature
    return F.cross_entropy(logits, labels)


def supcon(anchors: Tensor, contrast: Tensor, anchor_labels: Tensor, contrast_labels: Tensor,
           temperature: float = 1.0) -> Tensor:
    """Supervised contrastive loss (CLIP-ReID stage 1), one direction: anchors [B, F] against contrast
    [M, F], raw dot products / T, positives = same label. Mean over anchors of
    ``-mean_{p in P(a)} log softmax_m(<a, c_m> / T)[p]``; every anchor needs at least one positive.
    """
    logits = anchors.float() @ contrast.float().t() / temperature
    pos = (anchor_labels.view(-1, 1) == contrast_labels.view(1, -1)).float()
    log_prob = F.log_softmax(logits, dim=1)
    return -((pos * log_prob).sum(1) / pos.sum(1)).mean()


def i2t_ce(feats: Tensor, text_memory: Tensor, labels: Tensor, tau: float = 1.0, epsilon: float = 0.1) -> Tensor:
    """Image-to-text CE against the frozen text features of every identity: label-smoothed CE of
    ``feats @ text_memory.T / tau``; feats [B, F] pre-BN, text_memory [N, F], both un-normalised."""
    return label_smoothed_ce(feats.float() @ text_memory.float().t() / tau, labels, epsilon)


def memory_ce(x: Tensor, memory: Tensor, labels: Tensor, temperature: float = 0.01) -> Tensor:
    """Prototype memory loss (MUVA L_imp): CE over N of <x_b, m_k> / T.

    x [B, F] L2-normalised BN features, memory [N, F] L2-normalised (VPM-2), labels [B]. The memory is a
    constant here: the gradient w.r.t. x is (dL/dlogits) M / T with the memory before any update.
    """
    return F.cross_entropy(x.float() @ memory.float().detach().t() / temperature, labels)


def _layers(mask_logits: Sequence[Tensor] | Tensor) -> Tensor:
    """Per-layer logits (list of [B, R, L] or one [Lyr, B, R, L]) -> [Lyr, B, R, L] fp32."""
    if isinstance(mask_logits, Tensor):
        return mask_logits.float() if mask_logits.dim() == 4 else mask_logits.float().unsqueeze(0)
    return torch.stack([m.float() for m in mask_logits])


def mask_bce(mask_logits: Sequence[Tensor] | Tensor, target: Tensor, tau: float = 1.0) -> Tensor:
    """BCE with logits, mean over every (layer, b, r, l): logits A_i [B, R, L] per layer, target [B, R, L]
    (bool or {0, 1}; the same VGE mask for every layer); no positive weighting (spec 1.6)."""
    a = _layers(mask_logits) / tau
    return F.binary_cross_entropy_with_logits(a, target.float().expand_as(a))


def mask_dice(mask_logits: Sequence[Tensor] | Tensor, target: Tensor, tau: float = 1.0,
              smooth: float = DICE_SMOOTH) -> Tensor:
    """1 - mean Dice over every (layer, b, r) row, M = sigmoid(A / tau), sums over the L patches on raw
    counts: ``(2 sum MT + e) / (sum M + sum T + e)``. An empty target row with an empty prediction scores 1."""
    m = torch.sigmoid(_layers(mask_logits) / tau)
    t = target.float().expand_as(m)
    dice = (2 * (m * t).sum(-1) + smooth) / (m.sum(-1) + t.sum(-1) + smooth)
    return 1 - dice.mean()


def mask_mse(mask_logits: Sequence[Tensor] | Tensor, target: Tensor, tau: float = 1.0) -> Tensor:
    """The MSE alternative (``stage2.mask_loss=mse``): mean over every layer of (sigmoid(A / tau) - T)^2."""
    m = torch.sigmoid(_layers(mask_logits) / tau)
    return (m - target.float().expand_as(m)).pow(2).mean()


def dense_part_nce(patches: Tensor, part_labels: Tensor, text: Tensor, text_ids: Tensor,
                   temperature: float = 0.07) -> Tensor:
    """pi-VL's dense (patch-level) InfoNCE of part-informed prompt tuning.

    patches [B, L, d] (frozen patch features in the text space), part_labels [B, L] (0 = background,
    ignored; p in 1..P = part class p), text [U, P, d] (part-prompt features of the U identities of the
    batch; U = 1 for prompts shared by all identities), text_ids [B] (row of ``text`` of each image).
    Every (image b, patch l) with p > 0 is an anchor: its positive is ``text[text_ids[b], p - 1]``, its
    negatives the other U * P - 1 texts. Logits are cosine similarities / temperature; the loss is the
    mean CE over anchors (0 when the batch has no part patch).
    """
    u, p, d = text.shape
    valid = part_labels > 0
    if not valid.any():
        return patches.sum() * 0 + text.sum() * 0
    anchors = F.normalize(patches.float()[valid], dim=-1)  # [A, d]
    cands = F.normalize(text.float().reshape(u * p, d), dim=-1)  # [U*P, d]
    b_idx = valid.nonzero()[:, 0]
    target = text_ids.to(b_idx.device)[b_idx] * p + part_labels[valid].long() - 1
    return F.cross_entropy(anchors @ cands.t() / temperature, target)


def part_fusion_mse(fused: Tensor, part_labels: Tensor, text: Tensor, text_ids: Tensor,
                    normalize: bool = True) -> Tensor:
    """pi-VL's hierarchical alignment: squared distance between fused image features and the part text of
    each location's parsing label, mean over the non-background locations.

    fused [B, L, d] (fusion-head features per location), part_labels [B, L] (0 = background, excluded),
    text [N, P, d] frozen part-prompt features (N identities, or 1 shared), text_ids [B] (row of ``text``
    of each image). ``normalize``: L2-normalise both sides first (ours: scale-free). The distance is summed
    over the d channels (the MSE times d, so the weight does not shrink with the width).
    """
    valid = part_labels > 0
    if not valid.any():
        return fused.sum() * 0
    f = fused.float()[valid]  # [A, d]
    b_idx = valid.nonzero()[:, 0]
    t = text.float()[text_ids.to(b_idx.device)[b_idx], part_labels[valid].long() - 1].detach()  # [A, d]
    if normalize:
        f, t = F.normalize(f, dim=-1), F.normalize(t, dim=-1)
    return (f - t).pow(2).sum(-1).mean()
