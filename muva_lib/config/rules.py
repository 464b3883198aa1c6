"""Dataclass configs with the paper's values as defaults, presets, methods and ``key=value`` overrides.

One resolved :class:`RunCfg` describes a run completely; it is written to the run folder as JSON
and can be read back with :func:`load`. There is no global config object: each constructor takes
the one sub-config (or the explicit values) it needs.

Resolution order (later wins): dataclass defaults (the paper's values, MUVA on ViT-B/16) ->
preset (``paper`` or ``smoke``) -> method recipe (:mod:`muva_lib.methods`: ``clipreid``, then the
recipe built on it, ``muva`` or ``pivl``) -> the few adjustments a preset makes to one method
(:data:`PRESET_METHODS`) -> an ablation -> user overrides (``stage2.epochs=2 model.num_parts=0``);
:func:`resolve_with_sources` also says which of them set each key.
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
    "resolve", "resolve_with_sources", "resolve_layers", "apply_overrides", "parse_overrides", "to_dict", "from_dict", "FIELDS_ADDED_LATER",
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
    split_index: int = -1  # small targets (GRID, PRID, VIPeR, iLIDS): -1 every seeded split (mean ± std), k split k alone
    all_splits: bool = False  # every split even when split_index names one (configs from when split_index defaulted to 0)
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
    # synthetic backend failure rates (muva_lib.grounding.backends.noisy_truth.NOISE_RATES): () = the
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
    # rasterisation (muva_lib.geometry.patch_grid): centre-in-box on the patch grid
    ensure_one_patch: bool = True  # a part box holding no patch centre still marks the patch of its centre


@dataclass
class ParsingCfg:
    """Human parsing maps (pi-VL): where they come from and how their classes group into part classes."""

    source: str = "auto"  # parsing.PARSING_SOURCES: auto (synthetic; pose on real-vtest) | synthetic | png | hf | pose
    png_root: str = ""  # png: <png_root>/<dataset>/<relpath with .png>, LIP/SCHP 20-class index maps
    model: str = ""  # hf: hub id or local folder of a transformers semantic-segmentation model
    grouping: str = "auto"  # auto (the source's default) | lip | synth | pose | "head=1,2;upper=5,7;..." (muva_lib.human_parsing)
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
    rerank_variant: str = "zhong"  # zhong: the public implementation every paper uses | paper: as written
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
    # a name for a run that changes a method's recipe (an ablation, :data:`ABLATIONS` from muva_lib.methods): results
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
        # one thread: on a 2-core machine shared with other work, every multi-threaded element-wise op
        # waits for its thread on the busy core (OpenMP); fixed anyway for reproducible reductions
        "threads": 1,
        "model.arch": "muva-tiny",
        "model.pretrained": "",
        "data.height": 128,
        "data.width": 64,
        "data.batch_size": 16,  # 4 ids x 4: twice the steps of 32 at the same cost, better from scratch
        "data.test_batch_size": 128,
        "model.text_context_length": 16,  # the longest prompt is 15 tokens; the text tower's cost grows with it
        "stage1.epochs": 4,
        "stage1.lr": 2e-3,
        "stage1.warmup_epochs": 1,
        "stage2.epochs": 8,
        "stage2.base_lr": 1e-3,
        "stage2.warmup_epochs": 2,
        "stage2.milestones": (7,),
    },
}

#: ``METHODS`` (method -> its config overrides, the parent recipes' included), ``PRESET_METHODS``
#: ((preset, method) -> what the preset changes in that method, applied after it) and ``ABLATIONS`` are
#: read from the recipes in :mod:`muva_lib.methods` on first use (module ``__getattr__`` below), so that
#: this module stays below the methods in the import order.
def _registry() -> Any:
    """:mod:`muva_lib.methods` (imported on first use: the recipes import this module)."""
    return importlib.import_module("muva_lib.methods")


def __getattr__(name: str) -> Any:
    if name == "METHODS":
        return {r.name: r.flat_overrides() for r in _registry().recipes()}
    if name == "PRESET_METHODS":
        return {(p, r.name): dict(adj) for r in _registry().recipes() for p, adj in r.preset_overrides.items()}
    if name == "ABLATIONS":
        return {k: a for r in _registry().recipes() for k, a in r.own_ablations().items()}
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@dataclass(frozen=True)
class Ablation:
    """One switch of a method's recipe: the ``method`` it changes, a table ``label`` and the
    ``overrides`` (``key=value``); a run of it sets ``variant`` to the ablation's name."""

    method: str
    label: str
    overrides: tuple[str, ...]


