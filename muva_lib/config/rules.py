"""What each config field may hold: :class:`Rule`, the rule builders and :data:`FIELD_RULES`, one rule per
dotted key. Choice lists owned by the stage that implements them are read when a value is checked."""
from __future__ import annotations

import importlib
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from .presets import PRESETS, _registry

__all__ = ["Rule", "FIELD_RULES", "STAGE1_LOSSES", "MASK_LOSSES", "ACTIVATIONS", "GRID_INTERPOLATIONS"]


@dataclass(frozen=True)
class Rule:
    """What one config field may hold: ``check(value)`` is True when it fits; ``allowed`` says what fits
    (a string, or a function returning one, so that enumerations owned by other modules are read when a
    value is checked, not when this module is imported); ``hint(value)`` may add advice for a bad value."""

    check: Callable[[Any], bool]
    allowed: str | Callable[[], str]
    hint: Callable[[Any], str] | None = None

    def describe(self) -> str:
        return self.allowed() if callable(self.allowed) else self.allowed


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _int(lo: int = 0, hi: int | None = None) -> Rule:
    text = f"an integer >= {lo}" if hi is None else f"an integer in {lo}..{hi}"
    return Rule(lambda v: _is_int(v) and v >= lo and (hi is None or v <= hi), text)


def _num(lo: float | None = None, hi: float | None = None, lo_open: bool = False, hi_open: bool = False) -> Rule:
    """A finite number in the interval (``lo_open`` / ``hi_open``: the end is excluded)."""
    def check(v: Any) -> bool:
        return (_is_num(v) and (lo is None or (v > lo if lo_open else v >= lo))
                and (hi is None or (v < hi if hi_open else v <= hi)))
    if lo is not None and hi is not None:
        where = f" in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    elif lo is not None:
        where = f" {'>' if lo_open else '>='} {lo:g}"
    elif hi is not None:
        where = f" {'<' if hi_open else '<='} {hi:g}"
    else:
        where = ""
    return Rule(check, f"a finite number{where}")


_BOOL = Rule(lambda v: isinstance(v, bool), "true or false")
_ANY_STR = Rule(lambda v: isinstance(v, str), "any string")
_PROB = _num(0.0, 1.0)  # a probability / share in [0, 1]
_POS = _num(0.0, lo_open=True)  # a finite number > 0
_NONNEG = _num(0.0)  # a finite number >= 0


def _choice(values: Callable[[], Iterable[str]] | Iterable[str]) -> Rule:
    """One of ``values`` (or of what the function returns: a list owned by the module that uses the field)."""
    get = values if callable(values) else (lambda v=tuple(values): v)
    return Rule(lambda v: isinstance(v, str) and v in tuple(get()), lambda: "one of " + ", ".join(get()))


def _tuple(elem: Rule, lengths: tuple[int, ...] | None = None, increasing: bool = False,
           lengths_of: Callable[[], tuple[int, ...]] | None = None) -> Rule:
    """A tuple of values fitting ``elem``, of one of ``lengths`` (any length when None; ``lengths_of``
    reads them lazily), strictly increasing when ``increasing``."""
    def sizes() -> tuple[int, ...] | None:
        return lengths_of() if lengths_of is not None else lengths

    def check(v: Any) -> bool:
        n = sizes()
        return (isinstance(v, tuple) and (n is None or len(v) in n) and all(elem.check(x) for x in v)
                and (not increasing or all(a < b for a, b in zip(v, v[1:]))))

    def text() -> str:
        n = sizes()
        count = "" if n is None else " or ".join(map(str, n)) + " "
        return (f"a list of {count}value(s), each {elem.describe()}"
                + (", strictly increasing" if increasing else ""))
    return Rule(check, text)


def _matches(pattern: str, text: str) -> Rule:
    rx = re.compile(pattern)
    return Rule(lambda v: isinstance(v, str) and rx.fullmatch(v) is not None, text)


