"""Dataclass configs with the paper's values as defaults, presets, methods and ``key=value`` overrides.

One resolved :class:`RunCfg` describes a run completely; it is written to the run folder as JSON
and can be read back with :func:`load`. There is no global config object: each constructor takes
the one sub-config (or the explicit values) it needs.

Resolution order (later wins): dataclass defaults (the paper's values, MUVA on ViT-B/16) ->
preset (``paper`` or ``smoke``) -> method recipe (``muva``, ``clipreid``, ``pivl``) -> the few
adjustments a preset makes to one method (:data:`PRESET_METHODS`) -> user overrides
(``stage2.epochs=2 model.num_parts=0``).
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib
import json
import math
import re
import typing
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import yaml

__all__ = [
    "DataCfg", "VgeCfg", "ParsingCfg", "ModelCfg", "Stage1Cfg", "Stage2Cfg", "EvalCfg", "RunCfg",
    "PRESETS", "METHODS", "PRESET_METHODS", "Ablation", "ABLATIONS", "ablation_overrides",
    "resolve", "apply_overrides", "parse_overrides", "to_dict", "from_dict", "FIELDS_ADDED_LATER",
    "save", "load", "config_hash", "ConfigError", "Rule", "FIELD_RULES", "CROSS_RULES", "config_keys",
    "validation_errors", "validate",
]


class ConfigError(ValueError):
    """A config key or value that does not exist or does not fit its field."""


@dataclass
class DataCfg:
    """Images, protocol and batching."""

    protocol: str = "synth-a->synth-b"  # a name from `python -m muva_lib protocols`
    height: int = 256  # input height (pixels)
    width: int = 128  # input width (pixels)
    pixel_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)  # CLIP-ReID / MUVA ViT configs
    pixel_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    train_interpolation: str = "bicubic"  # stage-2 training resize
    test_interpolation: str = "bilinear"  # prototype / memory / test resize
    flip_prob: float = 0.5  # joint image + part-mask horizontal flip in stage 2
    pad: int = 0  # stage-2 pad + random crop back to size (MUVA 0: off; CLIP-ReID 10)
    erase_prob: float = 0.0  # stage-2 random erasing, timm pixel mode (MUVA 0: off; CLIP-ReID 0.5)
    batch_size: int = 64  # P x K
    num_instances: int = 4  # K images per identity in a PK batch
    test_batch_size: int = 64
    num_workers: int = 0  # loader workers (0 keeps runs deterministic on CPU)
    split_index: int = 0  # which of the 10 seeded splits of a small dataset (GRID, PRID, VIPeR, iLIDS)
    all_splits: bool = False  # evaluate small-dataset targets on all 10 splits and average
    strict: bool = False  # unreadable images are errors (True) or counted warnings (False)


@dataclass
class VgeCfg:
    """Visual grounding expert: where part boxes come from and how they are calibrated."""

    backend: str = "synthetic"  # synthetic | prior | mllm | detector (muva_lib.grounding.backends)
    model: str = ""  # hub id or local directory of the mllm / detector backend
    trust_remote_code: bool = False
    noise: str = "paper"  # synthetic backend noise preset: none | paper | heavy
    calibrate: bool = True
    source: str = "calibrated"  # which boxes feed the masks: raw | calibrated | gt
    noise_seed: int = 0  # synthetic backend: seed of the noise draws (per image: seed + key)
    # synthetic backend failure rates (muva_lib.grounding.backends.synthetic.NOISE_RATES): () = the
    # `noise` preset's rate; one value sets every part, three set head, upper, legs (fractions 0..1)
    noise_jitter: tuple[float, ...] = ()  # std of each coordinate, fraction of the box side (one value)
    noise_oversize: tuple[float, ...] = ()  # box = the whole person
    noise_oversplit: tuple[float, ...] = ()  # box = a 15-45 % slice of the part
    noise_missing: tuple[float, ...] = ()  # a refusal, no box
    noise_garbage: tuple[float, ...] = ()  # unparseable / invalid answer text (one value)
    noise_swap: tuple[float, ...] = ()  # per image: two adjacent parts exchange boxes (one value)
    max_fallback_share: float = 0.5  # warn (stderr, run manifest) when more images than this share fall back to the prior
    # mllm / detector backends
    prompt_template: str = ("Guide me to the location of {phrase} within the image by providing "
                            "its bounding boxes")  # the paper's instruction; {phrase} = part phrase
    answer_format: str = "auto"  # auto | cogvlm | qwen_json | qwen2_tags | box_tags | florence | numbers
    max_new_tokens: int = 48  # generation cap per answer
    batch_size: int = 4  # images per model call (each image gives one prompt per part)
    detector_min_score: float = 0.0  # detector: a best box scoring lower is a fallback
    parse_tolerance: float = 0.02  # coordinates this far outside the image (fraction) are clipped, beyond: rejected
    # calibration (muva_lib.grounding.calibrate): Tukey fences on normalised top / bottom / height / width
    fence_k: float = 1.5  # fences at q25 - k*IQR and q75 + k*IQR of each per-part distribution
    min_spread: float = 0.05  # fences at least this far (fraction of the image side) from the median
    min_samples: int = 20  # fewer usable boxes of a part: its statistics come from the fixed prior bands
    fence_core: str = "quartiles"  # quartiles (q25, median, q75) | shorth (densest half: robust to >25 % bad)
    # rasterisation (muva_lib.grounding.rasterize): centre-in-box on the patch grid
    ensure_one_patch: bool = True  # a part box holding no patch centre still marks the patch of its centre


@dataclass
class ParsingCfg:
    """Human parsing maps (pi-VL): where they come from and how their classes group into part classes."""

    source: str = "auto"  # parsing.PARSING_SOURCES: auto (synthetic; pose on real-vtest) | synthetic | png | hf | pose
    png_root: str = ""  # png: <png_root>/<dataset>/<relpath with .png>, LIP/SCHP 20-class index maps
    model: str = ""  # hf: hub id or local folder of a transformers semantic-segmentation model
    grouping: str = "auto"  # auto (the source's default) | lip | synth | "head=1,2;upper=5,7;..." (muva_lib.parsing)
    store_size: tuple[int, int] = (64, 32)  # (H, W) of the stored maps (majority vote per cell, uint8)
    vote: str = "majority"  # patch labels from the map: majority | foreground (parts covering >= fg_share of a patch)
    fg_share: float = 0.25  # foreground vote: share of a patch the parts together must cover
    batch_size: int = 8  # hf: images per model call


@dataclass
class ModelCfg:
    """CLIP backbone, AM-MSA, prompts and heads (muva_spec.md sections 1.2, 1.3)."""

    arch: str = "ViT-B-16"  # open_clip model name, or a registered tiny config ("muva-tiny")
    pretrained: str = "openai"  # open_clip tag, a local .pt/.safetensors file, or "" for random init
    freeze_patch_proj: bool = True
    num_parts: int = 3  # R; 0 gives the plain CLIP-ReID encoder
    part_token_init: str = "random"  # random | cls | patch_avg
    part_token_std: float = 0.02
    rmp_num_heads: int = 2
    rmp_layernorm: bool = True
    rmp_inner_shortcut: bool = True
    rmp_sigmoid_tau: float = 1.0
    gating: str = "offline"  # offline (hard, detached) | online (soft) | none
    gate_thresh: float = 0.5
    mask_max_value: float = 0.0  # online gating scale m
    ctx_num: int = 4  # learnable context tokens per prompt
    ctx_init_std: float = 0.002  # MUVA 0.002; CLIP-ReID 0.02
    template_type: str = "multi-grained"  # multi-grained | part-agnostic
    domain_context: str = ""  # appended as ", <text>" to every prompt when not empty
    text_context_length: int = 77
    # QuickGELU or GELU in the ViT/text MLPs: "auto" decides from the weights (OpenAI weights need
    # QuickGELU; open_clip does not check a local file), "quick_gelu" / "gelu" force it
    activation: str = "auto"  # auto | quick_gelu | gelu
    pos_embed_interp: str = "bilinear"  # resizing CLIP's square patch grid to 16x8 (CLIP-ReID / MUVA)
    cls_head: bool = False  # CLIP-ReID: a second BNNeck + ID classifier on the D-wide CLS (cls_hidden)


@dataclass
class Stage1Cfg:
    """Prompt learning against cached image features (muva_spec.md section 1.4)."""

    epochs: int = 120
    lr: float = 3.5e-4
    weight_decay: float = 1e-4
    warmup_epochs: int = 5
    warmup_lr: float = 1e-5
    min_lr: float = 1e-6
    batch_size: int = 64
    cluster_nce_temp: float = 1.0  # MUVA L_cmp temperature
    loss: str = "cluster_nce"  # cluster_nce (MUVA) | supcon (CLIP-ReID i2t + t2i)
    # pi-VL: epochs of part-informed dense prompt tuning after the identity phase (paper 60 + 20)
    part_epochs: int = 0
    part_identity: bool = True  # identity-aware part prompts; False: part-name prompts shared by all ids (ablation)
    part_temp: float = 0.07  # dense InfoNCE temperature on cosine similarities (ours: the paper's value is lost)
    # continue: one warm-up + cosine over epochs + part_epochs (the paper's "80 epochs, cosine"; our reading);
    # restart: the part epochs get a cosine of their own from stage1.lr (no warm-up), the identity epochs
    # stay on the cosine over epochs + part_epochs; separate: the identity epochs follow exactly the
    # schedule of a run without part epochs (CLIP-ReID's), the part epochs a cosine of their own (no warm-up)
    part_schedule: str = "continue"
    # shape of the cosine (muva_lib.train.optim.stage1_lr): cosine reaches min_lr one epoch after the last,
    # so no epoch runs at the floor; timm: min_lr at the last epoch (the official code's timm scheduler)
    schedule: str = "cosine"


@dataclass
class Stage2Cfg:
    """Image-encoder fine-tuning (muva_spec.md sections 1.5-1.7)."""

    epochs: int = 60
    base_lr: float = 5e-6
    weight_decay: float = 1e-4
    bias_lr_factor: float = 1.0  # CLIP-ReID uses 2
    rmp_lr_mult: float = 10.0
    warmup_epochs: int = 10
    warmup_factor: float = 0.1
    milestones: tuple[int, ...] = (30, 50)
    gamma: float = 0.1
    label_smoothing: float = 0.1
    memory_temp: float = 0.01
    memory_momentum: float = 0.2
    hard_memory_update: bool = True
    i2t_tau: float = 1.0
    mask_loss: str = "bce+dice"  # bce+dice | mse
    triplet_margin: float = 0.3
    w_id: float = 1.0
    w_memory: float = 1.0
    w_i2t: float = 1.0
    w_mask: float = 1.0
    w_triplet: float = 0.0
    w_fusion: float = 0.0  # pi-VL alignment MSE weight (0 with stage1.part_epochs > 0: the no-fusion ablation)
    fusion_dim: int = 256  # pi-VL fusion head: channels of every pyramid level before the text projection
    fusion_stride: int = 8  # pi-VL fusion head: output stride of the fused map (8: 32x16 at 256x128)
    fusion_levels: int = 3  # pi-VL fusion head (ViT): blocks at k/levels depth, k = 1..levels
    fusion_norm: bool = True  # pi-VL: L2-normalise fused and text features before the MSE (ours)
    eval_period: int = 0  # evaluate the target every k epochs (0: only at the end, as the paper)
    grad_clip: float = 0.0


@dataclass
class EvalCfg:
    """Test-time features and metrics (muva_spec.md sections 2, 3.3)."""

    after_bn: bool = True  # MUVA BN(f); CLIP-ReID uses the pre-BN features
    with_hidden: bool = False  # prepend the D-wide CLS (CLIP-ReID: concat(cls_hidden, f) = 768 + 512)
    feat_norm: bool = True
    metric: str = "euclidean"  # euclidean (squared, on normalised features = cosine ranking) | cosine
    ranks: tuple[int, ...] = (1, 5, 10, 20)
    max_rank: int = 50
    rerank: bool = False
    k1: int = 20
    k2: int = 6
    lambda_value: float = 0.3
    flip: bool = False
    chunk_size: int = 512  # queries per chunk of the distance computation


@dataclass
class RunCfg:
    """Everything a run needs; written as ``config.json`` in the run folder."""

    method: str = "muva"
    preset: str = "paper"
    seed: int = 1234
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool = True  # fp16 autocast + GradScaler on CUDA only; CPU always runs fp32
    deterministic: bool = True
    threads: int = 0  # torch.set_num_threads; 0 leaves torch's default
    # a name for a run that changes a method's recipe (an ablation, muva_lib.runs.ABLATIONS): results
    # are grouped by it, and the main tables hold only runs without one
    variant: str = ""
    data: DataCfg = field(default_factory=DataCfg)
    vge: VgeCfg = field(default_factory=VgeCfg)
    parsing: ParsingCfg = field(default_factory=ParsingCfg)
    model: ModelCfg = field(default_factory=ModelCfg)
    stage1: Stage1Cfg = field(default_factory=Stage1Cfg)
    stage2: Stage2Cfg = field(default_factory=Stage2Cfg)
    eval: EvalCfg = field(default_factory=EvalCfg)


#: Presets: how big and how long. ``paper`` = the paper's values (ViT-B/16, GPU);
#: ``smoke`` = the tiny random-weight model on the synthetic benchmark, minutes on 2 CPU cores.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "smoke": {
        # one thread: on a 2-core machine shared with other work, 2 threads made element-wise ops
        # 20-50x slower (OpenMP waiting on the busy core); fixed anyway for reproducible reductions
        "threads": 1,
        "model.arch": "muva-tiny",
        "model.pretrained": "",
        "data.height": 128,
        "data.width": 64,
        "data.batch_size": 16,  # 4 ids x 4: twice the steps of 32 at the same cost, better from scratch
        "data.test_batch_size": 128,
        "model.text_context_length": 16,  # the longest prompt is 15 tokens; 2.6x cheaper than 32
        "stage1.epochs": 4,
        "stage1.lr": 2e-3,
        "stage1.warmup_epochs": 1,
        "stage2.epochs": 8,
        "stage2.base_lr": 1e-3,
        "stage2.warmup_epochs": 2,
        "stage2.milestones": (7,),
    },
}

#: Methods as recipes: overrides on top of the MUVA defaults.
METHODS: dict[str, dict[str, Any]] = {
    "muva": {},
    "clipreid": {
        "model.num_parts": 0,
        "model.ctx_init_std": 0.02,
        "stage1.loss": "supcon",
        "stage2.w_id": 0.25,
        "stage2.w_memory": 0.0,
        "stage2.w_mask": 0.0,
        "stage2.w_triplet": 1.0,
        "stage2.bias_lr_factor": 2.0,
        "stage2.rmp_lr_mult": 1.0,
        "model.cls_head": True,
        "data.pad": 10,
        "data.erase_prob": 0.5,
        "eval.after_bn": False,
        "eval.with_hidden": True,
    },
}
#: pi-VL = CLIP-ReID + part-informed prompt tuning (60 identity + 20 part epochs) + the fusion alignment loss.
#: Its identity epochs run CLIP-ReID's stage-1 schedule over ``stage1.epochs`` (so a comparison with CLIP-ReID
#: compares methods, not schedules), its part epochs a cosine of their own (``part_schedule=separate``)
METHODS["pivl"] = {**METHODS["clipreid"], "stage1.epochs": 60, "stage1.part_epochs": 20, "stage2.w_fusion": 1.0,
                   "stage1.part_schedule": "separate"}


#: What a preset changes in one method's recipe (applied after the method). The smoke budget (a few
#: minutes from random weights) is too short for CLIP-ReID's pad/crop/erasing: with them its
#: synth-a->synth-b mAP halves (7.5 -> 3.8 %), so smoke runs both methods with the flip only.
PRESET_METHODS: dict[tuple[str, str], dict[str, Any]] = {
    ("smoke", "clipreid"): {"data.pad": 0, "data.erase_prob": 0.0},
    # smoke pi-VL: the same 4 identity epochs as CLIP-ReID at the same rates, then 2 part epochs on a cosine of
    # their own (part_schedule=separate, from the recipe; at the tail of one 6-epoch cosine they would run at
    # 1e-4 and 1e-6: no learning)
    ("smoke", "pivl"): {"data.pad": 0, "data.erase_prob": 0.0, "stage1.epochs": 4, "stage1.part_epochs": 2},
}


@dataclass(frozen=True)
class Ablation:
    """One switch of a method's recipe: the ``method`` it changes, a table ``label`` and the
    ``overrides`` (``key=value``); a run of it sets ``variant`` to the ablation's name."""

    method: str
    label: str
    overrides: tuple[str, ...]


