"""What both stages share: protocol data, VGE part masks (a model with part tokens), what the method's training
extras prepare (:mod:`muva_lib.methods`), the model and the run, built once by :func:`prepare`."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

from ..config import RunCfg, config_hash
from ..data.protocols import ProtocolData, build
from ..data.types import Item
from ..features import model_features
from ..methods import training_extras
from ..methods.extras import TrainingExtras
from ..models.factory import ReidModel, ReidOutput, create_model
from ..utils import resolve_device, seed_everything, set_threads
from .train_state import save_train_state
from .ddp import DistInfo, barrier, gather_in_order
from .loop import Callback, notify
from .rundir import RunDir

__all__ = ["TrainSetup", "prepare", "training_masks", "feature_pass"]


@dataclass
class TrainSetup:
    """Everything a stage needs. ``history`` holds the rows of ``logs/stage1.csv``, ``logs/stage2.csv`` and
    ``logs/eval.csv`` as lists of dicts (pandas-ready); ``timings`` the seconds spent per phase.
    ``extras``: the method's hooks into the stages (:func:`muva_lib.methods.training_extras`); ``parsing``
    what they prepared (pi-VL: grouped part-class maps ``{key: uint8 [H, W]}``) and ``aux`` the training-only
    modules they built beside the model (saved in ``last.pt``); both None without extras."""

    cfg: RunCfg
    device: torch.device
    data: ProtocolData
    model: ReidModel
    masks: dict[str, np.ndarray] | None
    dist: DistInfo = field(default_factory=DistInfo)
    run: RunDir | None = None
    callbacks: Sequence[Callback] = ()
    progress: bool = True
    history: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"stage1": [], "stage2": [], "eval": []})
    timings: dict[str, float] = field(default_factory=dict)
    parsing: dict[str, np.ndarray] | None = None
    aux: torch.nn.Module | None = None
    extras: TrainingExtras = field(default_factory=TrainingExtras)

    @property
    def amp(self) -> bool:
        """fp16 autocast + GradScaler: CUDA only, and only when ``cfg.amp``."""
        return bool(self.cfg.amp) and self.device.type == "cuda"

    @property
    def grid_hw(self) -> tuple[int, int]:
        return tuple(self.model.image_encoder.grid_size)

    @property
    def writes(self) -> bool:
        """This process writes the run folder (rank 0 with a run)."""
        return self.run is not None and self.dist.is_main

    def features(self, select: Callable[[ReidOutput], torch.Tensor], *, teacher_forced: bool = True,
                 return_patches: bool = False, desc: str = "features") -> torch.Tensor:
        """:func:`feature_pass` of the model over the training items: [M, F] in item order."""
        return feature_pass(self.model, self.data.train, self, select, teacher_forced=teacher_forced,
                            return_patches=return_patches, desc=desc)

    def end_epoch(self, stage: str, epoch: int, record: dict[str, Any], *, model: torch.nn.Module,
                  optimizer: torch.optim.Optimizer, scaler: Any, sampler: Any, tb: Any = None) -> None:
        """After a completed epoch: (rank 0 with a run) rewrite ``logs/<stage>.csv``, save ``last.pt``,
        record the progress in the manifest, add the epoch's scalars (and evaluations) to TensorBoard;
        then the callbacks' ``on_epoch_end``, so that a callback raising there leaves a resumable run."""
        if self.writes:
            self.run.write_rows(stage, self.history[stage])
            save_train_state(self.run.last_path, stage=stage, epoch=epoch, model=model, optimizer=optimizer,
                             scaler=scaler, sampler=sampler, history=self.history, config_hash=config_hash(self.cfg),
                             extra=self.extras.aux_state(self.aux))
            self.run.update_manifest(progress={"stage": stage, "epoch": epoch})
            if tb is not None:
                for k, v in record.items():
                    if k != "epoch":
                        tb.add_scalar(f"{stage}/{k}", v, epoch)
                for r in self.history["eval"]:
                    if (r["stage"], r["epoch"]) == (stage, epoch):
                        for k, v in r.items():
                            if k not in ("stage", "epoch", "target"):
                                tb.add_scalar(f"eval/{r['target']}/{k}", v, epoch)
                tb.flush()
        notify(self.callbacks, "on_epoch_end", stage, epoch, record)


