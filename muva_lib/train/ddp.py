"""Distributed helpers: init from torchrun's environment, gathers, rank-0 gating; all no-ops in one process."""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Sequence

import torch
import torch.distributed as dist
from torch import Tensor, nn

__all__ = ["OutputAsDict", "sync_buffers", "DistInfo", "init_distributed", "from_env", "is_distributed", "barrier",
           "all_gather_cat", "gather_in_order", "broadcast_object", "all_reduce_mean", "shutdown"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: rank, world size, local rank (the GPU index under torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def from_env() -> DistInfo:
    """Rank / world size / local rank from torchrun's variables (one process when absent)."""
    return DistInfo(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                    int(os.environ.get("LOCAL_RANK", 0)))


def init_distributed(device_type: str = "cpu", timeout_s: int = 7200) -> DistInfo:
    """Join the process group torchrun set up (NCCL on CUDA, gloo on CPU); a no-op in one process or
    when a group already exists. Returns this process's :class:`DistInfo`. The timeout covers rank 0
    evaluating a large target alone while the others wait at a barrier."""
    info = from_env()
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s))
    return info


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def barrier() -> None:
    if is_distributed():
        dist.barrier()


def shutdown() -> None:
    """Leave the process group (if this process joined one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_gather_cat(x: Tensor) -> Tensor:
    """Concatenate x [n_r, ...] of every rank along dim 0 in rank order (sizes may differ); no gradient."""
    if not is_distributed():
        return x
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(sizes, n)
    sizes_i = [int(s) for s in sizes]
    padded = x.new_zeros((max(sizes_i), *x.shape[1:]))
    padded[:x.shape[0]] = x
    out = [torch.zeros_like(padded) for _ in sizes_i]
    dist.all_gather(out, padded.contiguous())
    return torch.cat([o[:s] for o, s in zip(out, sizes_i)])


def gather_in_order(x: Tensor, positions: Sequence[int] | Tensor, total: int) -> Tensor:
    """Rows x [n_r, ...] computed by this rank for dataset ``positions`` -> all rows [total, ...] in
    dataset order on every rank (each position must be covered by exactly one rank)."""
    pos = torch.as_tensor(list(positions) if not isinstance(positions, Tensor) else positions,
                          dtype=torch.long, device=x.device)
    all_x, all_pos = all_gather_cat(x), all_gather_cat(pos)
    if all_pos.numel() != total or torch.unique(all_pos).numel() != total:
        raise RuntimeError(f"gathered {all_pos.numel()} rows for {total} positions (shards overlap or miss rows)")
    out = all_x.new_empty((total, *x.shape[1:]))
    out[all_pos] = all_x
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s picklable object on every rank."""
    if not is_distributed():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def sync_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BN running statistics) to every rank. DDP broadcasts them before each
    forward, so after the last training step they differ by one local update; eval-mode passes that are
    gathered across ranks (the VPM-2 memory) must all use the same statistics."""
    if is_distributed():
        for buf in module.buffers():
            dist.broadcast(buf.data, src)


def all_reduce_mean(x: Tensor) -> Tensor:
    """Mean of x over ranks (a copy; x itself unchanged)."""
    if not is_distributed():
        return x
    y = x.detach().clone()
    dist.all_reduce(y)
    return y / dist.get_world_size()


class OutputAsDict(nn.Module):
    """Wraps a module whose forward returns a dataclass so that it returns a plain dict instead: DDP looks
    for the output tensors (to detect parameters without gradient) in tuples, lists and dicts only."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module

    def forward(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        out = self.module(*args, **kwargs)
        if not is_dataclass(out):
            raise TypeError(f"expected a dataclass output, got {type(out).__name__}")
        return {f.name: getattr(out, f.name) for f in fields(out)}
