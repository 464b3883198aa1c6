"""The notebook / CLI entry points: ``train`` (both stages, run folder, resume, DDP), ``evaluate_run``, ``load_run``."""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from ..config import RunCfg, apply_overrides, from_dict, load as load_config, parse_overrides, to_dict, validate
from ..data.protocols import build
from ..models.weights import load_checkpoint, read_metadata, save_checkpoint, self_contained
from ..models.factory import ReidModel, create_model
from ..utils import resolve_device
from .train_state import load_model_train_state, load_train_state, set_rng_state
from .ddp import barrier, broadcast_object, init_distributed
from .run_eval import SUMMARY_KEYS, evaluate_model
from .loop import Callback
from .rundir import NotResumableError, RunDir, find_resumable
from .setup import TrainSetup, prepare
from .stage1 import run_stage1, stage1_total_epochs
from .stage2 import run_stage2

__all__ = ["TrainResult", "train", "open_run", "finish", "evaluate_run", "load_run", "model_from_checkpoint"]


@dataclass
class TrainResult:
    """What a run produced: its folder (None without one), config, per-epoch histories (lists of dicts,
    ``pandas.DataFrame(result.stage2)`` works), final metrics per target, seconds per phase, the model."""

    run_dir: Path | None
    cfg: RunCfg
    stage1: list[dict[str, Any]] = field(default_factory=list)
    stage2: list[dict[str, Any]] = field(default_factory=list)
    evals: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    model: ReidModel | None = field(default=None, repr=False)
    #: True when ``train(resume=True)`` found the run finished: nothing was trained, the results are read back
    already_finished: bool = False

    def summary(self) -> list[dict[str, Any]]:
        """One row per target: mAP, rank1, rank5, rank10, mINP (fractions)."""
        return [{"target": t, **{k: m.get(k) for k in SUMMARY_KEYS}} for t, m in self.metrics.items()]


def open_run(cfg: RunCfg, run_dir: str | Path | None = None, resume: bool = False, world_size: int = 1
             ) -> RunDir:
    """The run folder to use: with ``resume``, ``run_dir`` or else the newest unfinished run of the same
    protocol / method that saved an epoch or never failed (its config must match, finished or not, see
    :meth:`RunDir.check_config`; none found: a new run, with a warning); otherwise a new folder (at
    ``run_dir`` when given). A run that failed before saving an epoch raises :class:`NotResumableError`."""
    if resume:
        run = RunDir(run_dir) if run_dir is not None else find_resumable(cfg.data.protocol, cfg.method)
        if run is not None:
            if not run.config_path.is_file():
                raise FileNotFoundError(f"{run.root} is not a run folder (no config.json)")
            if run.not_resumable():
                raise NotResumableError(run.not_resumable())
            changed = run.check_config(cfg)
            manifest = run.manifest()
            if manifest.get("status") == "finished":
                return run  # nothing to continue: train() reads it back
            removed = run.remove_partial_writes()
            entry = {"at": time.strftime("%Y-%m-%dT%H:%M:%S"), "changed": changed,
                     **({"after": manifest["error"]} if manifest.get("error") else {}),
                     **({"removed": removed} if removed else {})}
            run.update_manifest(status="running", error=None, failed_in=None,
                                resumed=manifest.get("resumed", []) + [entry])
            return run
        warnings.warn(f"nothing to resume for {cfg.data.protocol} / {cfg.method}: starting a new run", stacklevel=2)
    return RunDir.create(cfg, world_size=world_size, path=run_dir)


def finish(setup: TrainSetup, evaluate: bool = True) -> dict[str, dict[str, Any]]:
    """After the last epoch: ``checkpoints/final.pt`` (by component, with the config), target metrics
    (``metrics/<target>.json``, ``logs/eval.csv``), manifest ``finished`` (rank 0; the others wait)."""
    cfg, metrics = setup.cfg, {}
    if setup.dist.is_main:
        epoch = cfg.stage2.epochs
        if setup.writes:
            save_checkpoint(setup.model, setup.run.final_path, components=self_contained(setup.model),
                            extra={"config": to_dict(cfg), "stage": "stage2", "epoch": epoch})
        if evaluate:
            t0 = time.perf_counter()
            metrics = evaluate_model(setup.model, setup.data.targets, cfg, setup.device, amp=setup.amp,
                                     progress=setup.progress)
            setup.timings["eval_s"] = setup.timings.get("eval_s", 0.0) + time.perf_counter() - t0
            for target, m in metrics.items():
                m.update(epoch=epoch, checkpoint="checkpoints/final.pt")
                setup.history["eval"].append({"stage": "final", "epoch": epoch, "target": target,
                                              **{k: m[k] for k in SUMMARY_KEYS}})
                if setup.writes:
                    setup.run.write_metrics(target, m)
        if setup.writes:
            if setup.history["eval"]:
                setup.run.write_rows("eval", setup.history["eval"])
            setup.run.update_manifest(status="finished", timings=setup.timings,
                                      metrics={t: {k: m[k] for k in SUMMARY_KEYS} for t, m in metrics.items()})
    barrier()
    return metrics


