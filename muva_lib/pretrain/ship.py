"""Shipping a finished pretraining run: its weights packed (``models.packed_weights``) into the package's
``assets/pretrained/`` with a manifest that says where they came from and what they score zero-shot, and the
run's ``log.csv`` (its curves; notebook 07 draws them)."""
from __future__ import annotations

import json
import platform
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import open_clip
import torch
from safetensors.torch import load_file

from ..data.synth.corpus import CORPUS_VERSION
from ..data.synth.generate import GENERATOR_VERSION
from ..eval.zeroshot.check import ZeroShotCfg, run_zeroshot
from ..models.clip_backbone import shipped_dir
from ..models.packed_weights import file_sha256, read_metadata, save_packed
from ..train.rundir import git_commit
from ..utils import atomic_write_json, atomic_write_text
from .cfg import PretrainCfg, cfg_from_dict
from .loop import corpus_dir, read_summary

__all__ = ["SHIPPED_FILE", "ZEROSHOT_DATASETS", "reproduce_command", "ship"]

SHIPPED_FILE = "muva-tiny-synth.safetensors"
ZEROSHOT_DATASETS = ("synth-a", "synth-b", "synth-c")
#: config fields that do not change the weights (kept out of the reproducing command)
_NOT_RECIPE = {"corpus", "threads", "device", "log_every", "amp"}


def reproduce_command(cfg: PretrainCfg) -> str:
    """``python -m muva_lib pretrain --preset default k=v ...`` with every recipe field that differs from the
    default (the thread count is named separately: the float sums, and so the bits, depend on it)."""
    base = PretrainCfg()
    extra = [f"{f.name}={getattr(cfg, f.name)}" for f in fields(cfg)
             if f.name not in _NOT_RECIPE and getattr(cfg, f.name) != getattr(base, f.name)]
    return " ".join(["python -m muva_lib pretrain --preset default", *extra, f"threads={cfg.threads}"])


def _corpus_command(corpus: dict[str, Any]) -> str:
    args = corpus.get("arguments", {})
    parts = [f"--seed {corpus.get('seed', 0)}", f"--ids {args.get('ids')}",
             f"--images-per-id {args.get('images_per_id')}"]
    parts += [f"--exclude-style {s}" for s in args.get("exclude_style", [])]
    return "python -m muva_lib synth-pretrain " + " ".join(parts)


def ship(run: str | Path, *, out_dir: str | Path | None = None, datasets: tuple[str, ...] = ZEROSHOT_DATASETS,
         progress: bool = True) -> dict[str, Any]:
    """Pack ``run``'s ``final.safetensors`` into ``out_dir`` (default: the shipped folder), measure the packed
    model zero-shot on ``datasets`` (and the unpacked fp32 one on the first, to show what float16 storage
    costs), and write ``manifest.json``. Returns the manifest."""
    run = Path(run)
    summary = read_summary(run)
    if summary is None or not (run / "final.safetensors").is_file():
        raise FileNotFoundError(f"{run}: not a finished pretraining run (no summary.json / final.safetensors); "
                                "run `python -m muva_lib pretrain` to the end first")
    cfg = cfg_from_dict(json.loads((run / "config.json").read_text()))
    out = Path(out_dir) if out_dir is not None else shipped_dir()
    out.mkdir(parents=True, exist_ok=True)
    path = out / SHIPPED_FILE
    meta = read_metadata(run / "final.safetensors")  # what save_clip_weights wrote: the grid and the activation
    grid = tuple(int(v) for v in meta["grid"].split("x"))
    save_packed(load_file(str(run / "final.safetensors")), path, token_seed=cfg.token_seed,
                quick_gelu=meta["quick_gelu"] == "true", arch=cfg.arch, grid=grid)
    zeroshot, floor = {}, {}
    for name in datasets:
        zs = run_zeroshot(ZeroShotCfg(dataset=name, weights=str(path), height=cfg.height, width=cfg.width),
                          progress=progress)
        zeroshot[name] = {k: v for k, v in zs.items() if k not in ("config", "weights")}
        # the same architecture at random init, same text context: the floor the shipped numbers stand on
        zs = run_zeroshot(ZeroShotCfg(dataset=name, weights="random", height=cfg.height, width=cfg.width,
                                      context_length=cfg.context_length), progress=progress)
        floor[name] = {k: v for k, v in zs.items() if k not in ("config", "weights", "per_attribute")}
    fp32 = {}
    if datasets:
        zs = run_zeroshot(ZeroShotCfg(dataset=datasets[0], weights=str(run / "final.safetensors"), height=cfg.height,
                                      width=cfg.width), progress=progress)
        fp32 = {"dataset": datasets[0], **{k: zs[k] for k in ("t2i_r1", "t2i_r10", "t2i_map", "attr_ma",
                                                              "binding_acc", "part_pointing", "reid_map", "reid_r1")}}
    corpus_path = Path(summary.get("corpus") or corpus_dir(cfg))
    corpus = json.loads((corpus_path / "corpus.json").read_text()) if (corpus_path / "corpus.json").is_file() else {}
    manifest = {
        "file": SHIPPED_FILE, "sha256": file_sha256(path), "bytes": path.stat().st_size,
        "format": "muva_lib.packed_clip/1 (float16 tensors; token rows that moved, the rest rebuilt from token_seed)",
        "arch": cfg.arch, "image_size": [cfg.height, cfg.width], "context_length": cfg.context_length,
        "command": reproduce_command(cfg), "corpus_command": _corpus_command(corpus),
        "corpus": {"version": corpus.get("version", CORPUS_VERSION), "generator_version": corpus.get(
            "generator_version", GENERATOR_VERSION), "seed": corpus.get("seed"), "arguments": corpus.get("arguments"),
            "images": corpus.get("images"), "captions": summary.get("captions"), "leakage": corpus.get("leakage")},
        "config": cfg.to_dict(), "training": summary, "git": git_commit(),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "python": sys.version.split()[0], "torch": torch.__version__, "open_clip": open_clip.__version__},
        "zeroshot": zeroshot, "zeroshot_random_init": floor, "zeroshot_fp32_unpacked": fp32,
    }
    atomic_write_text(out / "log.csv", (run / "log.csv").read_text())  # the curves of notebook 07
    atomic_write_json(out / "manifest.json", manifest)
    return manifest
