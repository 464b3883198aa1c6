"""Stage 2: fine-tune the image encoder with the frozen prompts' text features as a classifier.

MUVA (spec 1.5-1.7): TPM once; VPM-2 rebuilt each epoch (eval mode, test transform, VGE masks);
forward with predicted masks; L_id + L_imp (memory, hardest-positive update) + L_i2tce + BCE + Dice
on every block's mask logits. CLIP-ReID (peers 2.3): ID on two BN heads + triplet on three features +
i2t CE. Terms and weights come from ``cfg.stage2`` (a zero weight: the term is not computed). Adam
groups (RMP x10 lr, no decay), warm-up multi-step schedule per epoch, AMP + GradScaler on CUDA only.
Under DDP: PK batches split across ranks, memory passes and updates gathered, rank 0 writes.
A method's own terms (pi-VL's ``fusion``), Adam groups, hidden blocks and loader targets come from its
training extras (``setup.extras``, :mod:`muva_lib.methods.extras`).
"""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.nn.parallel import DistributedDataParallel

from ..config import MASK_LOSSES, RunCfg
from ..batches.loaders import make_train_loader
from ..batches.sampler import PKSampler
from ..losses import i2t_ce, label_smoothed_ce, mask_bce, mask_dice, mask_mse, memory_ce, triplet_hard
from ..memory import PrototypeMemory
from ..methods import training_extras
from ..models.factory import ReidOutput
from .train_state import restore_train_state
from .ddp import OutputAsDict, all_gather_cat, barrier, sync_buffers
from .run_eval import SUMMARY_KEYS, evaluate_model
from .loop import StepOutput, make_scaler, notify, train_epoch
from .optim import make_adam, set_epoch_lr, stage2_lr_factor, stage2_param_groups, stage2_trainable
from .setup import TrainSetup, feature_pass

__all__ = ["stage2_weights", "stage2_losses", "build_memory", "make_stage2_sampler", "run_stage2"]

SALT = 2


def stage2_weights(cfg: RunCfg) -> dict[str, float]:
    """The named stage-2 loss terms with non-zero weights (the one place they are listed).

    ``id`` (both BN heads when the model has the CLIP-ReID CLS head), ``triplet`` (three features),
    ``i2t``, ``memory``, ``mask_bce`` + ``mask_dice`` (or ``mask_mse``), each weighted ``w_mask``, and the
    method's own (``TrainingExtras.stage2_terms``: pi-VL's ``fusion``, ``w_fusion``)."""
    s = cfg.stage2
    if s.mask_loss not in MASK_LOSSES:
        raise ValueError(f"stage2.mask_loss={s.mask_loss!r}; expected one of {', '.join(MASK_LOSSES)}")
    if s.w_mask and not cfg.model.num_parts:
        raise ValueError("stage2.w_mask > 0 needs part tokens (model.num_parts > 0)")
    mask_terms = {"mask_bce": s.w_mask, "mask_dice": s.w_mask} if s.mask_loss == "bce+dice" else {"mask_mse": s.w_mask}
    terms = {"id": s.w_id, "triplet": s.w_triplet, "i2t": s.w_i2t, "memory": s.w_memory, **mask_terms,
             **training_extras(cfg).stage2_terms(cfg)}
    return {k: float(w) for k, w in terms.items() if w}


def stage2_losses(out: ReidOutput, labels: Tensor, masks: Tensor | None, weights: Mapping[str, float],
                  cfg: RunCfg, text_memory: Tensor | None, memory: Tensor | None) -> dict[str, Tensor]:
    """Unweighted shared loss terms named in ``weights`` for one batch: out (the model's forward with predicted
    masks), labels [B], VGE masks Bool[B, R, L], text_memory (TPM) [N, F], memory (VPM-2 bank) [N, F]. A
    method's own terms come from ``TrainingExtras.stage2_losses``."""
    s = cfg.stage2
    losses: dict[str, Tensor] = {}
    if "id" in weights:
        losses["id"] = label_smoothed_ce(out.logits, labels, s.label_smoothing)
        if out.cls_logits is not None:
            losses["id"] = losses["id"] + label_smoothed_ce(out.cls_logits, labels, s.label_smoothing)
    if "triplet" in weights:
        losses["triplet"] = sum(triplet_hard(f, labels, s.triplet_margin)
                                for f in (out.cls_penultimate, out.cls_hidden, out.feat))
    if "i2t" in weights:
        losses["i2t"] = i2t_ce(out.feat, text_memory, labels, s.i2t_tau, s.label_smoothing)
    if "memory" in weights:
        losses["memory"] = memory_ce(F.normalize(out.bn_feat.float(), dim=1), memory, labels, s.memory_temp)
    tau = cfg.model.rmp_sigmoid_tau
    if "mask_bce" in weights:
        losses["mask_bce"] = mask_bce(out.mask_logits, masks, tau)
        losses["mask_dice"] = mask_dice(out.mask_logits, masks, tau)
    if "mask_mse" in weights:
        losses["mask_mse"] = mask_mse(out.mask_logits, masks, tau)
    return losses


