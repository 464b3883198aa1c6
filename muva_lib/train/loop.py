"""The generic epoch loop: AMP context, grad scaler, optional clipping, per-loss averages, callbacks, progress bar.

A stage hands in a ``step(batch) -> StepOutput`` (its named loss terms, unweighted) and the weights;
the loop knows nothing about re-ID (minGPT's Trainer, fast-reid's named loss dict).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import Tensor
from tqdm import tqdm

from ..methods.step import StepOutput
from ..utils import autocast
from .ddp import all_reduce_mean

__all__ = ["StepOutput", "Callback", "LambdaCallback", "make_scaler", "train_epoch", "notify"]


class Callback:
    """Hooks a notebook or test can pass to :func:`muva_lib.train.train`; override any of them.

    ``record`` is the row written to ``logs/<stage>.csv``; ``on_epoch_end`` runs after the checkpoint of
    that epoch is on disk, so raising there simulates a kill after a completed epoch.
    """

    def on_stage_start(self, stage: str, info: Mapping[str, Any]) -> None: ...
    def on_epoch_start(self, stage: str, epoch: int) -> None: ...
    def on_step_end(self, stage: str, epoch: int, step: int, losses: Mapping[str, float]) -> None: ...
    def on_epoch_end(self, stage: str, epoch: int, record: Mapping[str, Any]) -> None: ...
    def on_eval(self, stage: str, epoch: int, metrics: Mapping[str, Any]) -> None: ...
    def on_stage_end(self, stage: str, history: Sequence[Mapping[str, Any]]) -> None: ...


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_epoch_end=lambda stage, epoch, rec: ...)``."""

    def __init__(self, **fns: Callable[..., None]):
        unknown = set(fns) - {n for n in dir(Callback) if n.startswith("on_")}
        if unknown:
            raise TypeError(f"unknown callback hooks: {sorted(unknown)}")
        for name, fn in fns.items():
            setattr(self, name, fn)


def notify(callbacks: Iterable[Callback], hook: str, *args: Any) -> None:
    """Call ``hook`` on every callback."""
    for cb in callbacks:
        getattr(cb, hook)(*args)


def make_scaler(device: torch.device, amp: bool) -> torch.amp.GradScaler:
    """A GradScaler active only for fp16 autocast on CUDA (disabled, a pass-through, on CPU)."""
    return torch.amp.GradScaler("cuda", enabled=bool(amp) and device.type == "cuda")


def _item(v: float | Tensor) -> float:
    return float(v.detach()) if isinstance(v, Tensor) else float(v)


def train_epoch(step: Callable[[Any], StepOutput], batches: Iterable[Any], weights: Mapping[str, float],
                optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler, *, device: torch.device,
                amp: bool = True, grad_clip: float = 0.0, stage: str = "train", epoch: int = 1,
                callbacks: Sequence[Callback] = (), progress: bool = True, total: int | None = None
                ) -> dict[str, float]:
    """One pass over ``batches``: for each, ``step`` under autocast, loss = sum of ``weights[name] *
    losses[name]``, scaled backward, optional grad-norm clipping, optimiser step.

    Returns sample-weighted epoch means, averaged over DDP ranks: ``loss`` (weighted total),
    ``loss_<name>`` for each term (unweighted), each metric, and ``time_s``.
    """
    t0 = time.perf_counter()
    sums: dict[str, float] = {}
    count = 0
    params = [p for g in optimizer.param_groups for p in g["params"]]
    bar = tqdm(batches, total=total, desc=f"{stage} {epoch}", disable=not progress, leave=False,
               dynamic_ncols=True)
    for i, batch in enumerate(bar):
        with autocast(device, amp):
            out = step(batch)
        missing = set(weights) - set(out.losses)
        if missing:
            raise KeyError(f"{stage} step returned no {sorted(missing)} (weights name {sorted(weights)})")
        total_loss = sum(weights[k] * out.losses[k].float() for k in weights)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(total_loss).backward()
        if grad_clip > 0:
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        scaler.step(optimizer)
        scaler.update()
        values = {"loss": _item(total_loss), **{f"loss_{k}": _item(v) for k, v in out.losses.items()},
                  **{k: _item(v) for k, v in out.metrics.items()}}
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v * out.size
        count += out.size
        if progress:
            bar.set_postfix(loss=f"{values['loss']:.4f}")
        for cb in callbacks:
            cb.on_step_end(stage, epoch, i, values)
    bar.close()
    if count == 0:
        raise RuntimeError(f"{stage} epoch {epoch}: no batches (too few identities or images for the batch size?)")
    keys = list(sums)
    means = all_reduce_mean(torch.tensor([sums[k] / count for k in keys], dtype=torch.float64, device=device))
    out_row = {k: float(v) for k, v in zip(keys, means.tolist())}
    out_row["time_s"] = time.perf_counter() - t0
    return out_row
