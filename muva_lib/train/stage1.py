"""Stage 1: learn the per-identity prompts against image features computed once with the frozen encoder.

The identity epochs (``stage1.epochs``) run the identity phase of ``stage1.loss``
(:func:`muva_lib.methods.identity_phase`: its sampler over the cache, prototypes and step; cluster-NCE
against per-id means on PK batches, or SupCon on random batches); a method's own epochs follow them
(``TrainingExtras.stage1_weights`` / ``stage1_step``: pi-VL's part-informed epochs, numbered on after
them, ``stage1_total_epochs``). The cache holds the pre-BN f (teacher-forced by the VGE masks when the
model has part tokens). Adam on the prompt context only (and the params the extras add), warm-up + cosine
per epoch (:func:`stage1_epoch_lr`, by ``stage1.part_schedule`` and ``stage1.schedule``). A step runs the
text encoder only, once per distinct identity of the batch (``ReidModel.text_features``).

Under DDP the feature cache is computed in shards and gathered; the prompt epochs then run
identically on every rank (same batches, no communication: SupCon needs the whole batch, and the
text-only steps are cheap), so every rank ends with the prompts of a one-process run.
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor

from ..config import RunCfg
from ..batches.sampler import PKSampler, ShuffledBatchSampler
from ..methods import identity_phase, training_extras
from ..models.weights import save_checkpoint, self_contained
from ..utils import atomic_write_bytes
from .train_state import restore_train_state
from .loop import StepOutput, make_scaler, notify, train_epoch
from .optim import make_adam, set_epoch_lr, stage1_param_groups, stage1_phase_lr, stage1_trainable
from .setup import TrainSetup, feature_pass

__all__ = ["Stage1Cache", "stage1_weights", "stage1_total_epochs", "stage1_epoch_lr", "compute_stage1_cache", "load_or_compute_cache",
           "stage1_batches", "make_stage1_sampler", "stage1_step", "run_stage1"]

#: salt of the stage-1 samplers' generators (stage 2 uses 2): the two stages never share batches
SALT = 1


@dataclass
class Stage1Cache:
    """Cached image features of the training set: feats [M, F] (pre-BN f, teacher-forced for MUVA),
    labels [M], keys (``dataset/relpath``) in training-item order."""

    feats: Tensor
    labels: Tensor
    keys: list[str]

    def to(self, device: torch.device) -> "Stage1Cache":
        return Stage1Cache(self.feats.to(device), self.labels.to(device), self.keys)


def stage1_total_epochs(cfg: RunCfg) -> int:
    """Identity epochs plus pi-VL's part-informed epochs."""
    return cfg.stage1.epochs + cfg.stage1.part_epochs


def stage1_epoch_lr(epoch: int, cfg: RunCfg) -> float:
    """The stage-1 rate of ``epoch`` (1-based, counting pi-VL's part epochs after the identity ones),
    by ``stage1.part_schedule`` and ``stage1.schedule`` (:func:`muva_lib.train.optim.stage1_phase_lr`)."""
    return stage1_phase_lr(epoch, cfg.stage1)


def stage1_weights(cfg: RunCfg, epoch: int = 1) -> dict[str, float]:
    """The named stage-1 loss terms of ``epoch`` and their weights: those of the method's own epochs
    (``TrainingExtras.stage1_weights``: pi-VL's ``part_nce`` after ``stage1.epochs``), else the identity
    phase's of ``stage1.loss`` (:func:`muva_lib.methods.identity_phase`)."""
    own = training_extras(cfg).stage1_weights(cfg, epoch)
    return dict(own) if own is not None else dict(identity_phase(cfg.stage1.loss).terms)


def compute_stage1_cache(setup: TrainSetup) -> Stage1Cache:
    """One eval-mode pass of the frozen encoder over the training set (VGE masks for MUVA)."""
    items = setup.data.train
    feats = feature_pass(setup.model, items, setup, lambda out: out.feat, teacher_forced=True, desc="stage-1 cache")
    labels = torch.tensor([it.pid for it in items], dtype=torch.long)
    return Stage1Cache(feats.cpu(), labels, [it.key for it in items])


def load_or_compute_cache(setup: TrainSetup) -> Stage1Cache:
    """The run's ``cache/stage1_feats.pt`` when it matches the training items, else computed (and saved)."""
    keys = [it.key for it in setup.data.train]
    path = setup.run.cache_path if setup.run is not None else None
    if path is not None and path.is_file():
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("keys") == keys:
            return Stage1Cache(blob["feats"], blob["labels"], blob["keys"])
    t0 = time.perf_counter()
    cache = compute_stage1_cache(setup)
    setup.timings["stage1_cache_s"] = time.perf_counter() - t0
    if path is not None and setup.dist.is_main:
        buf = io.BytesIO()
        torch.save({"feats": cache.feats, "labels": cache.labels, "keys": cache.keys}, buf)
        atomic_write_bytes(path, buf.getvalue())
    return cache


