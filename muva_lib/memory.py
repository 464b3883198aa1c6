"""Prototype memories: visual (VPM-1, VPM-2) and textual (TPM) prototypes, and the hardest-positive momentum update."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["class_means", "visual_prototypes", "PrototypeMemory"]


def class_means(feats: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """Per-class mean of feats [M, F] with labels [M] in 0..N-1 -> [N, F] (fp32; a class without rows is 0)."""
    feats = feats.float()
    sums = torch.zeros(num_classes, feats.shape[1], dtype=feats.dtype, device=feats.device)
    sums.index_add_(0, labels.to(feats.device), feats)
    counts = torch.bincount(labels.to(feats.device), minlength=num_classes).clamp(min=1).to(feats.dtype)
    return sums / counts.unsqueeze(1)


def visual_prototypes(feats: Tensor, labels: Tensor, num_classes: int) -> Tensor:
    """VPM: L2-normalise(mean of feats over the images of each id) -> [N, F].

    VPM-1 takes the raw pre-BN features g; VPM-2 takes x = normalise(BN(f)) (spec 1.4, 1.5).
    """
    return F.normalize(class_means(feats, labels, num_classes), dim=1)


class PrototypeMemory:
    """VPM-2: a bank [N, F] of L2-normalised prototypes with the momentum update of spec 1.5.4.

    ``hard`` (default): for each id k in the batch, the sample j of id k with the LOWEST similarity
    <x_j, m_k> (hardest positive) updates m_k <- normalise(momentum * m_k + (1 - momentum) * x_j).
    Otherwise every sample updates its prototype in batch order (the sequential variant). The update
    replaces ``bank`` by a new tensor, so a loss computed before it keeps using the old memory.
    """

    def __init__(self, bank: Tensor, momentum: float = 0.2, hard: bool = True):
        self.bank = bank
        self.momentum = momentum
        self.hard = hard

    @classmethod
    def from_features(cls, feats: Tensor, labels: Tensor, num_classes: int, momentum: float = 0.2,
                      hard: bool = True) -> "PrototypeMemory":
        """Initialise from x [M, F] (normalised BN features of the whole training set) and labels [M]."""
        return cls(visual_prototypes(feats, labels, num_classes), momentum, hard)

    @torch.no_grad()
    def update(self, x: Tensor, labels: Tensor) -> None:
        """Move the prototypes of the ids in labels [B] towards x [B, F] (L2-normalised features)."""
        bank = self.bank.clone()
        x = x.detach().to(bank.dtype)
        m = self.momentum
        if self.hard:
            uniq, inverse = torch.unique(labels, return_inverse=True)
            sims = (x * bank[labels]).sum(1)  # [B] similarity of each sample to its own prototype
            table = torch.full((len(uniq), len(labels)), float("inf"), dtype=sims.dtype, device=sims.device)
            table[inverse, torch.arange(len(labels), device=labels.device)] = sims
            hardest = table.argmin(dim=1)  # per id: the sample farthest from its prototype
            bank[uniq] = F.normalize(m * bank[uniq] + (1 - m) * x[hardest], dim=1)
        else:
            for xi, y in zip(x, labels.tolist()):
                bank[y] = F.normalize(m * bank[y] + (1 - m) * xi, dim=0)
        self.bank = bank