def build_memory(setup: TrainSetup) -> PrototypeMemory:
    """VPM-2: eval-mode pass with the VGE masks, x = normalise(BN(f)), normalised per-id means."""
    x = feature_pass(setup.model, setup.data.train, setup, lambda out: F.normalize(out.bn_feat.float(), dim=1),
                     teacher_forced=True, desc="VPM-2")
    labels = torch.tensor([it.pid for it in setup.data.train], device=x.device)
    s = setup.cfg.stage2
    return PrototypeMemory.from_features(x, labels, setup.data.num_classes, s.memory_momentum, s.hard_memory_update)


def make_stage2_sampler(setup: TrainSetup) -> PKSampler:
    """PK batches of ``data.batch_size`` (P ids x ``data.num_instances``), this rank's slice of each."""
    d = setup.cfg.data
    return PKSampler([it.pid for it in setup.data.train], d.batch_size, d.num_instances, setup.cfg.seed,
                     rank=setup.dist.rank, world_size=setup.dist.world_size, salt=SALT)


def _may_leave_unused(setup: TrainSetup, weights: Mapping[str, float]) -> bool:
    """DDP must look for parameters without gradient (RMPs without a mask loss, a head without ID loss)."""
    no_mask = setup.model.num_parts > 0 and not any(k.startswith("mask_") for k in weights)
    return no_mask or "id" not in weights


def _evaluate(setup: TrainSetup, epoch: int) -> dict[str, dict[str, Any]]:
    """Target metrics on rank 0 (the others wait), appended to the eval history (``logs/eval.csv``)."""
    metrics: dict[str, dict[str, Any]] = {}
    if setup.dist.is_main:
        t0 = time.perf_counter()
        metrics = evaluate_model(setup.model, setup.data.targets, setup.cfg, setup.device, amp=setup.amp,
                                 progress=setup.progress)
        setup.timings["eval_s"] = setup.timings.get("eval_s", 0.0) + time.perf_counter() - t0
        for target, m in metrics.items():
            setup.history["eval"].append({"stage": "stage2", "epoch": epoch, "target": target,
                                          **{k: m[k] for k in SUMMARY_KEYS}})
        if setup.writes:
            setup.run.write_rows("eval", setup.history["eval"])
        notify(setup.callbacks, "on_eval", "stage2", epoch, metrics)
    barrier()
    return metrics


def _ddp_forward(setup: TrainSetup, weights: Mapping[str, float]) -> Callable[..., ReidOutput]:
    """The model's forward, wrapped in DDP when the run is distributed (and the extras' modules too)."""
    model, device = setup.model, setup.device
    if not setup.dist.enabled:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    ddp_model = DistributedDataParallel(OutputAsDict(model), device_ids=device_ids,
                                        find_unused_parameters=_may_leave_unused(setup, weights))
    setup.extras.stage2_wrap(lambda module: DistributedDataParallel(module, device_ids=device_ids))

    def forward(images: Tensor, **kwargs: Any) -> ReidOutput:
        return ReidOutput(**ddp_model(images, **kwargs))
    return forward


def _make_step(setup: TrainSetup, forward: Callable[..., ReidOutput], weights: Mapping[str, float],
               text_memory: Tensor | None, memory: PrototypeMemory | None) -> Callable[[Mapping[str, Any]], StepOutput]:
    """One batch (``img``, ``pid``, ``mask`` and the extras' targets) -> the named terms, the batch accuracy."""
    device, extras = setup.device, setup.extras
    hidden_blocks = extras.stage2_hidden_blocks()

    def step(batch: Mapping[str, Any]) -> StepOutput:
        images = batch["img"].to(device, non_blocking=True)
        labels = batch["pid"].to(device, non_blocking=True)
        masks = batch["mask"].to(device, non_blocking=True) if "mask" in batch else None
        out = forward(images, hidden_blocks=hidden_blocks)  # predicted masks, never the VGE ones
        own = extras.stage2_losses(setup, out, batch, labels, weights)
        losses = {**stage2_losses(out, labels, masks, weights, setup.cfg, text_memory,
                                  memory.bank if memory is not None else None), **own}
        if memory is not None:  # after the loss: its gradient uses the memory before the update
            x = F.normalize(out.bn_feat.detach().float(), dim=1)
            memory.update(all_gather_cat(x), all_gather_cat(labels))
        acc = (out.logits.detach().argmax(1) == labels).float().mean()
        return StepOutput(losses, {"acc": acc}, size=len(labels))
    return step