#: The ablations of the three-way comparison (``python -m muva_lib run --ablations``). Online gating
#: needs a non-zero scale m (its default 0 means no masking at all): 5 turns a probability of 0 / 1
#: into an additive -5 / +5 on the attention logits.
ABLATIONS: dict[str, Ablation] = {
    "part-agnostic": Ablation("muva", "part-agnostic prompts", ("model.template_type=part-agnostic",)),
    "gating-online": Ablation("muva", "online (soft) gating, m=5", ("model.gating=online", "model.mask_max_value=5")),
    "gating-none": Ablation("muva", "no gating", ("model.gating=none",)),
    "vge-raw": Ablation("muva", "raw VGE boxes", ("vge.source=raw",)),
    "vge-gt": Ablation("muva", "ground-truth boxes", ("vge.source=gt",)),
    "no-id-tokens": Ablation("pivl", "part prompts without identity tokens", ("stage1.part_identity=false",)),
    "no-fusion": Ablation("pivl", "no fusion head", ("stage2.w_fusion=0",)),
    "fg-vote": Ablation("pivl", "foreground-favouring patch labels", ("parsing.vote=foreground",)),
}


def ablation_overrides(name: str) -> list[str]:
    """The overrides of ablation ``name``, ``variant=<name>`` included (ConfigError names the known ones)."""
    if name not in ABLATIONS:
        raise ConfigError(f"unknown ablation {name!r}; known: {', '.join(ABLATIONS)}")
    return [*ABLATIONS[name].overrides, f"variant={name}"]