def make_stage1_sampler(cfg: RunCfg, labels: Tensor) -> PKSampler | ShuffledBatchSampler:
    """The identity phase's batches over the cache rows of ``labels`` [M] (PK batches of labels for
    cluster-NCE, a random permutation for SupCon)."""
    return identity_phase(cfg.stage1.loss).sampler(cfg, labels, SALT)


def stage1_batches(sampler: PKSampler | ShuffledBatchSampler) -> list[Tensor]:
    """The epoch's batches as index tensors into the cache (the augmentation seeds are not needed)."""
    if isinstance(sampler, PKSampler):
        return [torch.tensor([i for i, _ in b]) for b in sampler.batches()]
    return [torch.tensor(b) for b in sampler]


def stage1_step(model: Any, cache: Stage1Cache, prototypes: Tensor | None, cfg: RunCfg, idx: Tensor) -> StepOutput:
    """Loss terms of one batch of cache indices ``idx`` [B] (the identity phase of ``stage1.loss``). Text
    features come from ``model.text_features``: each distinct identity through the text encoder once."""
    return identity_phase(cfg.stage1.loss).step(model, cache, prototypes, cfg, idx)


def run_stage1(setup: TrainSetup, state: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Train the prompts for ``stage1.epochs`` (+ pi-VL's ``part_epochs``) epochs (resuming after
    ``state['epoch']`` when given a stage-1 training state). Writes logs, TensorBoard, ``last.pt`` after every
    epoch and ``checkpoints/stage1.pt`` at the end (rank 0 with a run). Returns the stage-1 history rows."""
    cfg, model, device = setup.cfg, setup.model, setup.device
    t_start = time.perf_counter()
    total = stage1_total_epochs(cfg)
    cache = load_or_compute_cache(setup).to(device)
    setup.extras.stage1_start(setup)
    prototypes = identity_phase(cfg.stage1.loss).prototypes(cache.feats, cache.labels, setup.data.num_classes)
    stage1_trainable(model)
    model.eval()  # no batch statistics or dropout anywhere in stage 1 (the text tower has none)
    optimizer = make_adam(setup.extras.stage1_groups(setup, stage1_param_groups(model, cfg.stage1)))
    scaler = make_scaler(device, setup.amp)
    sampler = make_stage1_sampler(cfg, cache.labels.cpu())
    start = restore_train_state(state, model, optimizer, scaler, sampler) if state is not None else 1
    history = setup.history["stage1"] = [r for r in setup.history["stage1"] if r["epoch"] < start]
    notify(setup.callbacks, "on_stage_start", "stage1", {"epochs": total, "start_epoch": start,
                                                         "num_images": len(cache.labels),
                                                         "weights": stage1_weights(cfg)})
    tb = setup.run.tb_writer("stage1", purge_step=start) if setup.writes else None
    for epoch in range(start, total + 1):
        notify(setup.callbacks, "on_epoch_start", "stage1", epoch)
        lr = set_epoch_lr(optimizer, lambda base: stage1_epoch_lr(epoch, cfg) * base / cfg.stage1.lr)[0]
        sampler.set_epoch(epoch)
        batches = stage1_batches(sampler)
        weights = stage1_weights(cfg, epoch)
        step = setup.extras.stage1_step(setup, weights) or (
            lambda idx: stage1_step(model, cache, prototypes, cfg, idx))
        row = train_epoch(step, batches, weights, optimizer, scaler, device=device, amp=setup.amp, stage="stage1",
                          epoch=epoch, callbacks=setup.callbacks, progress=setup.progress, total=len(batches))
        record = {"epoch": epoch, "lr": lr, **row}
        history.append(record)
        setup.end_epoch("stage1", epoch, record, model=model, optimizer=optimizer, scaler=scaler, sampler=sampler,
                        tb=tb)
    if tb is not None:
        tb.close()
    if setup.writes:
        save_checkpoint(model, setup.run.stage1_path, components=self_contained(model, ("prompts",)),
                        extra={"stage": "stage1", "epoch": total})
    setup.timings["stage1_s"] = setup.timings.get("stage1_s", 0.0) + time.perf_counter() - t_start
    notify(setup.callbacks, "on_stage_end", "stage1", history)
    return history