def run_stage2(setup: TrainSetup, state: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Fine-tune for ``stage2.epochs`` epochs (resuming after ``state['epoch']`` when given a stage-2
    training state); every ``stage2.eval_period`` epochs (0: never) evaluate the targets. Writes logs,
    TensorBoard and ``last.pt`` after every epoch (rank 0 with a run). Returns the stage-2 history rows."""
    cfg, model, device, extras = setup.cfg, setup.model, setup.device, setup.extras
    s = cfg.stage2
    t_start = time.perf_counter()
    weights = stage2_weights(cfg)
    with torch.no_grad():
        text_memory = model.all_text_features().flatten(1).float() if "i2t" in weights else None  # TPM [N, F]
    extras.stage2_start(setup, weights)
    stage2_trainable(model, cfg.model.freeze_patch_proj)
    optimizer = make_adam(stage2_param_groups(model, s) + extras.stage2_groups(setup, weights))
    scaler = make_scaler(device, setup.amp)
    sampler = make_stage2_sampler(setup)
    start = restore_train_state(state, model, optimizer, scaler, sampler) if state is not None else 1
    history = setup.history["stage2"] = [r for r in setup.history["stage2"] if r["epoch"] < start]
    setup.history["eval"] = [r for r in setup.history["eval"] if r["epoch"] < start]
    loader = make_train_loader(setup.data.train, cfg.data, device, sampler, grid_hw=setup.grid_hw, masks=setup.masks,
                               seed=cfg.seed, **extras.stage2_loader_kwargs(setup))
    forward = _ddp_forward(setup, weights)
    notify(setup.callbacks, "on_stage_start", "stage2", {"epochs": s.epochs, "start_epoch": start, "weights": weights,
                                                         "batches": len(sampler), "num_images": len(setup.data.train)})
    tb = setup.run.tb_writer("stage2", purge_step=start) if setup.writes else None
    for epoch in range(start, s.epochs + 1):
        notify(setup.callbacks, "on_epoch_start", "stage2", epoch)
        lrs = set_epoch_lr(optimizer, lambda base: base * stage2_lr_factor(epoch, s))
        t_mem = time.perf_counter()
        sync_buffers(model)  # every rank's VPM-2 shard with rank 0's BN statistics
        memory = build_memory(setup) if "memory" in weights else None
        t_mem = time.perf_counter() - t_mem
        model.train()
        extras.stage2_train()
        sampler.set_epoch(epoch)
        row = train_epoch(_make_step(setup, forward, weights, text_memory, memory), loader, weights, optimizer,
                          scaler, device=device, amp=setup.amp, grad_clip=s.grad_clip, stage="stage2", epoch=epoch,
                          callbacks=setup.callbacks, progress=setup.progress, total=len(sampler))
        record = _record(epoch, optimizer, lrs, row, t_mem if memory is not None else None)
        history.append(record)
        if s.eval_period and epoch % s.eval_period == 0 and epoch < s.epochs:
            _evaluate(setup, epoch)
        setup.end_epoch("stage2", epoch, record, model=model, optimizer=optimizer, scaler=scaler, sampler=sampler,
                        tb=tb)
    if tb is not None:
        tb.close()
    setup.timings["stage2_s"] = setup.timings.get("stage2_s", 0.0) + time.perf_counter() - t_start
    notify(setup.callbacks, "on_stage_end", "stage2", history)
    return history


def _record(epoch: int, optimizer: torch.optim.Optimizer, lrs: list[float], row: Mapping[str, Any],
            memory_s: float | None) -> dict[str, Any]:
    """The epoch's row of ``logs/stage2.csv``: the base (and RMP) rate, the loop's averages, the VPM-2 time."""
    names = [g.get("name") for g in optimizer.param_groups]
    return {"epoch": epoch, "lr": lrs[names.index("base")] if "base" in names else lrs[0],
            **({"lr_rmp": lrs[names.index("rmp")]} if "rmp" in names else {}), **row,
            **({"memory_s": memory_s} if memory_s is not None else {})}