# ----------------------------------------------------------------------------- (de)serialisation

def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-ready nested dict (tuples become lists)."""
    return json.loads(json.dumps(asdict(cfg)))


def _coerce(value: Any, typ: Any, key: str) -> Any:
    """Fit a parsed value to a dataclass field's annotated type, or raise ConfigError."""
    origin = typing.get_origin(typ)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            value = [value]
        args = typing.get_args(typ)
        elem = args[0] if args else Any
        if len(args) == 2 and args[1] is Ellipsis or len(args) == 1:
            return tuple(_coerce(v, elem, key) for v in value)
        if len(args) != len(value):
            raise ConfigError(f"{key}: expected {len(args)} values, got {len(value)} ({value!r})")
        return tuple(_coerce(v, t, key) for v, t in zip(value, args))
    if typ is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise ConfigError(f"{key}: expected true/false, got {value!r}")
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return int(value)
    if typ is float:
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if typ is str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)
    return value


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


#: Fields added after runs were written, with the value that reproduces a config written before them
#: (a saved ``config.json`` without the key gets this value from :func:`from_dict` / :func:`load`, not
#: the new default that :func:`resolve` uses). Add a line when a new field changes what a run does.
FIELDS_ADDED_LATER: dict[str, Any] = {
    "stage1.schedule": "timm",  # the cosine used to reach min_lr at the last stage-1 epoch
    "stage1.part_schedule": "continue",  # pi-VL ran one schedule over identity + part epochs before the field
}