def train(cfg: RunCfg, run_dir: str | Path | None = None, resume: bool = False, callbacks: Sequence[Callback] = (),
          *, device: str | torch.device | None = None, progress: bool = True, write: bool = True,
          evaluate: bool = True) -> TrainResult:
    """Run stage 1, stage 2 and the final evaluation of ``cfg`` (see the module docs of
    :mod:`muva_lib.train.rundir` for the files written).

    ``resume``: continue ``run_dir`` (or the newest unfinished run of the protocol / method) from its
    last completed epoch with the optimiser, scaler, sampler and RNG states; on CPU the result equals an
    uninterrupted run. ``write=False``: no run folder (nothing on disk, no resume). Under ``torchrun``
    this joins the process group (DDP); rank 0 writes and evaluates.
    """
    device = torch.device(device) if device is not None else resolve_device(cfg.device)
    dist = init_distributed(device.type)
    if dist.enabled and device.type == "cuda":
        device = torch.device("cuda", dist.local_rank)
    run: RunDir | None = None
    if write:
        path = str(open_run(cfg, run_dir, resume, dist.world_size).root) if dist.is_main else None
        run = RunDir(broadcast_object(path))
    elif resume:
        raise ValueError("resume needs a run folder (write=True)")
    if run is not None and resume and run.manifest().get("status") == "finished":
        return replace(load_run(run.root), already_finished=True)
    setup: TrainSetup | None = None
    try:
        state = load_train_state(run.last_path) if run is not None and resume and run.last_path.is_file() else None
        setup = prepare(cfg, device, run=run, callbacks=callbacks, progress=progress and dist.is_main, dist=dist)
        if setup.writes:
            run.update_manifest(device=str(device), world_size=dist.world_size)
        if state is not None:
            load_model_train_state(setup.model, state["model"])
            setup.extras.load_aux_state(setup.aux, state.get("extra", {}))
            setup.history = {k: list(v) for k, v in state["history"].items()}
            set_rng_state(state["rng"])
        stage, done = (state["stage"], int(state["epoch"])) if state is not None else ("", 0)
        if stage == "" or (stage == "stage1" and done < stage1_total_epochs(cfg)):
            run_stage1(setup, state if stage == "stage1" else None)
        if stage != "stage2" or done < cfg.stage2.epochs:
            run_stage2(setup, state if stage == "stage2" else None)
        metrics = finish(setup, evaluate)
    except BaseException as exc:  # set-up or training: the manifest says so (a resumable run keeps last.pt)
        if run is not None and dist.is_main:
            run.update_manifest(status="failed", error=f"{type(exc).__name__}: {exc}"[:1000],
                                failed_in="set-up" if setup is None else "training",
                                **({"timings": setup.timings} if setup is not None else {}))
        raise
    return TrainResult(run.root if run is not None else None, cfg, setup.history["stage1"], setup.history["stage2"],
                       setup.history["eval"], metrics, dict(setup.timings), setup.model)


def load_run(path: str | Path) -> TrainResult:
    """A run folder read back (config, histories from the CSVs, final metrics, timings; no model)."""
    run = RunDir(path)
    cfg = run.config()
    return TrainResult(run.root, cfg, run.read_rows("stage1"), run.read_rows("stage2"), run.read_rows("eval"),
                       run.read_metrics(), run.manifest().get("timings", {}))


