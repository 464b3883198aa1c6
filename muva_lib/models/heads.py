"""Re-ID heads on the concatenated feature: BNNeck (bias frozen) and the bias-free ID classifier."""
from __future__ import annotations

from torch import nn

__all__ = ["BNNeck", "IdClassifier"]


class BNNeck(nn.BatchNorm1d):
    """BatchNorm1d over the [B, F] feature; weight 1, bias 0 and frozen (``requires_grad=False``)."""

    def __init__(self, dim: int):
        super().__init__(dim)
        nn.init.ones_(self.weight)
        nn.init.zeros_(self.bias)
        self.bias.requires_grad_(False)


class IdClassifier(nn.Linear):
    """Linear(F -> N identities) without bias, weights normal with std 0.001."""

    def __init__(self, dim: int, num_classes: int, std: float = 0.001):
        super().__init__(dim, num_classes, bias=False)
        nn.init.normal_(self.weight, std=std)