def ablation_overrides(name: str) -> list[str]:
    """The overrides of ablation ``name``, ``variant=<name>`` included (ConfigError names the known ones)."""
    ablations = __getattr__("ABLATIONS")
    if name not in ablations:
        raise ConfigError(f"unknown ablation {name!r}; known: {', '.join(ablations)}")
    return [*ablations[name].overrides, f"variant={name}"]


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


def _as_mapping(overrides: Mapping[str, Any] | Iterable[str] | str | None) -> Mapping[str, Any]:
    """Overrides as a dict: a dict, a list of ``key=value`` strings or one whitespace-separated string."""
    if isinstance(overrides, str):
        return parse_overrides(overrides.split())
    if overrides is not None and not isinstance(overrides, Mapping):
        return parse_overrides(overrides)
    return overrides or {}


def resolve_layers(method: str = "muva", preset: str = "paper", protocol: str | None = None,
                   seed: int | None = None, overrides: Mapping[str, Any] | Iterable[str] | str | None = None,
                   *, ablation: str | None = None) -> list[tuple[str, Mapping[str, Any]]]:
    """The ``(source, overrides)`` layers :func:`resolve` applies to the defaults, in order: the preset,
    the method's recipes from the base one down (``method clipreid (parent of pivl)``, ``method pivl``),
    the preset's adjustment of the method, the ``protocol`` / ``seed`` arguments, the ablation and
    the user overrides."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; valid presets: {', '.join(PRESETS)}")
    methods = _registry()
    if method not in methods.names():
        raise ConfigError(f"unknown method {method!r}; valid methods: {', '.join(methods.names())}")
    recipe = methods.get(method)
    layers: list[tuple[str, Mapping[str, Any]]] = [("argument", {"method": method, "preset": preset}),
                                                   (f"preset {preset}", PRESETS[preset])]
    for name, own in recipe.override_layers():
        layers.append((f"method {name}" + (f" (parent of {method})" if name != method else ""), own))
    layers.append((f"preset {preset} x method {method}", recipe.preset_overrides.get(preset, {})))
    args = {**({"data.protocol": protocol} if protocol is not None else {}), **({"seed": seed} if seed is not None else {})}
    layers.append(("argument", args))
    if ablation:
        owner = __getattr__("ABLATIONS").get(ablation)
        if owner is not None and owner.method != method:
            raise ConfigError(f"ablation {ablation!r} changes {owner.method}'s recipe, not {method}'s")
        layers.append((f"ablation {ablation}", parse_overrides(ablation_overrides(ablation))))
    layers.append(("override", _as_mapping(overrides)))
    return [(source, layer) for source, layer in layers if layer]


def resolve_with_sources(method: str = "muva", preset: str = "paper", protocol: str | None = None,
                         seed: int | None = None, overrides: Mapping[str, Any] | Iterable[str] | str | None = None,
                         *, ablation: str | None = None) -> tuple[RunCfg, dict[str, str]]:
    """:func:`resolve`'s config and, for every dotted key a layer set, the source of its value (the last
    layer that set it, :func:`resolve_layers`); keys missing from the dict keep their default."""
    cfg, sources = RunCfg(), {}
    for source, layer in resolve_layers(method, preset, protocol, seed, overrides, ablation=ablation):
        cfg = apply_overrides(cfg, layer)
        sources.update(dict.fromkeys(layer, source))
    return validate(cfg), sources


def resolve(method: str = "muva", preset: str = "paper", protocol: str | None = None,
            seed: int | None = None, overrides: Mapping[str, Any] | Iterable[str] | str | None = None,
            *, ablation: str | None = None) -> RunCfg:
    """Defaults -> preset -> method (its parent recipes first) -> preset x method -> ablation -> overrides.
    ``overrides`` may be a dict, a list of ``key=value`` strings or one whitespace-separated string of
    them (the notebooks' form); ``ablation`` names one of :data:`ABLATIONS` (``variant`` included)."""
    return resolve_with_sources(method, preset, protocol, seed, overrides, ablation=ablation)[0]


# ----------------------------------------------------------------------------- validation

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


def _divides(a: str, b: str) -> Callable[[RunCfg], str | None]:
    def check(cfg: RunCfg) -> str | None:
        x, y = _get(cfg, a), _get(cfg, b)
        return None if x % y == 0 else f"{a}={x} must be a multiple of {b}={y} (whole identities of {y} images a batch)"
    return check


def _stage1_pk(cfg: RunCfg) -> str | None:
    if cfg.stage1.loss != "cluster_nce" or cfg.stage1.batch_size % cfg.data.num_instances == 0:
        return None
    return (f"stage1.batch_size={cfg.stage1.batch_size} must be a multiple of data.num_instances="
            f"{cfg.data.num_instances} with stage1.loss=cluster_nce (PK batches of labels)")


def _le(a: str, b: str, why: str) -> Callable[[RunCfg], str | None]:
    def check(cfg: RunCfg) -> str | None:
        x, y = _get(cfg, a), _get(cfg, b)
        return None if x <= y else f"{a}={x!r} must be <= {b}={y!r} ({why})"
    return check


def _fusion_grid(cfg: RunCfg) -> str | None:
    s, d = cfg.stage2.fusion_stride, cfg.data
    if cfg.stage2.w_fusion <= 0 or (d.height % s == 0 and d.width % s == 0):
        return None
    return (f"stage2.fusion_stride={s} must divide data.height={d.height} and data.width={d.width} "
            f"when stage2.w_fusion > 0")


_STAGE2_WEIGHTS = ("stage2.w_id", "stage2.w_memory", "stage2.w_i2t", "stage2.w_mask", "stage2.w_triplet",
                   "stage2.w_fusion")


#: Rules over several fields: (the keys they read, a check returning a message or None). A cross rule is
#: skipped when one of its keys already broke its own rule.
CROSS_RULES: list[tuple[tuple[str, ...], Callable[[RunCfg], str | None]]] = [
    (("stage2.w_mask", "model.num_parts"),
     lambda c: None if not c.stage2.w_mask or c.model.num_parts else
     f"stage2.w_mask={c.stage2.w_mask} needs part tokens (model.num_parts > 0; it is 0): set stage2.w_mask=0"),
    (_STAGE2_WEIGHTS,
     lambda c: None if any(_get(c, k) > 0 for k in _STAGE2_WEIGHTS) else
     f"stage2 has no loss term: one of {', '.join(_STAGE2_WEIGHTS)} must be > 0"),
    (("data.batch_size", "data.num_instances"), _divides("data.batch_size", "data.num_instances")),
    (("stage1.batch_size", "data.num_instances", "stage1.loss"), _stage1_pk),
    (("stage1.warmup_epochs", "stage1.epochs"),
     _le("stage1.warmup_epochs", "stage1.epochs", "a warm-up longer than stage 1 never reaches stage1.lr")),
    (("stage1.min_lr", "stage1.lr"), _le("stage1.min_lr", "stage1.lr", "the cosine decays from lr to min_lr")),
    (("eval.ranks", "eval.max_rank"),
     lambda c: None if not c.eval.ranks or max(c.eval.ranks) <= c.eval.max_rank else
     f"eval.ranks={list(c.eval.ranks)} must not go past eval.max_rank={c.eval.max_rank} (the CMC is cut there)"),
    (("stage2.fusion_stride", "data.height", "data.width", "stage2.w_fusion"), _fusion_grid),
]


def _get(cfg: Any, key: str) -> Any:
    for name in key.split("."):
        cfg = getattr(cfg, name)
    return cfg


def config_keys(cls: type = RunCfg, prefix: str = "") -> list[str]:
    """Every dotted key of a (nested) config dataclass, groups expanded: ``["method", ..., "data.protocol", ...]``."""
    out = []
    for name, typ in _field_types(cls).items():
        if isinstance(typ, type) and is_dataclass(typ):
            out += config_keys(typ, f"{prefix}{name}.")
        else:
            out.append(f"{prefix}{name}")
    return out


def validation_errors(cfg: RunCfg) -> list[str]:
    """One line per value that breaks its :data:`FIELD_RULES` rule or a :data:`CROSS_RULES` rule."""
    errors, bad = [], set()
    for key in config_keys():
        if key not in FIELD_RULES:
            errors.append(f"{key}: no validation rule (add one to muva_lib.config.FIELD_RULES)")
            continue
        value, rule = _get(cfg, key), FIELD_RULES[key]
        if not rule.check(value):
            hint = rule.hint(value) if rule.hint is not None else ""
            shown = list(value) if isinstance(value, tuple) else value
            errors.append(f"{key}={shown!r}: expected {rule.describe()}" + (f"; {hint}" if hint else ""))
            bad.add(key)
    for keys, check in CROSS_RULES:
        if not bad.intersection(keys):
            message = check(cfg)
            if message:
                errors.append(message)
    return errors


def validate(cfg: RunCfg) -> RunCfg:
    """Check every value of ``cfg`` (:func:`validation_errors`) before any work; ConfigError naming each
    bad key, its value and what is allowed, all in one message. Returns ``cfg``."""
    errors = validation_errors(cfg)
    if len(errors) == 1:
        raise ConfigError(f"invalid config value: {errors[0]}")
    if errors:
        raise ConfigError(f"{len(errors)} invalid config values:\n  " + "\n  ".join(errors))
    return cfg
