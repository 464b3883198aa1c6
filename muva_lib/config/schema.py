"""The config dataclasses (the paper's values, MUVA on ViT-B/16, as defaults), :class:`ConfigError`
and walking their fields by dotted key."""
from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any

__all__ = ["ConfigError", "DataCfg", "VgeCfg", "ParsingCfg", "ModelCfg", "Stage1Cfg", "Stage2Cfg", "EvalCfg",
           "RunCfg", "config_keys"]


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



def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


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
