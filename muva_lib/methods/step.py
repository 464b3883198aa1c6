"""What one training step returns (shared by the stages in :mod:`muva_lib.train` and the recipes' own steps)."""
from __future__ import annotations

from dataclasses import dataclass, field

from torch import Tensor

__all__ = ["StepOutput"]


@dataclass
class StepOutput:
    """What a stage's step returns: named loss terms (unweighted scalars), extra metrics (not summed),
    and the number of samples (for averaging)."""

    losses: dict[str, Tensor]
    metrics: dict[str, float | Tensor] = field(default_factory=dict)
    size: int = 1
