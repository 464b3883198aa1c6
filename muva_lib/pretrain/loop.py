"""The pretraining loop: AdamW with open_clip's warm-up + cosine schedule, open_clip's loss, a run folder with
CSV and TensorBoard logs, and a ``last.pt`` that a killed run resumes from with the same result.

Run folder (``runs/pretrain/<name>/``)::

    config.json        the PretrainCfg (a resumed run must match it)
    log.csv            step, epoch, lr, loss, logit_scale, logit_bias, pairs_per_s, elapsed_s
    tb/                TensorBoard scalars (the same numbers)
    last.pt            model + optimiser + step + log rows (checksummed; rewritten every ckpt_every steps)
    final.safetensors  the open_clip state dict at the end (fp32, with grid / activation metadata)
    summary.json       steps, pairs, wall time, pairs/s, threads, processes, final loss (written last)
"""
from __future__ import annotations

import csv
import json
import math
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from open_clip_train.scheduler import cosine_lr

from ..models.clip_backbone import arch_quick_gelu, save_clip_weights
from ..models.weights import read_verified, serialize_verified
from ..paths import data_root, runs_root
from ..train.ddp import all_reduce_mean, from_env, init_distributed, shutdown
from ..train.rundir import tb_writer, write_csv_rows
from ..utils import atomic_write_bytes, atomic_write_json, resolve_device, set_threads
from .cfg import PretrainCfg, cfg_from_dict
from .model import build_model, clamp_logit_scale, make_loss, param_groups
from .pairs import PairData, load_pairs, make_batch, plan_batch

__all__ = ["LOG_FIELDS", "default_run_dir", "train_step", "pretrain", "read_log", "read_summary"]

LOG_FIELDS = ("step", "epoch", "lr", "loss", "logit_scale", "logit_bias", "pairs_per_s", "elapsed_s")
_CKPT_FORMAT = "muva_lib.pretrain_state/1"


def default_run_dir(name: str) -> Path:
    return runs_root() / "pretrain" / name


def corpus_dir(cfg: PretrainCfg) -> Path:
    return Path(cfg.corpus) if cfg.corpus else data_root() / "synth-pretrain"


def train_step(model: torch.nn.Module, loss_fn: torch.nn.Module, opt: torch.optim.Optimizer, img: torch.Tensor,
               tok: torch.Tensor, scaler: torch.amp.GradScaler | None = None, amp: bool = False) -> float:
    """One optimiser step on images [b, 3, H, W] and tokens [b, L]; returns the loss (this process's)."""
    opt.zero_grad(set_to_none=True)
    with torch.autocast(device_type=img.device.type, dtype=torch.float16, enabled=amp):
        out = model(image=img, text=tok)
        loss = loss_fn(out["image_features"], out["text_features"], out["logit_scale"], out.get("logit_bias"))
    if scaler is not None:
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
    else:
        loss.backward()
        opt.step()
    clamp_logit_scale(model)
    return float(loss.detach())


def read_log(run: str | Path) -> list[dict[str, float]]:
    """The rows of ``log.csv`` as numbers."""
    with open(Path(run) / "log.csv", newline="") as fh:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]


def read_summary(run: str | Path) -> dict[str, Any] | None:
    p = Path(run) / "summary.json"
    return json.loads(p.read_text()) if p.is_file() else None


def _check_config(run: Path, cfg: PretrainCfg) -> None:
    path = run / "config.json"
    if not path.is_file():
        return
    old = cfg_from_dict(json.loads(path.read_text()))
    ignored = {"threads", "device", "log_every"}
    diffs = [f"{k}: run {v!r}, now {getattr(cfg, k)!r}" for k, v in old.to_dict().items()
             if k not in ignored and getattr(cfg, k) != v]
    if diffs:
        raise ValueError(f"{run} holds a pretraining run with another config; pick another --out or match it:\n  "
                         + "\n  ".join(diffs))


