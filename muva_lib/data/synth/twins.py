"""Leakage between the pretraining corpus and the benchmark: the benchmark's identities and attribute twins.

The attribute space is finite (about 4e8 outfits, far fewer under the clothing priors), so a corpus
identity can wear exactly the outfit of a benchmark identity without sharing any random stream: an
*attribute twin*. The corpus keeps every benchmark identity's outfit out of its draw (cheap: a set of
keys), and :func:`count_twins` measures what is left, also for near twins that differ in a few keys.
"""
from __future__ import annotations

from typing import Iterable, Mapping, Sequence

import numpy as np

from .domains import DOMAINS
from .generate import SynthCfg, plan_domain
from .identity import ATTRIBUTE_KEYS

__all__ = ["benchmark_identities", "attribute_key", "count_twins"]


def attribute_key(attrs: Mapping[str, str]) -> tuple[str, ...]:
    """An identity's outfit as a tuple over :data:`ATTRIBUTE_KEYS` (the key the generator keeps unique)."""
    return tuple(attrs[k] for k in ATTRIBUTE_KEYS)


def benchmark_identities(seed: int = 0, cfg: SynthCfg | None = None, domains: Iterable[str] = tuple(DOMAINS),
                         ) -> dict[str, dict[str, list[dict[str, str]]]]:
    """The attributes of the benchmark's people, drawn as ``python -m muva_lib synth`` draws them (no rendering).

    Returns ``{domain: {"train": [...], "test": [...], "distractor": [...]}}``, one attribute dict per
    identity (per distractor image for pid 0), in pid order.
    """
    cfg = cfg or SynthCfg()
    out: dict[str, dict[str, list[dict[str, str]]]] = {}
    for name in domains:
        info, jobs = plan_domain(DOMAINS[name], seed, cfg)
        first = {}
        groups: dict[str, list[dict[str, str]]] = {"train": [], "test": [], "distractor": []}
        for job in jobs:
            if job.pid == 0:
                groups["distractor"].append(dict(job.attributes))
            elif job.pid not in first:
                first[job.pid] = dict(job.attributes)
        for pid in sorted(first):
            groups[info[pid]["split"]].append(first[pid])
        out[name] = groups
    return out


def count_twins(reference: Sequence[Mapping[str, str]], corpus: Sequence[Mapping[str, str]], *,
                max_diff: int = 0) -> int:
    """How many ``reference`` identities have a ``corpus`` identity differing in at most ``max_diff`` of the
    :data:`ATTRIBUTE_KEYS` (0: an exact attribute twin). Pure; ``[R]`` x ``[C]`` attribute dicts -> count."""
    if not reference or not corpus:
        return 0
    codes: list[dict[str, int]] = [{} for _ in ATTRIBUTE_KEYS]

    def encode(rows: Sequence[Mapping[str, str]]) -> np.ndarray:  # [N, K] int codes, shared vocabulary per key
        return np.array([[codes[j].setdefault(r[k], len(codes[j])) for j, k in enumerate(ATTRIBUTE_KEYS)]
                         for r in rows], np.int32)

    ref, cor = encode(reference), encode(corpus)
    hits = 0
    for start in range(0, len(ref), 64):  # [64, C, K] at a time
        diff = (ref[start:start + 64, None, :] != cor[None, :, :]).sum(-1)
        hits += int((diff.min(axis=1) <= max_diff).sum())
    return hits
