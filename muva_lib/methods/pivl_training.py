"""pi-VL's training-only parts: parsing maps, part-informed prompts, the fusion head, the dense prompt phase,
and :class:`PivlExtras`, the hooks through which the shared stages of :mod:`muva_lib.train` use them.

pi-VL (pivl_notes.md) = CLIP-ReID + (stage 1) ``stage1.part_epochs`` epochs of part-informed prompt tuning
after the identity epochs: patch features of the frozen encoder (cached once, projected to the text space)
against the part prompts "A photo of a <identity tokens> person, <part>." with a dense InfoNCE
(:func:`muva_lib.losses.dense_part_nce`), only the prompts learning; + (stage 2) a fusion head over
several blocks whose per-location features are pulled towards the frozen part-prompt features of each
location's parsing label (:func:`muva_lib.losses.part_fusion_mse`, weight ``stage2.w_fusion``).

Imported on first use by :meth:`muva_lib.methods.pivl.Pivl.training_extras` (the recipe stays light for
:mod:`muva_lib.config`). Everything here lives beside the model (``TrainSetup.aux``), never in it: the test-time model and its
checkpoints are CLIP-ReID's. The aux state travels in ``last.pt`` (``extra['aux']``) for resume.
Ablations: ``stage1.part_identity=false`` (part prompts shared by all identities, with a context of
their own), ``stage2.w_fusion=0`` (part prompts kept, no fusion head).
"""
from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..config import RunCfg
from ..data.types import Item
from ..losses import dense_part_nce, part_fusion_mse
from ..models.factory import ReidModel
from ..models.fusion import ViTFusionHead, fusion_blocks, tokens_to_map
from ..models.prompt_learner import PartPromptLearner, encode_part_text
from ..human_parsing import Grouping, grid_labels, parsing_maps_for
from ..utils import atomic_write_bytes
from .extras import TrainingExtras
from .pivl import pivl_enabled
from .step import StepOutput

__all__ = ["pivl_enabled", "PivlExtras", "PivlAux", "create_aux", "training_parsing", "PatchCache", "load_or_compute_patch_cache",
           "part_step", "part_accuracies", "all_part_text", "fusion_grid", "fused_features", "part_text_ids", "aux_state",
           "load_aux_state"]


class PivlAux(nn.Module):
    """The training-only modules: ``part_prompts`` (P part classes of ``grouping``) and ``fusion`` (None
    without a fusion loss), plus the blocks the fusion head reads."""

    def __init__(self, part_prompts: PartPromptLearner, fusion: ViTFusionHead | None, blocks: tuple[int, ...],
                 grouping: Grouping):
        super().__init__()
        self.part_prompts = part_prompts
        self.fusion = fusion
        self.blocks = blocks
        self.grouping = grouping


def create_aux(cfg: RunCfg, model: ReidModel, grouping: Grouping, device: torch.device) -> PivlAux:
    """Part prompts over ``grouping``'s parts and (``stage2.w_fusion > 0``) the ViT fusion head of ``model``."""
    m, s = cfg.model, cfg.stage2
    prompts = PartPromptLearner(grouping.words(), model.text_encoder, m.ctx_num, cfg.stage1.part_identity,
                                m.ctx_init_std)
    enc = model.image_encoder
    blocks = fusion_blocks(len(enc.visual.transformer.resblocks), s.fusion_levels)
    fusion = None
    if s.w_fusion:
        patch = cfg.data.height // enc.grid_size[0]
        fusion = ViTFusionHead(enc.width, enc.output_dim, len(blocks), s.fusion_dim, patch, s.fusion_stride)
    return PivlAux(prompts, fusion, blocks, grouping).to(device)