def training_masks(cfg: RunCfg, items: Sequence[Item], grid_hw: tuple[int, int], device: torch.device,
                   dist: DistInfo = DistInfo(), progress: bool = False, run: RunDir | None = None
                   ) -> dict[str, np.ndarray]:
    """VGE part masks ``{key: bool [R, h*w]}`` of the training items. Rank 0 grounds and writes the
    store first (and records the boxes' fallback shares and warnings under ``grounding`` in the
    run's manifest); the other ranks then only read it."""
    from ..grounding import part_masks_for, part_masks_with_health

    masks = None
    if dist.is_main:
        masks, health = part_masks_with_health(items, cfg.vge, grid_hw, device=device, progress=progress)
        if run is not None:
            run.update_manifest(grounding=health)
    barrier()
    if masks is None:
        masks = part_masks_for(items, cfg.vge, grid_hw, device=device)
    return masks


def prepare(cfg: RunCfg, device: str | torch.device | None = None, *, run: RunDir | None = None,
            callbacks: Sequence[Callback] = (), progress: bool = True, dist: DistInfo | None = None,
            data: ProtocolData | None = None) -> TrainSetup:
    """Threads, protocol data, VGE masks (part tokens), what the method's extras prepare, then the seeded
    model (and the extras' aux modules): a :class:`TrainSetup`.

    ``device`` defaults to ``cfg.device`` (``auto``: CUDA when present). The model is created right
    after ``seed_everything(cfg.seed)``, so the same config always starts from the same weights.
    """
    dist = dist or DistInfo()
    device = torch.device(device) if device is not None else resolve_device(cfg.device)
    set_threads(cfg.threads)
    if data is None:
        data = build(cfg.data.protocol, split_index=cfg.data.split_index, all_splits=cfg.data.all_splits,
                     strict=cfg.data.strict)
    masks = None
    if cfg.model.num_parts:
        from ..geometry import grid_for
        masks = training_masks(cfg, data.train, grid_for((cfg.data.height, cfg.data.width)), device, dist, progress,
                               run)
    extras = training_extras(cfg)
    parsing = extras.prepare(cfg, data.train, device, dist=dist, progress=progress, barrier=barrier)
    seed_everything(cfg.seed, cfg.deterministic)
    model = create_model(cfg, data.num_classes, device=device)
    aux = extras.build_aux(cfg, model, device)
    if masks is not None:
        rows = next(iter(masks.values())).shape
        if tuple(rows) != (model.num_parts, model.image_encoder.num_patches):
            raise ValueError(f"part masks are {tuple(rows)} but the model needs "
                             f"({model.num_parts}, {model.image_encoder.num_patches}) (parts, patches)")
    return TrainSetup(cfg, device, data, model, masks, dist, run, tuple(callbacks), progress, parsing=parsing, aux=aux,
                      extras=extras)


@torch.no_grad()
def feature_pass(model: ReidModel, items: Sequence[Item], setup: TrainSetup,
                 select: Callable[[ReidOutput], torch.Tensor], *, teacher_forced: bool = True,
                 return_patches: bool = False, desc: str = "features") -> torch.Tensor:
    """:func:`muva_lib.features.model_features` of ``model`` over ``items`` as training runs it (test transform,
    the setup's device, AMP and progress): ``select(model output)`` per batch -> [M, F] fp32 on the device, in
    item order. With ``teacher_forced`` and part masks, the VGE masks gate every block (the RMPs are skipped).
    Under DDP each rank computes every world_size-th item and the rows are gathered. ``return_patches``: the
    output carries the projected patch tokens [B, L, d]. The model's train / eval mode is restored afterwards."""
    dist = setup.dist
    positions = list(range(dist.rank, len(items), dist.world_size))
    masks = setup.masks if (teacher_forced and setup.masks is not None and model.num_parts) else None
    rows = model_features(model, [items[i] for i in positions], setup.cfg.data, setup.device, select, masks=masks,
                          amp=setup.amp, return_patches=return_patches, progress=setup.progress, desc=desc)
    return gather_in_order(rows, positions, len(items))
