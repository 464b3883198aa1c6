"""The hooks through which a method adds to the shared stages of :mod:`muva_lib.train`.

:class:`TrainingExtras` adds nothing; a recipe whose run needs more (pi-VL: parsing maps, part prompts,
a fusion head and a part phase in stage 1) returns a subclass from ``Recipe.training_extras(cfg)``.
The stages call the hooks in the order listed; ``setup`` is the run's ``muva_lib.train.TrainSetup``
(``cfg``, ``model``, ``device``, ``data``, ``parsing``, ``aux``, ``features(...)``).
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from torch import Tensor, nn

from .step import StepOutput

__all__ = ["TrainingExtras", "IdentityPhase"]


class TrainingExtras:
    """No extras: every hook leaves the shared stage as it is."""

    # ---- set-up
    def prepare(self, cfg: Any, items: Sequence[Any], device: Any, *, dist: Any, progress: bool,
                barrier: Callable[[], None]) -> Any:
        """Before the model is seeded: inputs the method needs (returned as ``setup.parsing``)."""
        return None

    def build_aux(self, cfg: Any, model: nn.Module, device: Any) -> nn.Module | None:
        """After the model: training-only modules beside it (``setup.aux``, saved in ``last.pt``)."""
        return None

    def aux_state(self, aux: nn.Module | None) -> Mapping[str, Any]:
        """``extra`` for ``last.pt``."""
        return {}

    def load_aux_state(self, aux: nn.Module | None, extra: Mapping[str, Any]) -> None:
        """Put :meth:`aux_state`'s tensors back on resume."""

    # ---- stage 1
    def stage1_weights(self, cfg: Any, epoch: int) -> dict[str, float] | None:
        """The loss terms of a stage-1 epoch the method owns (after the identity epochs), else None."""
        return None

    def stage1_start(self, setup: Any) -> None:
        """Before the prototypes and the optimiser (e.g. a cache of its own)."""

    def stage1_groups(self, setup: Any, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The stage-1 Adam groups, with the method's own appended."""
        return groups

    def stage1_step(self, setup: Any, weights: Mapping[str, float]) -> Callable[[Tensor], StepOutput] | None:
        """The step of an epoch whose loss terms (``weights``) the method owns, else None."""
        return None

    # ---- stage 2
    def stage2_terms(self, cfg: Any) -> dict[str, float]:
        """The method's own stage-2 loss terms and weights (appended after the shared ones)."""
        return {}

    def stage2_start(self, setup: Any, weights: Mapping[str, float]) -> None:
        """After the text memory, before the parameters are frozen (frozen targets, checks)."""

    def stage2_groups(self, setup: Any, weights: Mapping[str, float]) -> list[dict[str, Any]]:
        """Adam groups to append to the shared stage-2 groups."""
        return []

    def stage2_loader_kwargs(self, setup: Any) -> dict[str, Any]:
        """Extra keyword arguments of ``make_train_loader`` (per-image targets of the method)."""
        return {}

    def stage2_wrap(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        """Under DDP: wrap the method's trained modules with ``wrap``."""

    def stage2_hidden_blocks(self) -> tuple[int, ...]:
        """Blocks whose patch tokens the forward must return (``out.hidden``)."""
        return ()

    def stage2_train(self) -> None:
        """At the start of every epoch, after ``model.train()``."""

    def stage2_losses(self, setup: Any, out: Any, batch: Mapping[str, Any], labels: Tensor,
                      weights: Mapping[str, float]) -> dict[str, Tensor]:
        """The method's own unweighted loss terms of one batch."""
        return {}


class IdentityPhase:
    """Stage 1's identity epochs for one ``stage1.loss``: the batches over the feature cache, the
    prototypes the loss needs (None: none) and the step. A recipe names its phase (``Recipe.stage1_identity``)."""

    loss: str = ""
    terms: Mapping[str, float] = {}

    def sampler(self, cfg: Any, labels: Tensor, salt: int) -> Any:
        """A sampler over the cache rows of ``labels`` [M]: batches of ``stage1.batch_size``."""
        raise NotImplementedError

    def prototypes(self, feats: Tensor, labels: Tensor, num_classes: int) -> Tensor | None:
        """Prototypes [N, F] of the cached features [M, F] (labels [M]), or None."""
        return None

    def step(self, model: Any, cache: Any, prototypes: Tensor | None, cfg: Any, idx: Tensor) -> StepOutput:
        """The loss terms of one batch of cache indices ``idx`` [B]."""
        raise NotImplementedError