def training_parsing(cfg: RunCfg, items: Sequence[Item], device: torch.device, dist: Any = None,
                     progress: bool = False, *, barrier: Callable[[], None] = lambda: None
                     ) -> tuple[dict[str, np.ndarray], Grouping]:
    """Grouped parsing maps ``{key: uint8 [H, W]}`` of the training items; rank 0 (``dist.is_main``, one
    process when None) fills the store first, the others wait at ``barrier`` and read it. A bad
    ``parsing.vote`` / ``parsing.fg_share`` is refused here, before any parsing or training."""
    from ..human_parsing import VOTES

    if cfg.parsing.vote not in VOTES:
        raise ValueError(f"parsing.vote={cfg.parsing.vote!r} is not one of {', '.join(VOTES)}")
    if not 0.0 < cfg.parsing.fg_share <= 1.0:
        raise ValueError(f"parsing.fg_share={cfg.parsing.fg_share} must be in (0, 1]")
    out = None
    if dist is None or dist.is_main:
        out = parsing_maps_for(items, cfg.parsing, device=device, progress=progress)
    barrier()
    if out is None:
        out = parsing_maps_for(items, cfg.parsing, device=device)
    return out


def fusion_grid(cfg: RunCfg) -> tuple[int, int]:
    """The fused map's grid: the input size over ``stage2.fusion_stride``."""
    s = cfg.stage2.fusion_stride
    if cfg.data.height % s or cfg.data.width % s:
        raise ValueError(f"input {cfg.data.height}x{cfg.data.width} is not a multiple of stage2.fusion_stride={s}")
    return cfg.data.height // s, cfg.data.width // s


# ----------------------------------------------------------------------------- stage 1: part phase

@dataclass
class PatchCache:
    """Frozen patch features of the training set in the text space: feats [M, L, d] (fp16), parts [M, L]
    (part-class labels on the patch grid, 0 = background), labels [M], keys."""

    feats: Tensor
    parts: Tensor
    labels: Tensor
    keys: list[str]

    def to(self, device: torch.device) -> "PatchCache":
        return PatchCache(self.feats.to(device), self.parts.to(device), self.labels.to(device), self.keys)


def load_or_compute_patch_cache(setup: Any) -> PatchCache:
    """The run's ``cache/stage1_patches.pt`` when it matches the training items, else one eval-mode pass
    (``return_patches``) of the frozen encoder, saved. Part labels come from ``setup.parsing``."""
    items = setup.data.train
    keys = [it.key for it in items]
    path = setup.run.cache_path.with_name("stage1_patches.pt") if setup.run is not None else None
    feats = None
    if path is not None and path.is_file():
        blob = torch.load(path, map_location="cpu", weights_only=True)
        if blob.get("keys") == keys:
            feats = blob["feats"]
    if feats is None:
        t0 = time.perf_counter()
        feats = setup.features(lambda out: out.patch_tokens, teacher_forced=True, return_patches=True,
                               desc="stage-1 patch cache").half().cpu()
        setup.timings["stage1_patch_cache_s"] = time.perf_counter() - t0
        if path is not None and setup.dist.is_main:
            buf = io.BytesIO()
            torch.save({"feats": feats, "keys": keys}, buf)
            atomic_write_bytes(path, buf.getvalue())
    grid = tuple(setup.model.image_encoder.grid_size)
    labels = grid_labels(setup.parsing, grid, setup.aux.grouping.num_parts + 1, setup.cfg.parsing.vote,
                         setup.cfg.parsing.fg_share)
    parts = torch.from_numpy(np.stack([labels[k] for k in keys]).astype(np.int64))
    return PatchCache(feats, parts, torch.tensor([it.pid for it in items], dtype=torch.long), keys)


@torch.no_grad()
def part_accuracies(feats: Tensor, parts: Tensor, text: Tensor, ids: Tensor) -> tuple[Tensor, Tensor]:
    """Patch features [B, L, d], part labels [B, L] (0 = background, 1..P), part-prompt features
    [U, P, d] and each image's row of them ``ids`` [B] -> (``acc``, ``part_acc``), scalars over the
    part patches (0 when there are none). By cosine similarity against all U x P prompts: ``acc``, the
    best prompt is the patch's (identity, part); ``part_acc``, the best prompt of some identity is of
    the patch's part (each part scored by its best identity)."""
    valid = parts > 0
    if not valid.any():
        return feats.new_zeros(()), feats.new_zeros(())
    p = text.shape[1]
    unit = torch.nn.functional.normalize
    sims = unit(feats[valid].float(), dim=-1) @ unit(text.detach().float().flatten(0, 1), dim=-1).t()
    target = ids[valid.nonzero()[:, 0]] * p + parts[valid] - 1
    acc = (sims.argmax(1) == target).float().mean()
    best_part = sims.view(len(sims), -1, p).amax(1).argmax(1)
    part_acc = (best_part == parts[valid] - 1).float().mean()
    return acc, part_acc


