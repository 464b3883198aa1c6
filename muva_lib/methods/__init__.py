"""One home per method: a recipe module each, registered here in table order.

``clipreid`` is the base recipe; ``muva`` and ``pivl`` build on it (subclasses), each written as its
difference from CLIP-ReID. :mod:`muva_lib.config` resolves a method through :func:`get`. Adding a
method: one module with a :class:`Recipe` subclass, registered below, plus its tests. Behaviour the
shared stages of :mod:`muva_lib.train` need from a method comes through hooks, never ``if`` branches
there: :class:`IdentityPhase` (stage 1's loss, by ``stage1.loss``) and :class:`TrainingExtras` (set-up,
aux modules, extra epochs, Adam groups, loss terms, resume state).
"""
from __future__ import annotations

from typing import Any

from .clipreid import ClipReid
from .extras import IdentityPhase, TrainingExtras
from .muva import Muva
from .pivl import Pivl
from .registry import Recipe, get, names, recipes, register

# table order (the first is the default method)
for _recipe in (Muva, ClipReid, Pivl):
    register(_recipe)

__all__ = ["Recipe", "register", "get", "names", "recipes", "training_extras", "identity_phase", "TrainingExtras",
           "IdentityPhase", "ClipReid", "Muva", "Pivl"]


def training_extras(cfg: Any) -> Any:
    """The hooks (:class:`muva_lib.methods.extras.TrainingExtras`) the shared stages call for ``cfg``: the
    one recipe whose parts the config switches on, else the no-op base."""
    hooks = {r.training_extras.__func__: r for r in recipes()}  # a subclass inheriting the hook counts once
    found = [e for e in (hook(recipe, cfg) for hook, recipe in hooks.items()) if e is not None]
    if len(found) > 1:
        raise ValueError(f"the config switches on the training extras of several methods: "
                         f"{', '.join(type(e).__name__ for e in found)}")
    return found[0] if found else TrainingExtras()


def identity_phase(loss: str) -> Any:
    """The stage-1 identity phase (:class:`muva_lib.methods.extras.IdentityPhase`) of ``stage1.loss``."""
    phases = {r.stage1_identity.loss: r.stage1_identity for r in recipes() if r.stage1_identity is not None}
    if loss not in phases:
        raise ValueError(f"stage1.loss={loss!r}; expected one of {', '.join(phases)}")
    return phases[loss]