def _lazy(module: str, name: str, extra: tuple[str, ...] = ()) -> Callable[[], tuple[str, ...]]:
    """The names in ``module.name`` (a tuple or dict's keys), read on first use, after ``extra``."""
    def get() -> tuple[str, ...]:
        return (*extra, *getattr(importlib.import_module(f"muva_lib.{module}"), name))
    return get


def _protocol_problem(v: Any) -> str | None:
    """None for a usable protocol name, else what is wrong ("" when there is nothing to add)."""
    if not isinstance(v, str) or not v.strip():
        return ""
    if v.rstrip().endswith("-"):
        return (f"{v!r} ends in '-': an unquoted '->' in a shell makes a redirection; quote the protocol, "
                f"e.g. --protocol \"{v.rstrip()}>synth-b\" or data.protocol='{v.rstrip()}>synth-b'")
    from ..data.protocols import get_protocol
    from ..data.errors import DatasetError
    try:
        get_protocol(v)
    except DatasetError as exc:
        return str(exc)
    return None


def _grouping_ok(v: Any) -> bool:
    if not isinstance(v, str):
        return False
    from ..human_parsing.classes import GROUPINGS, parse_grouping
    if v in ("", "auto") or v in GROUPINGS:
        return True
    try:
        parse_grouping(v, 256)  # class indices of a uint8 map; the source's own count is checked when it is known
    except ValueError:
        return False
    return True


def _noise_rate(name: str) -> Rule:
    """``vge.noise_<name>``: () for the preset's rate, one rate for every part, or (for per-part rates) three."""
    def lengths() -> tuple[int, ...]:
        from ..grounding.backends.noisy_truth import NOISE_RATES
        return (0, 1, 3) if NOISE_RATES[name] == "part" else (0, 1)
    return _tuple(_PROB, lengths_of=lengths)


#: stage1.loss: the identity-phase loss of stage 1 (:func:`muva_lib.train.stage1.stage1_weights`)
STAGE1_LOSSES: tuple[str, ...] = ("cluster_nce", "supcon")
#: stage2.mask_loss (:func:`muva_lib.train.stage2.stage2_weights`)
MASK_LOSSES: tuple[str, ...] = ("bce+dice", "mse")
#: model.activation (:func:`muva_lib.models.clip_backbone.choose_quick_gelu`)
ACTIVATIONS: tuple[str, ...] = ("auto", "quick_gelu", "gelu")
#: model.pos_embed_interp: torch.nn.functional.interpolate's modes for a 2-D grid
GRID_INTERPOLATIONS: tuple[str, ...] = ("bilinear", "bicubic", "nearest", "nearest-exact", "area")

