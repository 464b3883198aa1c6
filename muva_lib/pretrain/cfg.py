"""The pretraining recipe as one explicit dataclass, its presets and ``key=value`` overrides."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping, Sequence

__all__ = ["LOSSES", "PretrainCfg", "PRESETS", "preset", "apply_overrides", "cfg_from_dict"]

#: open_clip's contrastive losses we can train with
LOSSES = ("siglip", "clip")


@dataclass(frozen=True)
class PretrainCfg:
    """Contrastive image-caption pretraining of an open_clip model on the synthetic corpus.

    Batches hold ``batch_size`` distinct identities, one image and one of its captions each, so no two pairs
    of a batch show the same person (the sampler's answer to "captions of one identity are not negatives").
    Length is counted in optimiser steps; an "epoch" is one pass over the identities (``ids // batch_size``
    steps). Everything random is a function of ``seed`` and the step, so a resumed run repeats exactly.
    """

    corpus: str = ""  # corpus folder ('' = <data>/synth-pretrain)
    arch: str = "muva-tiny"  # open_clip model config
    height: int = 128  # image size the model is built for (the corpus renders 128x64)
    width: int = 64
    context_length: int = 40  # text context (the corpus's longest caption is 40 tokens with start and end)
    loss: str = "clip"  # clip (open_clip.loss.ClipLoss) | siglip (open_clip.loss.SigLipLoss); measured: README
    init_logit_scale: float = 2.659260  # log(1/0.07), CLIP's init (SigLIP's paper: log 10 = 2.302585)
    init_logit_bias: float = -10.0  # SigLIP only (its paper's init)
    batch_size: int = 256  # global batch (pairs), split evenly over processes
    steps: int = 700  # sized to the 60-minute budget on 2 cores (python -m muva_lib.bench pretrain)
    warmup_steps: int = 100
    lr: float = 1e-3
    weight_decay: float = 0.1  # AdamW; not on gains, biases, logit scale / bias or the token table
    beta1: float = 0.9
    beta2: float = 0.98
    eps: float = 1e-6
    flip: float = 0.5  # horizontal-flip probability (the captions name no side)
    token_seed: int = 1234  # seed of the token table's init (its untouched rows are rebuilt from it)
    seed: int = 0  # model init, sampler and augmentation
    threads: int = 0  # torch intra-op threads (0: leave as is)
    device: str = "auto"
    amp: bool = True  # fp16 autocast + grad scaling on CUDA; CPU stays fp32
    log_every: int = 10  # steps between log rows
    ckpt_every: int = 50  # steps between last.pt writes

    def __post_init__(self) -> None:
        problems = [
            (self.loss not in LOSSES, f"loss={self.loss!r}; expected one of {', '.join(LOSSES)}"),
            (self.batch_size < 2, "batch_size must be >= 2"),
            (self.steps < 1, "steps must be >= 1"),
            (not 0 <= self.warmup_steps <= self.steps, "warmup_steps must be in 0..steps"),
            (self.lr <= 0, "lr must be > 0"),
            (self.context_length < 4, "context_length must be >= 4"),
            (not 0.0 <= self.flip <= 1.0, "flip must be in 0..1"),
            (self.log_every < 1 or self.ckpt_every < 1, "log_every and ckpt_every must be >= 1"),
        ]
        bad = [msg for cond, msg in problems if cond]
        if bad:
            raise ValueError("PretrainCfg: " + "; ".join(bad))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: named starting points: ``smoke`` (the tests: a few minutes on 2 cores) and ``default`` (the shipped run)
PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"batch_size": 32, "steps": 30, "warmup_steps": 5, "log_every": 5, "ckpt_every": 10},
    "default": {},
}


def cfg_from_dict(d: Mapping[str, Any]) -> PretrainCfg:
    """A config from its dict (``config.json`` of a run); unknown keys are an error naming them."""
    known = {f.name for f in fields(PretrainCfg)}
    unknown = sorted(set(d) - known)
    if unknown:
        raise ValueError(f"unknown pretraining config keys {unknown}; known: {', '.join(sorted(known))}")
    return PretrainCfg(**dict(d))


def preset(name: str) -> PretrainCfg:
    if name not in PRESETS:
        raise ValueError(f"unknown pretraining preset {name!r}; known: {', '.join(PRESETS)}")
    return PretrainCfg(**PRESETS[name])


def _parse(raw: str, like: Any) -> Any:
    if isinstance(like, bool):
        if raw.lower() in ("1", "true", "yes"):
            return True
        if raw.lower() in ("0", "false", "no"):
            return False
        raise ValueError(f"expected true or false, got {raw!r}")
    if isinstance(like, int):
        return int(raw)
    if isinstance(like, float):
        return float(raw)
    return raw if not raw.startswith('"') else json.loads(raw)


def apply_overrides(cfg: PretrainCfg, overrides: Sequence[str]) -> PretrainCfg:
    """``["lr=5e-4", "loss=clip"]`` applied to ``cfg``; a bad key or value raises naming it."""
    known = {f.name: getattr(cfg, f.name) for f in fields(cfg)}
    changes: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"override {item!r}: expected key=value")
        if key not in known:
            raise ValueError(f"override {item!r}: unknown key {key!r}; known: {', '.join(known)}")
        try:
            changes[key] = _parse(raw, known[key])
        except ValueError as exc:
            raise ValueError(f"override {item!r}: {exc}") from None
    return replace(cfg, **changes)