def _checkpoint_and_config(path: str | Path) -> tuple[Path, RunCfg]:
    """``path``: a run folder or a ``models.weights`` file -> (checkpoint file, the run's config)."""
    path = Path(path)
    ckpt = RunDir(path).final_path if path.is_dir() else path
    if not ckpt.is_file():
        raise FileNotFoundError(f"no checkpoint at {ckpt}" + (" (the run has not finished)" if path.is_dir() else ""))
    extra = read_metadata(ckpt).get("extra", {})
    if "config" in extra:
        return ckpt, from_dict(extra["config"])
    cfg_file = ckpt.parent.parent / "config.json"
    if not cfg_file.is_file():
        raise FileNotFoundError(f"{ckpt} carries no config and there is no {cfg_file}")
    return ckpt, load_config(cfg_file)


def model_from_checkpoint(path: str | Path, device: str | torch.device = "cpu",
                          cfg: RunCfg | None = None) -> tuple[ReidModel, RunCfg]:
    """Rebuild the model of a run folder / checkpoint and load its weights (no CLIP weights file needed:
    every component the image side uses comes from the checkpoint; the frozen text encoder of a pretrained run
    comes from its weights file when that is on this machine, with a warning when it is not). A checkpoint without a trained
    image encoder (``stage1.pt``: the prompts only) raises ``ValueError`` naming the one to use."""
    ckpt, run_cfg = _checkpoint_and_config(path)
    cfg = cfg or run_cfg
    meta = read_metadata(ckpt)
    if "image_encoder" not in meta.get("components", []):
        run = ckpt.parent.parent
        stage = meta.get("extra", {}).get("stage", "")
        raise ValueError(f"{ckpt} holds no trained image encoder (components: {', '.join(meta.get('components', []))}"
                         f"{'; the ' + stage + ' checkpoint' if stage else ''}): its model would score a random, "
                         f"unseeded encoder. Use the model after stage 2: {run / 'checkpoints' / 'final.pt'} (or "
                         f"the run folder {run}); a run that has not finished: complete it first with "
                         f"python -m muva_lib train --resume {run} ...")
    activation = {"model.activation": "quick_gelu" if meta.get("quick_gelu") else "gelu"}
    model = None
    if "text_encoder" not in meta.get("components", []) and cfg.model.pretrained:
        # the frozen text encoder is the pretrained one: rebuild it from the run's weights when they are here
        # (the shipped `synth` weights always are), so text features (prompts, notebooks) mean what they meant
        try:
            model = create_model(apply_overrides(cfg, activation), meta["num_classes"], device=torch.device(device),
                                 image_size=tuple(meta["image_size"]))
        except (FileNotFoundError, ValueError) as exc:
            warnings.warn(f"{ckpt}: the run's CLIP weights ({cfg.model.pretrained}) cannot be loaded ({exc}); "
                          "the image side comes from the checkpoint, but text features of this model are random",
                          stacklevel=2)
    if model is None:
        model = create_model(apply_overrides(cfg, {"model.pretrained": "", **activation}), meta["num_classes"],
                             device=torch.device(device), image_size=tuple(meta["image_size"]))
    model.meta["weights"] = meta.get("weights", model.meta["weights"])
    load_checkpoint(model, ckpt)
    return model.eval(), cfg


def evaluate_run(path: str | Path, protocol: str | None = None, overrides: Mapping[str, Any] | Sequence[str] | str = (),
                 *, device: str | torch.device | None = None, progress: bool = False, write: bool = False
                 ) -> dict[str, dict[str, Any]]:
    """Metrics of a run folder or checkpoint on ``protocol``'s targets (default: the run's protocol).

    ``overrides`` (``key=value`` strings or a dict) change evaluation settings (``eval.rerank=true``,
    ``data.all_splits=true`` ...). ``write``: also write ``metrics/<target>.json`` into the run folder."""
    ckpt, cfg = _checkpoint_and_config(path)
    if isinstance(overrides, str):
        overrides = parse_overrides(overrides.split())
    elif not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    cfg = validate(apply_overrides(cfg, {**({"data.protocol": protocol} if protocol else {}), **dict(overrides)}))
    device = torch.device(device) if device is not None else resolve_device(cfg.device)
    model, _ = model_from_checkpoint(ckpt, device, cfg)
    data = build(cfg.data.protocol, split_index=cfg.data.split_index, all_splits=cfg.data.all_splits,
                 strict=cfg.data.strict)
    metrics = evaluate_model(model, data.targets, cfg, device, amp=bool(cfg.amp) and device.type == "cuda",
                             progress=progress)
    if write:
        run = RunDir(ckpt.parent.parent)
        for target, m in metrics.items():
            run.write_metrics(target, {**m, "checkpoint": str(ckpt)})
    return metrics
