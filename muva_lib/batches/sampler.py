"""Seeded batch samplers: P identities x K images (optionally split across DDP ranks) and shuffled fixed-size batches.

An epoch's batches are a pure function of (seed, epoch): the state to save for resuming is those two
numbers. Each yielded element is ``(dataset index, augmentation seed)`` so the per-sample random
augmentation is fixed by the sampler too, whatever the number of loader workers.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterator, Sequence

import numpy as np
import torch

__all__ = ["epoch_generator", "PKSampler", "ShuffledBatchSampler"]


def epoch_generator(seed: int, epoch: int, salt: int = 0) -> torch.Generator:
    """A torch.Generator seeded from (seed, epoch, salt) through NumPy's SeedSequence (well mixed)."""
    state = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(epoch), int(salt)]).generate_state(2, np.uint64)
    return torch.Generator().manual_seed(int(state[0] >> np.uint64(1)))


def _with_aug_seeds(batch: Sequence[int], g: torch.Generator) -> list[tuple[int, int]]:
    seeds = torch.randint(0, 2**62, (len(batch),), generator=g).tolist()
    return list(zip((int(i) for i in batch), seeds))


class PKSampler:
    """Batch sampler of P identities x K images (``batch_size = P * K``), CLIP-ReID / MUVA style.

    Per epoch: each id's image indices are shuffled (ids with fewer than K images are sampled with
    replacement up to K) and cut into chunks of K (a remainder shorter than K is dropped); while at
    least P ids have chunks left, P of them are drawn at random and each gives its next chunk. A batch
    lists its P chunks one after the other. With ``world_size > 1`` every rank builds the same global
    batches and yields its contiguous slice of ``batch_size / world_size`` (whole identities: the
    slice must be a multiple of K), so the ranks' batches partition the global one.
    Call :meth:`set_epoch` before iterating; ``state_dict`` / ``load_state_dict`` round-trip it.
    """

    def __init__(self, labels: Sequence[int], batch_size: int, num_instances: int, seed: int = 0,
                 rank: int = 0, world_size: int = 1, salt: int = 0):
        if batch_size % num_instances:
            raise ValueError(f"batch_size {batch_size} is not a multiple of num_instances {num_instances}")
        if batch_size % world_size or (batch_size // world_size) % num_instances:
            raise ValueError(f"batch_size {batch_size} must split into {world_size} rank slices of whole "
                             f"identities (multiples of num_instances {num_instances})")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
        self.labels = [int(x) for x in labels]
        self.batch_size, self.num_instances = batch_size, num_instances
        self.num_ids_per_batch = batch_size // num_instances
        self.seed, self.rank, self.world_size, self.salt = seed, rank, world_size, salt
        self.epoch = 0
        by_id: dict[int, list[int]] = defaultdict(list)
        for i, y in enumerate(self.labels):
            by_id[y].append(i)
        self.index_by_id = dict(sorted(by_id.items()))
        if len(self.index_by_id) < self.num_ids_per_batch:
            raise ValueError(f"{len(self.index_by_id)} identities cannot fill batches of "
                             f"{self.num_ids_per_batch} ids x {num_instances}")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "epoch": self.epoch, "salt": self.salt, "batch_size": self.batch_size,
                "num_instances": self.num_instances}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        mine = self.state_dict()
        diff = [k for k in ("seed", "salt", "batch_size", "num_instances") if state.get(k) != mine[k]]
        if diff:
            pairs = ", ".join(f"{k} {state.get(k)} != {mine[k]}" for k in diff)
            raise ValueError(f"sampler state does not fit: {pairs}")
        self.epoch = int(state["epoch"])

    def global_batches(self, g: torch.Generator | None = None) -> list[list[int]]:
        """The epoch's global batches of dataset indices (every rank computes the same list)."""
        g = g if g is not None else epoch_generator(self.seed, self.epoch, self.salt)
        k = self.num_instances
        chunks: dict[int, list[list[int]]] = {}
        for pid, idxs in self.index_by_id.items():
            idxs = torch.tensor(idxs)
            if len(idxs) < k:
                idxs = idxs[torch.randint(0, len(idxs), (k,), generator=g)]
            idxs = idxs[torch.randperm(len(idxs), generator=g)].tolist()
            chunks[pid] = [idxs[i:i + k] for i in range(0, len(idxs) - k + 1, k)]
        available = [pid for pid in chunks if chunks[pid]]
        batches: list[list[int]] = []
        while len(available) >= self.num_ids_per_batch:
            pick = torch.randperm(len(available), generator=g)[:self.num_ids_per_batch].tolist()
            chosen = [available[i] for i in pick]
            batches.append([i for pid in chosen for i in chunks[pid].pop(0)])
            available = [pid for pid in available if chunks[pid]]
        return batches

    def batches(self) -> list[list[tuple[int, int]]]:
        """This rank's batches of ``(index, augmentation seed)`` for the current epoch."""
        g = epoch_generator(self.seed, self.epoch, self.salt)
        out = []
        per_rank = self.batch_size // self.world_size
        for batch in self.global_batches(g):
            with_seeds = _with_aug_seeds(batch, g)  # drawn for the global batch: the same on every rank
            out.append(with_seeds[self.rank * per_rank:(self.rank + 1) * per_rank])
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        return iter(self.batches())

    def __len__(self) -> int:
        return len(self.global_batches())


class ShuffledBatchSampler:
    """A random permutation of ``range(n)`` per epoch cut into batches of ``batch_size``; the last,
    shorter batch is kept (CLIP-ReID stage 1 over cached features). Yields lists of indices."""

    def __init__(self, n: int, batch_size: int, seed: int = 0, salt: int = 0):
        if n < 1 or batch_size < 1:
            raise ValueError(f"need n >= 1 and batch_size >= 1, got {n}, {batch_size}")
        self.n, self.batch_size, self.seed, self.salt = n, batch_size, seed, salt
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def state_dict(self) -> dict[str, Any]:
        return {"seed": self.seed, "epoch": self.epoch, "salt": self.salt, "n": self.n, "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if (state.get("seed"), state.get("n"), state.get("batch_size")) != (self.seed, self.n, self.batch_size):
            raise ValueError(f"sampler state {state} does not fit {self.state_dict()}")
        self.epoch = int(state["epoch"])

    def __iter__(self) -> Iterator[list[int]]:
        perm = torch.randperm(self.n, generator=epoch_generator(self.seed, self.epoch, self.salt)).tolist()
        return iter([perm[i:i + self.batch_size] for i in range(0, self.n, self.batch_size)])

    def __len__(self) -> int:
        return -(-self.n // self.batch_size)
