"""``python -m muva_lib.bench pretrain``: pretraining throughput at 1 and 2 threads, and the step's achieved FLOP/s
against this CPU's matrix-multiply FLOP/s measured in the same run (the physical limit).

Per thread count: pairs/s of the full step (batch assembly + forward + backward + loss + AdamW), the FLOPs of
one forward + backward counted by ``torch.utils.flop_counter``, and where the time goes: batch assembly, the
image tower, the text tower (each forward + backward on its own), and the optimiser step (AdamW over every
parameter, the 49,408 x 256 token table included). Uses the corpus when it exists, else random batches.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable, Sequence

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..utils import set_threads
from .cfg import PretrainCfg
from .loop import corpus_dir, train_step
from .model import build_model, make_loss, param_groups
from .pairs import load_pairs, make_batch, plan_batch

__all__ = ["matmul_flops", "main"]


def _time(fn: Callable[[], object], repeat: int) -> float:
    fn()
    t = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t) / repeat


def matmul_flops(n: int = 1024, repeat: int = 10) -> float:
    """FLOP/s of a float32 [n, n] x [n, n] product with the current thread count (best of three timings)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = min(_time(lambda: torch.mm(a, b), repeat) for _ in range(3))
    return 2 * n ** 3 / best


def _random_batch(cfg: PretrainCfg, batch: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    img = torch.rand(batch, 3, cfg.height, cfg.width, generator=g) * 2 - 1
    tok = torch.zeros(batch, cfg.context_length, dtype=torch.long)
    tok[:, 0] = 49406
    tok[:, 1:27] = torch.randint(1, 49405, (batch, 26), generator=g)
    tok[:, 27] = 49407  # captions are 27 tokens long at the median
    return img, tok


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m muva_lib.bench pretrain", description=__doc__)
    p.add_argument("--batch", type=int, default=256, help="pairs per step (default 256, the shipped recipe's)")
    p.add_argument("--steps", type=int, default=3, help="timed steps per thread count (after one warm-up step)")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--loss", default=PretrainCfg().loss, choices=["siglip", "clip"])
    args = p.parse_args(argv)
    cfg = PretrainCfg(batch_size=args.batch, loss=args.loss)
    root = corpus_dir(cfg)
    data = load_pairs(root, cfg.context_length) if (root / "corpus.json").is_file() else None
    print(f"pretraining step, {cfg.arch} at {cfg.height}x{cfg.width}, text context {cfg.context_length}, batch "
          f"{args.batch}, {args.loss} loss; batches from {root if data is not None else 'random tensors'}")
    g = torch.Generator().manual_seed(0)
    rows = []
    for threads in args.threads:
        set_threads(threads)
        model = build_model(cfg)
        opt = torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=1e-4, betas=(cfg.beta1, cfg.beta2),
                                eps=cfg.eps)
        loss_fn = make_loss(cfg.loss)
        state = {"step": 0}

        def batch() -> tuple[torch.Tensor, torch.Tensor]:
            if data is None:
                return _random_batch(cfg, args.batch, g)
            state["step"] += 1
            return make_batch(data, plan_batch(data, state["step"], args.batch, 0))

        img, tok = batch()

        def step() -> None:
            train_step(model, loss_fn, opt, *batch())

        t_step = _time(step, args.steps)
        t_data = _time(batch, args.steps)

        def tower(encode: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> Callable[[], None]:
            def run() -> None:
                model.zero_grad(set_to_none=True)
                encode(x).square().mean().backward()
            return run

        t_img = _time(tower(model.encode_image, img), args.steps)
        t_txt = _time(tower(model.encode_text, tok), args.steps)
        model.zero_grad(set_to_none=False)
        for q in model.parameters():
            q.grad = torch.zeros_like(q)
        t_opt = _time(opt.step, args.steps)
        with FlopCounterMode(display=False) as fc:
            out = model(image=img, text=tok)
            loss_fn(out["image_features"], out["text_features"], out["logit_scale"], out.get("logit_bias")).backward()
        flops = fc.get_total_flops()
        peak = matmul_flops()
        rows.append((threads, args.batch / t_step, t_step, flops, flops / t_step, peak, t_data, t_img, t_txt, t_opt))
    print()
    print("| threads | pairs/s | step (s) | GFLOP/step | achieved GFLOP/s | matmul GFLOP/s | achieved / matmul "
          "| batch | image tower | text tower | AdamW | rest |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for th, pps, ts, fl, ach, peak, td, ti, tt, to in rows:
        rest = ts - td - ti - tt - to
        share = lambda x: f"{x:.3f} s ({x / ts:.0%})"  # noqa: E731
        print(f"| {th} | {pps:.1f} | {ts:.2f} | {fl / 1e9:.1f} | {ach / 1e9:.1f} | {peak / 1e9:.1f} | {ach / peak:.2f} "
              f"| {share(td)} | {share(ti)} | {share(tt)} | {share(to)} | {share(rest)} |")
    if len(rows) > 1:
        print(f"\n{rows[-1][0]} threads vs {rows[0][0]}: {rows[-1][1] / rows[0][1]:.2f}x the pairs/s")
    print("\n'rest': the loss, the logit-scale clamp and what the towers' separate timings do not share (each "
          "tower is timed with its own backward; in the step they run in one graph)")
    return 0
