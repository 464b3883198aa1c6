"""Presets (how big and how long) and the method registry's tables as config sees them: ``METHODS``,
``PRESET_METHODS`` and ``ABLATIONS``, read from :mod:`muva_lib.methods` on first use."""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from .schema import ConfigError

__all__ = ["PRESETS", "METHODS", "PRESET_METHODS", "Ablation", "ABLATIONS", "ablation_overrides"]


#: Presets: how big and how long. ``paper`` = the paper's values (ViT-B/16, GPU);
#: ``smoke`` = the tiny ``muva-tiny`` CLIP on the synthetic benchmark, minutes on 2 CPU cores, starting from the
#: workbench's own pretrained weights (``model.pretrained=synth``; ``model.pretrained=`` is the random-init ablation).
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "smoke": {
        # one thread: on a 2-core machine shared with other work, every multi-threaded element-wise op
        # waits for its thread on the busy core (OpenMP); fixed anyway for reproducible reductions
        "threads": 1,
        "model.arch": "muva-tiny",
        "model.pretrained": "synth",  # pretrained on the synthetic captioned corpus (python -m muva_lib pretrain)
        "data.height": 128,
        "data.width": 64,
        "data.batch_size": 16,  # 4 ids x 4: twice the steps of 32 at the same cost, better from scratch
        "data.test_batch_size": 128,
        "model.text_context_length": 16,  # the longest prompt is 15 tokens; the text tower's cost grows with it
        "stage1.epochs": 4,
        "stage1.lr": 2e-3,
        "stage1.warmup_epochs": 1,
        "stage2.epochs": 8,
        "stage2.base_lr": 1e-3,
        "stage2.warmup_epochs": 2,
        "stage2.milestones": (7,),
    },
}

#: ``METHODS`` (method -> its config overrides, the parent recipes' included), ``PRESET_METHODS``
#: ((preset, method) -> what the preset changes in that method, applied after it) and ``ABLATIONS`` are
#: read from the recipes in :mod:`muva_lib.methods` on first use (module ``__getattr__`` below), so that
#: this module stays below the methods in the import order.
def _registry() -> Any:
    """:mod:`muva_lib.methods` (imported on first use: the recipes import this module)."""
    return importlib.import_module("muva_lib.methods")


def __getattr__(name: str) -> Any:
    if name == "METHODS":
        return {r.name: r.flat_overrides() for r in _registry().recipes()}
    if name == "PRESET_METHODS":
        return {(p, r.name): dict(adj) for r in _registry().recipes() for p, adj in r.preset_overrides.items()}
    if name == "ABLATIONS":
        return {k: a for r in _registry().recipes() for k, a in r.own_ablations().items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Ablation:
    """One switch of a method's recipe: the ``method`` it changes, a table ``label`` and the
    ``overrides`` (``key=value``); a run of it sets ``variant`` to the ablation's name."""

    method: str
    label: str
    overrides: tuple[str, ...]


def ablation_overrides(name: str) -> list[str]:
    """The overrides of ablation ``name``, ``variant=<name>`` included (ConfigError names the known ones)."""
    ablations = __getattr__("ABLATIONS")
    if name not in ablations:
        raise ConfigError(f"unknown ablation {name!r}; known: {', '.join(ablations)}")
    return [*ablations[name].overrides, f"variant={name}"]


