"""``python -m muva_lib.bench encoder``: AM-MSA encoder vs the plain open_clip ViT, forward and forward+backward."""
from __future__ import annotations

import argparse
import time
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

from ..utils import resolve_device, set_threads
from .ammsa import AMMSAEncoder
from .clip_backbone import create_clip

__all__ = ["main", "count_params"]


def count_params(module: torch.nn.Module | Sequence[torch.nn.Parameter] | None) -> int:
    if module is None:
        return 0
    params = module.parameters() if isinstance(module, torch.nn.Module) else module
    return sum(p.numel() for p in params if p is not None)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _time(fn: Callable[[], None], device: torch.device) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m muva_lib.bench encoder", description=__doc__)
    ap.add_argument("--arch", default="ViT-B-16", help="open_clip model name (random weights)")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", default="256x128", help="HxW")
    ap.add_argument("--parts", type=int, default=3, help="R part tokens of the AM-MSA encoder")
    ap.add_argument("--rmp-heads", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2, help="torch threads (0: torch's default)")
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per case (best is reported)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    args = ap.parse_args(list(argv or []))
    set_threads(args.threads)
    device = resolve_device(args.device)
    h, w = (int(v) for v in args.size.lower().split("x"))
    torch.manual_seed(0)
    clip, _, _ = create_clip(args.arch, "", (h, w), device=device)
    visual = clip.visual
    visual.conv1.requires_grad_(False)  # as in training (frozen patch projection)
    enc = AMMSAEncoder(visual, args.parts, rmp_num_heads=args.rmp_heads).to(device)
    images = torch.randn(args.batch, 3, h, w, device=device)
    target = torch.rand(args.batch, args.parts, enc.num_patches, device=device) > 0.5

    def plain_fwd() -> None:
        with torch.no_grad():
            visual(images)

    def plain_step() -> None:
        visual(images).square().mean().backward()

    def ammsa_fwd() -> None:
        with torch.no_grad():
            enc(images)

    def ammsa_step() -> None:
        out = enc(images)
        loss = out.tokens.square().mean()
        for a in out.mask_logits:  # the mask loss: what trains the RMPs
            loss = loss + F.binary_cross_entropy_with_logits(a, target.float())
        loss.backward()

    cases = {"plain fwd": plain_fwd, "ammsa fwd": ammsa_fwd, "plain fwd+bwd": plain_step,
             "ammsa fwd+bwd": ammsa_step}
    for fn in cases.values():  # warm-up
        fn()
    best = {k: float("inf") for k in cases}
    for _ in range(args.repeats):  # interleaved, so drifting machine load hits both encoders alike
        for k, fn in cases.items():
            enc.zero_grad(set_to_none=True)
            best[k] = min(best[k], _time(fn, device))

    rmp = count_params(enc.rmp)
    layers = max(len(enc.rmp), 1)
    print(f"encoder benchmark: {args.arch} (random weights), batch {args.batch}, {h}x{w} "
          f"(grid {enc.grid_size[0]}x{enc.grid_size[1]}), R={args.parts}, RMP heads {args.rmp_heads}, "
          f"device {device}, threads {torch.get_num_threads()}, best of {args.repeats}")
    print(f"params: backbone (open_clip ViT) {count_params(visual) / 1e6:.2f} M | RMPs {rmp / 1e6:.2f} M "
          f"({rmp / layers / 1e6:.3f} M per layer x {len(enc.rmp)}) | part tokens + positions "
          f"{count_params([enc.part_tokens, enc.part_pos_embed]) / 1e3:.1f} k")
    print(f"{'':14s}{'plain ViT':>12s}{'AM-MSA':>12s}{'ratio':>8s}")
    for name in ("fwd", "fwd+bwd"):
        p, a = best[f"plain {name}"], best[f"ammsa {name}"]
        print(f"{name:14s}{p:11.3f}s{a:11.3f}s{a / p:7.2f}x")
    return 0
