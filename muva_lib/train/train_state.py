"""The resumable training state (``checkpoints/last.pt``): model, optimiser, scaler, sampler, RNG, histories."""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from ..models.weights import read_verified, serialize_verified
from ..utils import atomic_write_bytes

__all__ = ["TRAIN_STATE_FORMAT", "rng_state", "set_rng_state", "model_train_state", "load_model_train_state",
           "save_train_state", "load_train_state", "restore_train_state"]

TRAIN_STATE_FORMAT = "muva_lib.train_state/1"
#: state-dict prefixes left out of last.pt: the frozen text encoder is rebuilt from the config's weights
_SKIP = ("text_encoder.",)


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and CUDA generator states (plain values and tensors only)."""
    np_state = np.random.get_state()
    return {"python": random.getstate(),
            "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                      "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate(_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(x: Any) -> Any:
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def model_train_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The model's state dict minus the frozen text encoder, on CPU."""
    return {k: v.detach().cpu() for k, v in model.state_dict().items() if not k.startswith(_SKIP)}


def load_model_train_state(model: nn.Module, state: Mapping[str, torch.Tensor]) -> None:
    """Load :func:`model_train_state` output; any key missing besides the text encoder is an error."""
    result = model.load_state_dict(dict(state), strict=False)
    missing = [k for k in result.missing_keys if not k.startswith(_SKIP)]
    if missing or result.unexpected_keys:
        raise KeyError(f"training state does not fit the model: missing {missing[:5]}, "
                       f"unexpected {result.unexpected_keys[:5]}")


def save_train_state(path: str | Path, *, stage: str, epoch: int, model: nn.Module,
                     optimizer: torch.optim.Optimizer, scaler: Any, sampler: Any,
                     history: Mapping[str, Any], config_hash: str, extra: Mapping[str, Any] | None = None) -> Path:
    """Write the state after ``epoch`` (1-based, completed) of ``stage`` atomically, with its SHA-256."""
    blob = {"format": TRAIN_STATE_FORMAT, "stage": stage, "epoch": int(epoch), "config_hash": config_hash,
            "model": model_train_state(model), "optimizer": optimizer.state_dict(),
            "scaler": scaler.state_dict() if scaler is not None else {},
            "sampler": sampler.state_dict() if sampler is not None else {},
            "rng": rng_state(), "history": dict(history), "extra": dict(extra or {})}
    return atomic_write_bytes(path, serialize_verified(blob))


def load_train_state(path: str | Path) -> dict[str, Any]:
    """Read a state written by :func:`save_train_state` (``weights_only``: plain values and tensors); a
    damaged file raises :class:`muva_lib.models.weights.CorruptCheckpointError`."""
    return read_verified(path, "restore a copy of it, or start the run again (train without --resume)",
                         lambda b: isinstance(b, dict) and b.get("format") == TRAIN_STATE_FORMAT,
                         f"muva_lib training state (expected format {TRAIN_STATE_FORMAT})")


def restore_train_state(state: Mapping[str, Any], model: nn.Module, optimizer: torch.optim.Optimizer, scaler: Any,
                        sampler: Any) -> int:
    """Put a stage's saved state back into the live model, optimiser, scaler, sampler and RNGs;
    returns the first epoch still to run."""
    load_model_train_state(model, state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scaler.load_state_dict(state["scaler"])
    sampler.load_state_dict(state["sampler"])
    set_rng_state(state["rng"])
    return int(state["epoch"]) + 1