#: The rule of every field of every config dataclass, by dotted key (``tests/test_config_validation.py``
#: fails for a field without one). :func:`validate` checks them, then :data:`CROSS_RULES`.
FIELD_RULES: dict[str, Rule] = {
    # run
    "method": _choice(lambda: _registry().names()),
    "preset": _choice(lambda: PRESETS),
    "seed": _int(0),
    "device": _matches(r"auto|cpu|mps|cuda(:\d+)?", "auto, cpu, mps, cuda or cuda:N"),
    "amp": _BOOL,
    "deterministic": _BOOL,
    "threads": _int(0),
    "variant": _matches(r"([A-Za-z0-9][A-Za-z0-9._+-]*)?",
                        "empty or a folder-safe name (letters, digits, . _ + -), e.g. an ablation's name"),
    # data
    "data.protocol": Rule(lambda v: _protocol_problem(v) is None,
                          "a protocol name from `python -m muva_lib protocols` or src[+src...]->target",
                          lambda v: _protocol_problem(v) or ""),
    "data.height": _int(1),
    "data.width": _int(1),
    "data.pixel_mean": _tuple(_num(), (3,)),
    "data.pixel_std": _tuple(_POS, (3,)),
    "data.train_interpolation": _choice(_lazy("batches.loaders", "INTERPOLATIONS")),
    "data.test_interpolation": _choice(_lazy("batches.loaders", "INTERPOLATIONS")),
    "data.flip_prob": _PROB,
    "data.pad": _int(0),
    "data.erase_prob": _PROB,
    "data.batch_size": _int(1),
    "data.num_instances": _int(1),
    "data.test_batch_size": _int(1),
    "data.num_workers": _int(0),
    "data.split_index": Rule(lambda v: _is_int(v) and v >= -1, "-1 (every seeded split) or a split number >= 0"),
    "data.all_splits": _BOOL,
    "data.strict": _BOOL,
    # vge
    "vge.backend": _choice(_lazy("grounding.backends", "BACKENDS")),
    "vge.model": _ANY_STR,  # a hub id or a local folder: checked when the backend loads it
    "vge.trust_remote_code": _BOOL,
    "vge.noise": _choice(_lazy("grounding.backends.noisy_truth", "NOISE_PRESETS")),
    "vge.calibrate": _BOOL,
    "vge.source": _choice(_lazy("grounding.part_masks", "MASK_SOURCES")),
    "vge.noise_seed": _int(0),
    "vge.noise_jitter": _noise_rate("jitter"),
    "vge.noise_oversize": _noise_rate("oversize"),
    "vge.noise_oversplit": _noise_rate("oversplit"),
    "vge.noise_missing": _noise_rate("missing"),
    "vge.noise_garbage": _noise_rate("garbage"),
    "vge.noise_swap": _noise_rate("swap"),
    "vge.max_fallback_share": _PROB,
    "vge.prompt_template": Rule(lambda v: isinstance(v, str) and "{phrase}" in v,
                                "a string holding {phrase} (where the part phrase goes)"),
    "vge.answer_format": _choice(_lazy("grounding.answers", "ANSWER_FORMATS")),
    "vge.max_new_tokens": _int(1),
    "vge.batch_size": _int(1),
    "vge.detector_min_score": _num(),
    "vge.parse_tolerance": _num(0.0, 1.0, hi_open=True),
    "vge.fence_k": _NONNEG,
    "vge.min_spread": _PROB,
    "vge.min_samples": _int(1),
    "vge.fence_core": _choice(_lazy("grounding.calibrate", "CORES")),
    "vge.ensure_one_patch": _BOOL,
    # parsing
    "parsing.source": _choice(_lazy("human_parsing.sources", "PARSING_SOURCES")),
    "parsing.png_root": _ANY_STR,  # a folder: checked when the png source reads it
    "parsing.model": _ANY_STR,  # a hub id or a local folder: checked when the hf source loads it
    "parsing.grouping": Rule(_grouping_ok, "auto, lip, synth, pose or a grouping such as 'head=1,2;upper=5,7' "
                             "(muva_lib.human_parsing.classes.parse_grouping)"),
    "parsing.store_size": _tuple(_int(1), (2,)),
    "parsing.vote": _choice(_lazy("human_parsing.labels", "VOTES")),
    "parsing.fg_share": _num(0.0, 1.0, lo_open=True),
    "parsing.batch_size": _int(1),
    # model
    "model.arch": _matches(r"\S+", "a non-empty open_clip model name or a registered tiny config (muva-tiny)"),
    "model.pretrained": _ANY_STR,  # an open_clip tag, a file or folder, or "": checked when the weights load
    "model.freeze_patch_proj": _BOOL,
    "model.num_parts": Rule(lambda v: _is_int(v) and 0 <= v <= len(_parts()),
                            lambda: f"an integer in 0..{len(_parts())} (parts {', '.join(_parts())})"),
    "model.part_token_init": _choice(_lazy("models.ammsa", "PART_TOKEN_INITS")),
    "model.part_token_std": _NONNEG,
    "model.rmp_num_heads": _int(1),
    "model.rmp_layernorm": _BOOL,
    "model.rmp_inner_shortcut": _BOOL,
    "model.rmp_sigmoid_tau": _POS,
    "model.gating": _choice(_lazy("models.ammsa", "GATINGS")),
    "model.gate_thresh": _PROB,
    "model.mask_max_value": _NONNEG,
    "model.ctx_num": _int(1),
    "model.ctx_init_std": _NONNEG,
    "model.template_type": _choice(_lazy("models.prompt_learner", "TEMPLATE_TYPES")),
    "model.domain_context": _ANY_STR,
    "model.text_context_length": _int(1),
    "model.activation": _choice(ACTIVATIONS),
    "model.pos_embed_interp": _choice(GRID_INTERPOLATIONS),
    "model.cls_head": _BOOL,
    # stage 1
    "stage1.epochs": _int(1),
    "stage1.lr": _POS,
    "stage1.weight_decay": _NONNEG,
    "stage1.warmup_epochs": _int(0),
    "stage1.warmup_lr": _NONNEG,
    "stage1.min_lr": _NONNEG,
    "stage1.batch_size": _int(1),
    "stage1.cluster_nce_temp": _POS,
    "stage1.loss": _choice(STAGE1_LOSSES),
    "stage1.part_epochs": _int(0),
    "stage1.part_identity": _BOOL,
    "stage1.part_temp": _POS,
    "stage1.part_schedule": _choice(_lazy("train.optim", "PART_SCHEDULES")),
    "stage1.schedule": _choice(_lazy("train.optim", "STAGE1_SCHEDULES")),
    # stage 2
    "stage2.epochs": _int(0),
    "stage2.base_lr": _POS,
    "stage2.weight_decay": _NONNEG,
    "stage2.bias_lr_factor": _POS,
    "stage2.rmp_lr_mult": _POS,
    "stage2.warmup_epochs": _int(0),
    "stage2.warmup_factor": _num(0.0, 1.0, lo_open=True),
    "stage2.milestones": _tuple(_int(1), increasing=True),
    "stage2.gamma": _num(0.0, 1.0, lo_open=True),
    "stage2.label_smoothing": _num(0.0, 1.0, hi_open=True),
    "stage2.memory_temp": _POS,
    "stage2.memory_momentum": _PROB,
    "stage2.hard_memory_update": _BOOL,
    "stage2.i2t_tau": _POS,
    "stage2.mask_loss": _choice(MASK_LOSSES),
    "stage2.triplet_margin": _NONNEG,
    "stage2.w_id": _NONNEG,
    "stage2.w_memory": _NONNEG,
    "stage2.w_i2t": _NONNEG,
    "stage2.w_mask": _NONNEG,
    "stage2.w_triplet": _NONNEG,
    "stage2.w_fusion": _NONNEG,
    "stage2.fusion_dim": _int(1),
    "stage2.fusion_stride": _int(1),
    "stage2.fusion_levels": _int(1),
    "stage2.fusion_norm": _BOOL,
    "stage2.eval_period": _int(0),
    "stage2.grad_clip": _NONNEG,
    # eval
    "eval.after_bn": _BOOL,
    "eval.with_hidden": _BOOL,
    "eval.feat_norm": _BOOL,
    "eval.metric": _choice(_lazy("eval.distance", "METRICS")),
    "eval.ranks": _tuple(_int(1), increasing=True),
    "eval.max_rank": _int(1),
    "eval.rerank": _BOOL,
    "eval.rerank_variant": _choice(_lazy("eval.rerank", "RERANK_VARIANTS")),
    "eval.k1": _int(1),
    "eval.k2": _int(1),
    "eval.lambda_value": _PROB,
    "eval.flip": _BOOL,
    "eval.chunk_size": _int(1),
}


def _parts() -> tuple[str, ...]:
    from ..data.types import PARTS
    return PARTS