def pretrain(cfg: PretrainCfg, run: str | Path, *, data: PairData | None = None, progress: bool = True,
             stop_after: int | None = None, on_log: Callable[[Mapping[str, Any]], None] | None = None
             ) -> dict[str, Any]:
    """Pretrain into ``run`` (created, or resumed from its ``last.pt``); returns the summary.

    ``data``: pairs already in memory (tests; default: the corpus of ``cfg``). ``stop_after``: return after the
    checkpoint of that step as a killed run would have left it (tests of resuming). Under ``torchrun`` every
    process trains on its consecutive slice of each global batch (gloo on CPU, NCCL on CUDA); rank 0 writes."""
    run = Path(run)
    dist_info = from_env()
    device = resolve_device(cfg.device)
    if dist_info.enabled and device.type == "cuda":
        device = torch.device("cuda", dist_info.local_rank)
    init_distributed(device.type)
    main = dist_info.is_main
    try:
        set_threads(cfg.threads)
        if cfg.batch_size % dist_info.world_size:
            raise ValueError(f"batch_size {cfg.batch_size} is not divisible by {dist_info.world_size} processes")
        done = read_summary(run)
        _check_config(run, cfg)
        if done is not None:
            return done
        if main:
            run.mkdir(parents=True, exist_ok=True)
            atomic_write_json(run / "config.json", cfg.to_dict())
        data = data if data is not None else load_pairs(corpus_dir(cfg), cfg.context_length)
        model = build_model(cfg).to(device)
        opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                                eps=cfg.eps)
        amp = cfg.amp and device.type == "cuda"
        scaler = torch.amp.GradScaler("cuda") if amp else None
        step, rows, elapsed = 0, [], 0.0
        ckpt = run / "last.pt"
        if ckpt.is_file():
            state = read_verified(ckpt, "delete it to start the run again", lambda b: b.get("format") == _CKPT_FORMAT,
                                  "pretraining checkpoint")
            model.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            if scaler is not None and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            step, rows, elapsed = int(state["step"]), list(state["rows"]), float(state["elapsed"])
        if dist_info.enabled:
            model = torch.nn.parallel.DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None)
        loss_fn = make_loss(cfg.loss, dist_info.rank, dist_info.world_size)
        schedule = cosine_lr(opt, cfg.lr, cfg.warmup_steps, cfg.steps)
        per_rank = cfg.batch_size // dist_info.world_size
        rows_of_rank = slice(dist_info.rank * per_rank, (dist_info.rank + 1) * per_rank)
        per_epoch = data.num_ids // cfg.batch_size
        writer = tb_writer(run / "tb", step) if main else None
        model.train()
        from tqdm.auto import tqdm

        bar = tqdm(total=cfg.steps, initial=step, disable=not (progress and main), desc="pretrain", unit="step")
        t0, pairs_since, t_since = time.perf_counter() - elapsed, 0, time.perf_counter()
        try:
            while step < cfg.steps:
                lr = schedule(step)
                plan = plan_batch(data, step, cfg.batch_size, cfg.seed, cfg.flip)
                img, tok = make_batch(data, plan, rows_of_rank, device)
                loss = train_step(model, loss_fn, opt, img, tok, scaler, amp)
                if not math.isfinite(loss):
                    raise FloatingPointError(f"pretraining loss is {loss} at step {step}: lower lr and start again")
                step += 1
                pairs_since += cfg.batch_size
                bar.update(1)
                if step % cfg.log_every == 0 or step == cfg.steps:
                    if dist_info.enabled:  # the mean of the ranks' losses is the one-process loss of the batch
                        loss = float(all_reduce_mean(torch.tensor([loss], device=device)))
                    now = time.perf_counter()
                    inner = getattr(model, "module", model)
                    bias = inner.logit_bias
                    row = {"step": step, "epoch": round(step / per_epoch, 3), "lr": lr, "loss": round(loss, 6),
                           "logit_scale": round(float(inner.logit_scale.detach().exp()), 4),
                           "logit_bias": round(float(bias.detach()), 4) if bias is not None else "",
                           "pairs_per_s": round(pairs_since / max(now - t_since, 1e-9), 2),
                           "elapsed_s": round(now - t0, 2)}
                    pairs_since, t_since = 0, now
                    rows.append(row)
                    bar.set_postfix(loss=f"{loss:.4f}", scale=f"{row['logit_scale']:.1f}")
                    if writer is not None:
                        for k in ("loss", "lr", "logit_scale", "logit_bias", "pairs_per_s"):
                            if row[k] != "":
                                writer.add_scalar(f"pretrain/{k}", row[k], step)
                    if on_log is not None:
                        on_log(row)
                if main and (step % cfg.ckpt_every == 0 or step == cfg.steps):
                    inner = getattr(model, "module", model)
                    write_csv_rows(run / "log.csv", rows)
                    blob = {"format": _CKPT_FORMAT, "step": step, "model": inner.state_dict(),
                            "optimizer": opt.state_dict(), "scaler": scaler.state_dict() if scaler else {},
                            "rows": rows, "elapsed": time.perf_counter() - t0}
                    atomic_write_bytes(ckpt, serialize_verified(blob))
                if stop_after is not None and step >= stop_after and step % cfg.ckpt_every == 0:
                    return {"stopped_at": step}
        finally:
            bar.close()
            if writer is not None:
                writer.close()
        wall = time.perf_counter() - t0
        summary = {"steps": cfg.steps, "pairs": cfg.steps * cfg.batch_size, "wall_s": round(wall, 1),
                   "pairs_per_s": round(cfg.steps * cfg.batch_size / max(wall, 1e-9), 2),
                   "threads": torch.get_num_threads(), "processes": dist_info.world_size, "device": str(device),
                   "final_loss": rows[-1]["loss"] if rows else None, "corpus": str(data.root),
                   "identities": data.num_ids, "images": int(data.images.shape[0]), "captions": len(data.texts)}
        if main:
            inner = getattr(model, "module", model)
            save_clip_weights(inner, run / "final.safetensors", quick_gelu=arch_quick_gelu(cfg.arch), arch=cfg.arch)
            atomic_write_json(run / "summary.json", summary)
        return summary
    finally:
        shutdown()