def from_dict(data: Mapping[str, Any], cls: type = RunCfg, prefix: str = "") -> Any:
    """Build a (nested) config dataclass from a dict (a saved config), rejecting unknown keys. A field
    missing from ``data`` takes its value from :data:`FIELDS_ADDED_LATER` when listed there (``prefix``
    is the dotted path of ``cls`` in the run config, ``""`` for :class:`RunCfg`), else its default."""
    types = _field_types(cls)
    kwargs: dict[str, Any] = {}
    for k, v in data.items():
        if k not in types:
            raise ConfigError(_unknown(k, types, cls.__name__))
        typ = types[k]
        if isinstance(typ, type) and is_dataclass(typ):
            kwargs[k] = from_dict(v, typ, f"{prefix}{k}.")
        else:
            kwargs[k] = _coerce(v, typ, k)
    for k, typ in types.items():
        if k in data:
            continue
        if isinstance(typ, type) and is_dataclass(typ):
            kwargs[k] = from_dict({}, typ, f"{prefix}{k}.")
        elif f"{prefix}{k}" in FIELDS_ADDED_LATER:
            kwargs[k] = _coerce(FIELDS_ADDED_LATER[f"{prefix}{k}"], typ, k)
    return cls(**kwargs)


def save(cfg: RunCfg, path: str | Path) -> Path:
    """Write the resolved config as JSON (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(to_dict(cfg), indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
    return path


def load(path: str | Path) -> RunCfg:
    """Read a config written by :func:`save` (or a YAML file with the same structure)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file not found: {path}")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot parse: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return validate(from_dict(data))
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def config_hash(cfg: RunCfg, length: int = 10) -> str:
    """A short stable hash of the resolved config (for run manifests and caches)."""
    blob = json.dumps(to_dict(cfg), sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


# ----------------------------------------------------------------------------- overrides

def _unknown(key: str, known: Iterable[str], where: str) -> str:
    known = list(known)
    close = difflib.get_close_matches(key, known, n=3)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; valid keys: {', '.join(known)}"
    return f"unknown config key {key!r} in {where}{hint}"


def parse_overrides(items: Iterable[str]) -> dict[str, Any]:
    """Parse ``["stage2.epochs=2", "model.arch=muva-tiny"]`` into ``{key: value}``.

    Values are read as YAML scalars / flow sequences (``2``, ``1e-4``, ``true``, ``[30, 50]``),
    so strings need no quotes. An item without ``=`` is an error.
    """
    out: dict[str, Any] = {}
    for item in items:
        item = item.strip()
        if not item:
            continue
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key, raw = item.split("=", 1)
        key = key.strip()
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        out[key] = value
    return out


def apply_overrides(cfg: RunCfg, overrides: Mapping[str, Any]) -> RunCfg:
    """Return a copy of ``cfg`` with dotted-key overrides applied and type-checked."""
    cfg = dataclasses.replace(cfg)  # shallow copy of the top level
    for sub in ("data", "vge", "parsing", "model", "stage1", "stage2", "eval"):
        setattr(cfg, sub, dataclasses.replace(getattr(cfg, sub)))
    for key, value in overrides.items():
        parts = key.split(".")
        target: Any = cfg
        for i, name in enumerate(parts):
            types = _field_types(type(target))
            if name not in types:
                where = ".".join(parts[:i]) or "the run config"
                raise ConfigError(_unknown(name, types, where))
            typ = types[name]
            if i == len(parts) - 1:
                if isinstance(typ, type) and is_dataclass(typ):
                    raise ConfigError(f"{key} is a group; set one of its fields ({key}.<name>=...)")
                setattr(target, name, _coerce(value, typ, key))
            else:
                if not (isinstance(typ, type) and is_dataclass(typ)):
                    raise ConfigError(f"{'.'.join(parts[:i + 1])} is a value, not a group (in {key!r})")
                target = getattr(target, name)
    return cfg


def resolve(method: str = "muva", preset: str = "paper", protocol: str | None = None,
            seed: int | None = None, overrides: Mapping[str, Any] | Iterable[str] | str | None = None,
            ) -> RunCfg:
    """Defaults -> preset -> method -> preset x method -> overrides. ``overrides`` may be a dict, a list of
    ``key=value`` strings or one whitespace-separated string of them (the notebooks' form)."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    if method not in METHODS:
        raise ConfigError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    if isinstance(overrides, str):
        overrides = parse_overrides(overrides.split())
    elif overrides is not None and not isinstance(overrides, Mapping):
        overrides = parse_overrides(overrides)
    cfg = RunCfg(method=method, preset=preset)
    cfg = apply_overrides(cfg, PRESETS[preset])
    cfg = apply_overrides(cfg, METHODS[method])
    cfg = apply_overrides(cfg, PRESET_METHODS.get((preset, method), {}))
    if protocol is not None:
        cfg = apply_overrides(cfg, {"data.protocol": protocol})
    if seed is not None:
        cfg = apply_overrides(cfg, {"seed": seed})
    if overrides:
        cfg = apply_overrides(cfg, overrides)
    return cfg