def part_step(model: ReidModel, aux: PivlAux, cache: PatchCache, cfg: RunCfg, idx: Tensor) -> StepOutput:
    """Dense InfoNCE of one batch of cache indices ``idx`` [B]: every non-background patch against the
    part prompts of the batch's identities (or the shared part prompts); text encoder once per
    (distinct identity, part). Metrics: ``acc``, patches whose best text is their positive (identity and
    part), and its chance level ``acc_chance`` = 1 / (the batch's identities x parts); ``part_acc``,
    patches whose best text is of their part, whatever its identity, and ``part_acc_chance`` = 1 / parts."""
    idx = idx.to(cache.labels.device)
    labels, parts, feats = cache.labels[idx], cache.parts[idx], cache.feats[idx].float()
    if aux.part_prompts.identity:
        uniq, ids = torch.unique(labels, return_inverse=True)
    else:
        uniq, ids = None, torch.zeros_like(labels)
    text = encode_part_text(aux.part_prompts, model.prompt_learner, model.text_encoder, uniq)  # [U, P, d]
    loss = dense_part_nce(feats, parts, text, ids, cfg.stage1.part_temp)
    acc, part_acc = part_accuracies(feats, parts, text, ids)
    chance = {"acc_chance": 1.0 / (text.shape[0] * text.shape[1]), "part_acc_chance": 1.0 / text.shape[1]}
    return StepOutput({"part_nce": loss}, {"acc": acc, "part_acc": part_acc, **chance}, size=len(labels))


# ----------------------------------------------------------------------------- stage 2: fusion

@torch.no_grad()
def all_part_text(model: ReidModel, aux: PivlAux, chunk_size: int = 64) -> Tensor:
    """Frozen part-prompt features of every identity [N, P, d] (identity-aware) or [1, P, d] (shared)."""
    if not aux.part_prompts.identity:
        return encode_part_text(aux.part_prompts, model.prompt_learner, model.text_encoder, None).float()
    n = model.prompt_learner.ctx.shape[0]
    labels = torch.arange(n, device=model.device)
    return torch.cat([encode_part_text(aux.part_prompts, model.prompt_learner, model.text_encoder, c)
                      for c in labels.split(chunk_size)]).float()


def fused_features(fusion: nn.Module, hidden: Sequence[Tensor], grid_hw: tuple[int, int]) -> Tensor:
    """Blocks' patch tokens (each [B, L, D]) -> fused per-location features [B, L', d] (row-major)."""
    fused = fusion([tokens_to_map(h, grid_hw) for h in hidden])  # [B, d, h', w']
    return fused.flatten(2).transpose(1, 2)


def part_text_ids(aux: PivlAux, labels: Tensor) -> Tensor:
    """Row of the part-text table of each image: its identity, or 0 for shared prompts."""
    return labels if aux.part_prompts.identity else torch.zeros_like(labels)


def aux_state(aux: nn.Module | None) -> Mapping[str, Any]:
    """``extra`` for ``last.pt``: the aux modules' tensors (nothing without aux)."""
    return {"aux": {k: v.detach().cpu() for k, v in aux.state_dict().items()}} if aux is not None else {}


def load_aux_state(aux: nn.Module | None, extra: Mapping[str, Any]) -> None:
    """Put :func:`aux_state`'s tensors back (strict: a state without them does not fit a pi-VL run)."""
    if aux is None:
        return
    if "aux" not in extra:
        raise KeyError("training state has no pi-VL aux state (part prompts / fusion head)")
    aux.load_state_dict(extra["aux"], strict=True)


# ----------------------------------------------------------------------------- the stages' hooks

