"""DDP on CPU (gloo, 2 processes): the gather helpers and the gathered memory update, then a tiny stage-2 run
under ``torchrun`` compared with the one-process run of the same global batch.

What may differ, and why the tolerances are what they are: every loss is a mean over samples, so with
equal per-rank batches the averaged DDP gradient equals the global-batch gradient; what breaks that is
(1) BatchNorm batch statistics, taken per rank over half the batch (no SyncBatchNorm on CPU), which move
BN(f) and with it the ID, memory (temperature 0.01 amplifies it) and eval features, (2) batch-hard
triplet mining inside each rank's half batch (CLIP-ReID), (3) DDP keeps rank 0's BN running statistics,
and (4) the float summation order of the gradient all-reduce. The end-to-end test therefore switches
off the BN-dependent terms (w_id = w_memory = 0: i2t on pre-BN f + mask BCE / Dice) and leaves out the
BN buffers: losses then agree to 1e-5 relative, and every weight to within one Adam step of its group
(lr; x10 for the RMPs). Adam divides by the root of the second moment, so a 1e-8 gradient difference on
a near-zero gradient becomes a visible step difference: the largest measured after 18 steps was
0.32 lr (3.2e-5 at lr 1e-4, 3.2e-4 at lr 1e-3), all on attention biases. With the full MUVA recipe
the measured gap after two epochs was 5 % on the memory loss and below 1 % on the other terms at
lr 1e-4, 18 % and below 3.5 % at the smoke lr 1e-3; CLIP-ReID's per-rank triplet differs by ~25 %.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from muva_lib.config import resolve
from muva_lib.memory import PrototypeMemory
from muva_lib.train import load_run, train
from muva_lib.train.ddp import (DistInfo, all_gather_cat, all_reduce_mean, broadcast_object, from_env,
                                gather_in_order)


def _worker(rank: int, world: int, rdzv: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{rdzv}", rank=rank, world_size=world)
    try:
        x = torch.arange(rank * 10, rank * 10 + 2 + rank, dtype=torch.float32).view(-1, 1)  # 2 and 3 rows
        cat = all_gather_cat(x)
        positions = list(range(rank, 7, world))  # items 0, 2, 4, 6 on rank 0; 1, 3, 5 on rank 1
        rows = gather_in_order(torch.tensor(positions, dtype=torch.float32).view(-1, 1) * 100, positions, 7)
        obj = broadcast_object({"run": "/tmp/x"} if rank == 0 else None)
        mean = all_reduce_mean(torch.tensor([float(rank)]))
        g = torch.Generator().manual_seed(0)
        feats = F.normalize(torch.randn(8, 4, generator=g), dim=1)
        labels = torch.tensor([0, 0, 1, 1, 2, 2, 0, 1])
        mem = PrototypeMemory(F.normalize(torch.randn(3, 4, generator=g), dim=1))
        half = slice(rank * 4, rank * 4 + 4)
        mem.update(all_gather_cat(feats[half]), all_gather_cat(labels[half]))
        torch.save({"cat": cat, "rows": rows, "obj": obj, "mean": mean, "bank": mem.bank}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


def test_gathers_and_memory_update_across_two_ranks(tmp_path):
    mp.start_processes(_worker, args=(2, str(tmp_path / "rdzv"), str(tmp_path / "out")), nprocs=2, join=True,
                       start_method="fork")  # fork: no re-import of torch in the children (CPU only)
    res = [torch.load(f"{tmp_path / 'out'}.{r}", weights_only=True) for r in range(2)]
    for r in res:
        assert r["cat"].view(-1).tolist() == [0, 1, 10, 11, 12]
        assert r["rows"].view(-1).tolist() == [0, 100, 200, 300, 400, 500, 600]
        assert r["obj"] == {"run": "/tmp/x"} and r["mean"].item() == 0.5
    g = torch.Generator().manual_seed(0)
    feats = F.normalize(torch.randn(8, 4, generator=g), dim=1)
    one = PrototypeMemory(F.normalize(torch.randn(3, 4, generator=g), dim=1))
    one.update(feats, torch.tensor([0, 0, 1, 1, 2, 2, 0, 1]))
    assert torch.equal(res[0]["bank"], one.bank) and torch.equal(res[1]["bank"], one.bank)


def test_single_process_helpers_are_no_ops():
    x = torch.randn(3, 2)
    assert from_env() == DistInfo() or "RANK" in os.environ
    assert all_gather_cat(x) is x and broadcast_object(5) == 5
    assert torch.equal(gather_in_order(x, [2, 0, 1], 3), x[[1, 2, 0]])


@pytest.mark.slow
def test_torchrun_two_processes_match_one(train_env):
    # random init (model.pretrained=): the tolerances below were measured there; from the shipped pretrained
    # weights the same mechanism reached 1.69 lr on an attention bias after 18 steps (one CI run)
    overrides = [*train_env.overrides, "stage2.w_id=0", "stage2.w_memory=0", "model.pretrained="]
    cfg = resolve("muva", "smoke", train_env.protocol, overrides=overrides)
    one = train(cfg, run_dir=train_env.runs / "one", progress=False)
    torchrun = Path(sys.executable).with_name("torchrun")
    proc = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--rdzv-backend", "c10d", "--rdzv-endpoint", "localhost:0",
         "-m", "muva_lib", "train", "--protocol", train_env.protocol, "--method", "muva", "--preset", "smoke",
         "--no-progress", "--run-dir", str(train_env.runs / "two"), *overrides],
        capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = load_run(train_env.runs / "two")
    assert two.stage1 and [r["loss"] for r in two.stage1] == pytest.approx([r["loss"] for r in one.stage1], rel=1e-6)
    for a, b in zip(one.stage2, two.stage2, strict=True):
        for k in ("loss", "loss_i2t", "loss_mask_bce", "loss_mask_dice"):
            assert b[k] == pytest.approx(a[k], rel=1e-5), (k, a[k], b[k])
    sa = torch.load(train_env.runs / "one" / "checkpoints" / "final.pt", weights_only=True)["state"]
    sb = torch.load(train_env.runs / "two" / "checkpoints" / "final.pt", weights_only=True)["state"]
    lr = cfg.stage2.base_lr
    for comp, tensors in sa.items():
        for key, va in tensors.items():
            if "running_" in key or not va.is_floating_point():
                continue  # BN running statistics: rank 0's half batch under DDP
            step = lr * (cfg.stage2.rmp_lr_mult if key.startswith("image_encoder.rmp.") else 1.0)
            assert (va - sb[comp][key]).abs().max().item() < step, key
    assert two.metrics["synth-b"]["mAP"] == pytest.approx(one.metrics["synth-b"]["mAP"], abs=0.02)
