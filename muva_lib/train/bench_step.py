"""``python -m muva_lib.bench train``: stage-1 epoch with cached features vs re-running the image encoder per
batch, and the stage-2 step of MUVA vs CLIP-ReID (random weights and images, no disk)."""
from __future__ import annotations

import argparse
import time
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..config import resolve
from ..batches.sampler import PKSampler
from ..losses import cluster_nce
from ..memory import PrototypeMemory, visual_prototypes
from ..models.factory import create_model
from ..utils import autocast, resolve_device, set_threads
from .loop import StepOutput, make_scaler, train_epoch
from .optim import make_adam, stage1_param_groups, stage1_trainable, stage2_param_groups, stage2_trainable
from .stage2 import stage2_losses, stage2_weights

__all__ = ["main"]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _best(fn: Callable[[], None], device: torch.device, repeats: int) -> float:
    fn()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        best = min(best, time.perf_counter() - t0)
    return best


def _overrides(args: argparse.Namespace) -> dict:
    h, w = (int(v) for v in args.size.lower().split("x"))
    return {"model.arch": args.arch, "model.pretrained": "", "data.height": h, "data.width": w,
            "model.text_context_length": args.context, "amp": args.amp}


def bench_stage1(args: argparse.Namespace, device: torch.device) -> tuple[float, float, int]:
    """Seconds per stage-1 epoch (MUVA, cluster-NCE) with cached features and with the image encoder
    re-run on every batch; and the number of batches."""
    cfg = resolve("muva", "smoke", overrides=_overrides(args))
    torch.manual_seed(0)
    k = cfg.data.num_instances
    model = create_model(cfg, args.ids, device=device).eval()
    n = args.ids * args.images_per_id
    h, w = cfg.data.height, cfg.data.width
    images = torch.randn(n, 3, h, w, device=device)
    labels = torch.arange(args.ids, device=device).repeat_interleave(args.images_per_id)
    masks = torch.rand(n, model.num_parts, model.image_encoder.num_patches, device=device) > 0.5
    amp = cfg.amp and device.type == "cuda"

    def encode(idx: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), autocast(device, amp):
            return model(images[idx], part_masks=masks[idx]).feat.float()

    feats = torch.cat([encode(i) for i in torch.arange(n, device=device).split(args.batch)])
    protos = visual_prototypes(feats, labels, args.ids)
    stage1_trainable(model)
    opt = make_adam(stage1_param_groups(model, cfg.stage1))
    scaler = make_scaler(device, amp)
    sampler = PKSampler(labels.tolist(), args.batch, k, seed=0)
    batches = [torch.tensor([i for i, _ in b], device=device) for b in sampler.batches()]

    def step(idx: torch.Tensor, recompute: bool) -> StepOutput:
        if recompute:
            encode(idx)  # what a loop without the cache pays for each batch
        y = labels[idx]
        return StepOutput({"cluster_nce": cluster_nce(model.text_features(y).flatten(1), protos, y)})

    def epoch(recompute: bool) -> Callable[[], None]:
        return lambda: train_epoch(lambda b: step(b, recompute), batches, {"cluster_nce": 1.0}, opt, scaler,
                                   device=device, amp=amp, progress=False)
    return _best(epoch(False), device, args.repeats), _best(epoch(True), device, args.repeats), len(batches)


def bench_stage2(args: argparse.Namespace, device: torch.device, method: str) -> float:
    """Seconds per stage-2 optimiser step (forward, every loss term, backward, Adam; MUVA's memory update)."""
    cfg = resolve(method, "smoke", overrides=_overrides(args))
    torch.manual_seed(0)
    model = create_model(cfg, args.ids, device=device)
    weights = stage2_weights(cfg)
    amp = cfg.amp and device.type == "cuda"
    with torch.no_grad():
        tpm = model.all_text_features().flatten(1).float()
    stage2_trainable(model, cfg.model.freeze_patch_proj)
    model.train()
    opt = make_adam(stage2_param_groups(model, cfg.stage2))
    scaler = make_scaler(device, amp)
    b = args.batch
    images = torch.randn(b, 3, cfg.data.height, cfg.data.width, device=device)
    labels = torch.arange(b // cfg.data.num_instances, device=device).repeat_interleave(cfg.data.num_instances)
    masks = torch.rand(b, model.num_parts, model.image_encoder.num_patches, device=device) > 0.5
    memory = PrototypeMemory(F.normalize(torch.randn(args.ids, model.image_encoder.feat_dim, device=device), dim=1))

    def step(_: int) -> StepOutput:
        out = model(images)
        losses = stage2_losses(out, labels, masks, weights, cfg, tpm, memory.bank)
        if "memory" in weights:
            memory.update(F.normalize(out.bn_feat.detach().float(), dim=1), labels)
        return StepOutput(losses, size=b)

    def steps() -> None:
        train_epoch(step, range(args.steps), weights, opt, scaler, device=device, amp=amp, progress=False)
    return _best(steps, device, args.repeats) / args.steps


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m muva_lib.bench train", description=__doc__)
    ap.add_argument("--arch", default="muva-tiny", help="open_clip model name (random weights), e.g. ViT-B-16")
    ap.add_argument("--size", default="128x64", help="HxW input size (ViT-B-16: 256x128)")
    ap.add_argument("--batch", type=int, default=32, help="batch size (P x 4); the paper uses 64")
    ap.add_argument("--ids", type=int, default=32, help="training identities")
    ap.add_argument("--images-per-id", type=int, default=8, help="images per identity in the stage-1 epoch")
    ap.add_argument("--context", type=int, default=16, help="text context length (smoke 16; ViT-B-16: 77)")
    ap.add_argument("--steps", type=int, default=2, help="stage-2 steps per timed run")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs per case (best is reported)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (0: torch's default)")
    ap.add_argument("--device", default="auto", help="cpu | cuda | auto")
    ap.add_argument("--no-amp", dest="amp", action="store_false", help="fp32 on CUDA too")
    args = ap.parse_args(list(argv or []))
    set_threads(args.threads)
    device = resolve_device(args.device)
    print(f"train benchmark: {args.arch} (random weights), {args.size}, batch {args.batch}, {args.ids} ids x "
          f"{args.images_per_id} images, device {device}, threads {torch.get_num_threads()}, "
          f"amp {args.amp and device.type == 'cuda'}, best of {args.repeats}")
    cached, recompute, nb = bench_stage1(args, device)
    print(f"stage-1 epoch ({nb} batches): cached features {cached:.3f}s | image encoder per batch "
          f"{recompute:.3f}s | ratio {recompute / cached:.2f}x")
    muva, clipreid = bench_stage2(args, device, "muva"), bench_stage2(args, device, "clipreid")
    print(f"stage-2 step: MUVA {muva:.3f}s | CLIP-ReID {clipreid:.3f}s | ratio {muva / clipreid:.2f}x")
    return 0