class PivlExtras(TrainingExtras):
    """pi-VL's additions to the shared stages: parsing maps and the aux modules at set-up, the part
    phase (patch cache, the shared part context's group, :func:`part_step`) in stage 1, and in stage 2
    the fusion head (its Adam group, the blocks it reads, the parsing labels per location, the frozen
    part text and the ``fusion`` term)."""

    def __init__(self) -> None:
        self.grouping: Grouping | None = None
        self.patches: PatchCache | None = None
        self.part_text: Tensor | None = None
        self.fusion: nn.Module | None = None
        self.blocks: tuple[int, ...] = ()

    def prepare(self, cfg: RunCfg, items: Sequence[Item], device: torch.device, *, dist: Any, progress: bool,
                barrier: Callable[[], None]) -> dict[str, np.ndarray]:
        parsing, self.grouping = training_parsing(cfg, items, device, dist, progress, barrier=barrier)
        return parsing

    def build_aux(self, cfg: RunCfg, model: ReidModel, device: torch.device) -> PivlAux:
        return create_aux(cfg, model, self.grouping, device)

    def aux_state(self, aux: nn.Module | None) -> Mapping[str, Any]:
        return aux_state(aux)

    def load_aux_state(self, aux: nn.Module | None, extra: Mapping[str, Any]) -> None:
        load_aux_state(aux, extra)

    def stage1_weights(self, cfg: RunCfg, epoch: int) -> dict[str, float] | None:
        return {"part_nce": 1.0} if epoch > cfg.stage1.epochs else None

    def stage1_start(self, setup: Any) -> None:
        self.patches = load_or_compute_patch_cache(setup).to(setup.device) if setup.cfg.stage1.part_epochs else None

    def stage1_groups(self, setup: Any, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
        own_ctx = setup.aux.part_prompts.ctx
        if own_ctx is not None:  # shared part prompts (ablation): their own context learns in the part epochs
            groups.append({**groups[0], "name": "part_prompts", "params": [own_ctx]})
        return groups

    def stage1_step(self, setup: Any, weights: Mapping[str, float]) -> Callable[[Tensor], StepOutput] | None:
        if "part_nce" not in weights:
            return None
        return lambda idx: part_step(setup.model, setup.aux, self.patches, setup.cfg, idx)

    def stage2_terms(self, cfg: RunCfg) -> dict[str, float]:
        return {"fusion": cfg.stage2.w_fusion}

    def stage2_start(self, setup: Any, weights: Mapping[str, float]) -> None:
        aux = setup.aux
        if "fusion" not in weights:
            return
        if aux is None or aux.fusion is None:
            raise ValueError("stage2.w_fusion > 0 needs pi-VL's aux modules (built by prepare for a fusion weight)")
        with torch.no_grad():
            self.part_text = all_part_text(setup.model, aux)  # [N or 1, P, d], frozen
        self.fusion, self.blocks = aux.fusion, tuple(aux.blocks)

    def stage2_groups(self, setup: Any, weights: Mapping[str, float]) -> list[dict[str, Any]]:
        if self.fusion is None:
            return []
        s = setup.cfg.stage2
        return [{"name": "fusion", "params": list(self.fusion.parameters()), "lr": s.base_lr, "base_lr": s.base_lr,
                 "weight_decay": s.weight_decay}]

    def stage2_loader_kwargs(self, setup: Any) -> dict[str, Any]:
        if self.fusion is None:
            return {}
        cfg = setup.cfg
        grid = fusion_grid(cfg)
        labels = grid_labels(setup.parsing, grid, setup.aux.grouping.num_parts + 1, cfg.parsing.vote,
                             cfg.parsing.fg_share)
        return {"parsing": labels, "parsing_grid_hw": grid}

    def stage2_wrap(self, wrap: Callable[[nn.Module], nn.Module]) -> None:
        if self.fusion is not None:
            self.fusion = wrap(self.fusion)

    def stage2_hidden_blocks(self) -> tuple[int, ...]:
        return self.blocks

    def stage2_train(self) -> None:
        if self.fusion is not None:
            self.fusion.train()

    def stage2_losses(self, setup: Any, out: Any, batch: Mapping[str, Any], labels: Tensor,
                      weights: Mapping[str, float]) -> dict[str, Tensor]:
        """``fusion``: fused [B, L', d] of the blocks' patch tokens against the frozen part text of each
        location's parsing label (Long[B, L'])."""
        if self.fusion is None:
            return {}
        fused = fused_features(self.fusion, out.hidden, setup.grid_hw)
        parsing = batch["parsing"].to(setup.device)
        return {"fusion": part_fusion_mse(fused, parsing, self.part_text, part_text_ids(setup.aux, labels),
                                          setup.cfg.stage2.fusion_norm)}
