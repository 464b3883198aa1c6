"""Diagnostics of trained runs: pure functions (text-to-prototype retrieval, memory statistics, mask IoU per layer, token attention, ranked lists) and the probes that feed them from a run folder.

The pure functions take tensors (shapes in their docstrings) and have hand-checked tests; the
``*_probe`` functions load a finished run's model / caches and return exactly those tensors.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .data.types import PARTS, Item
from .memory import visual_prototypes

if TYPE_CHECKING:
    from .config import RunCfg, VgeCfg
    from .models.factory import ReidModel

__all__ = ["granularity_names", "text_to_prototype_accuracy", "text_prototype_similarity", "memory_similarities",
           "memory_stats", "mask_iou", "predicted_masks", "mask_iou_per_layer", "token_attention",
           "attention_inside", "ranked_gallery", "decreased", "part_patch_stats", "part_patch_row",
           "placement_row",
           "probe_masks", "stage1_probe", "memory_probe", "MaskProbe", "mask_probe", "RetrievalProbe",
           "retrieval_probe", "RetrievalDistances", "retrieval_distances"]


def granularity_names(num_tokens: int, parts: Sequence[str] = PARTS) -> list[str]:
    """Names of the 1 + R token / prompt slices: ``global`` then the parts (``head``, ``upper``, ``legs``)."""
    if not 1 <= num_tokens <= 1 + len(parts):
        raise ValueError(f"{num_tokens} tokens; expected 1 to {1 + len(parts)} (global + parts)")
    return ["global", *parts[:num_tokens - 1]]


def _slices(text: Tensor, feats: Tensor, labels: Tensor) -> tuple[Tensor, Tensor, int]:
    """Check shapes: text [N, G, d], feats [M, G*d], labels [M] -> (text fp32, feats [M, G, d] fp32, G)."""
    if text.ndim != 3:
        raise ValueError(f"text features must be [N, G, d], got {tuple(text.shape)}")
    n, g, d = text.shape
    if feats.ndim != 2 or feats.shape[1] != g * d or len(labels) != len(feats):
        raise ValueError(f"feats {tuple(feats.shape)} / labels {tuple(labels.shape)} do not fit text "
                         f"{tuple(text.shape)}: expected feats [M, {g * d}] and labels [M]")
    if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= n):
        raise ValueError(f"labels must lie in 0..{n - 1}")
    return text.float(), feats.float().view(len(feats), g, d), g


def text_prototype_similarity(text: Tensor, feats: Tensor, labels: Tensor) -> Tensor:
    """Cosine similarity of every identity's text feature to every visual prototype, per granularity.

    text [N, G, d] (one prompt per granularity), feats [M, G*d] (image features, the G token slices
    concatenated), labels [M] in 0..N-1 -> [G, N, N] (row: text of id i, column: prototype of id j;
    a prototype is the L2-normalised mean of the id's image slices, as VPM-1)."""
    text, feats, g = _slices(text, feats, labels)
    n = text.shape[0]
    out = []
    for s in range(g):
        protos = visual_prototypes(feats[:, s], labels.to(feats.device), n)  # [N, d]
        out.append(F.normalize(text[:, s], dim=1) @ protos.t())
    return torch.stack(out)


def text_to_prototype_accuracy(text: Tensor, feats: Tensor, labels: Tensor,
                               names: Sequence[str] | None = None) -> dict[str, float]:
    """For each granularity g: the fraction of identities (those with at least one image) whose text
    feature of granularity g is nearest (cosine) to its own visual prototype slice g.

    Shapes as :func:`text_prototype_similarity`; ``names`` default to :func:`granularity_names`.
    Chance level is 1 / (number of identities)."""
    sim = text_prototype_similarity(text, feats, labels)
    names = list(names) if names is not None else granularity_names(sim.shape[0])
    present = torch.unique(labels.to(sim.device))
    sim = sim[:, present][:, :, present]  # ids without images have no prototype
    hits = sim.argmax(dim=2) == torch.arange(len(present), device=sim.device)
    return {name: float(h.float().mean()) for name, h in zip(names, hits)}


def memory_similarities(bank: Tensor, x: Tensor, labels: Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Per sample: cosine similarity to its own prototype and to the most similar other prototype.

    bank [N, F] (L2-normalised prototypes), x [M, F] (L2-normalised features), labels [M] ->
    (own [M], nearest other [M]) as float64 NumPy arrays (needs N >= 2)."""
    if bank.ndim != 2 or x.ndim != 2 or bank.shape[1] != x.shape[1] or len(labels) != len(x):
        raise ValueError(f"bank {tuple(bank.shape)}, x {tuple(x.shape)}, labels {tuple(labels.shape)}: "
                         "expected [N, F], [M, F], [M]")
    if bank.shape[0] < 2:
        raise ValueError("memory statistics need at least two prototypes")
    sims = x.double() @ bank.double().t()  # [M, N]
    idx = labels.long().to(sims.device)
    own = sims.gather(1, idx[:, None]).squeeze(1)
    other = sims.scatter(1, idx[:, None], float("-inf")).max(dim=1).values
    return own.cpu().numpy(), other.cpu().numpy()


def memory_stats(bank: Tensor, x: Tensor, labels: Tensor) -> dict[str, float]:
    """Summary of a prototype memory against the features it was built from (shapes as
    :func:`memory_similarities`): mean similarity to the own prototype (``own_sim``), mean of each
    id's hardest (lowest) own similarity (``hardest_own_sim``), mean similarity to the nearest other
    prototype (``other_sim``), the fraction of samples nearest to their own prototype
    (``nearest_own``), and the mean cosine similarity between distinct prototypes (``proto_sim``)."""
    own, other = memory_similarities(bank, x, labels)
    lab = labels.cpu().numpy()
    hardest = [own[lab == k].min() for k in np.unique(lab)]
    b = F.normalize(bank.double(), dim=1)
    gram = (b @ b.t()).cpu().numpy()
    n = len(gram)
    return {"own_sim": float(own.mean()), "hardest_own_sim": float(np.mean(hardest)),
            "other_sim": float(other.mean()), "nearest_own": float((own > other).mean()),
            "proto_sim": float((gram.sum() - np.trace(gram)) / (n * (n - 1)))}


def mask_iou(pred: Tensor, target: Tensor) -> Tensor:
    """IoU of boolean masks pred, target [..., L] over the last axis -> [...] (both empty: 1)."""
    pred, target = pred.bool(), target.bool()
    inter = (pred & target).sum(-1).double()
    union = (pred | target).sum(-1).double()
    return torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union))


def predicted_masks(mask_logits: Sequence[Tensor], tau: float = 1.0, thresh: float = 0.5) -> Tensor:
    """Each block's gate as the offline gating applies it, sigmoid(A_i / tau) > thresh:
    per block [B, R, L] -> Bool[B, blocks, R, L]."""
    if not mask_logits:
        raise ValueError("no mask logits (a model without part tokens?)")
    return torch.stack([torch.sigmoid(a.float() / tau) > thresh for a in mask_logits], dim=1)


def mask_iou_per_layer(mask_logits: Sequence[Tensor], target: Tensor, tau: float = 1.0, thresh: float = 0.5
                       ) -> np.ndarray:
    """Mean IoU over images of each block's predicted mask (:func:`predicted_masks`) with the VGE mask:
    mask_logits = per block [B, R, L], target Bool[B, R, L] -> [blocks, R]."""
    pred = predicted_masks(mask_logits, tau, thresh)
    if pred.shape[:1] + pred.shape[2:] != target.shape:
        raise ValueError(f"mask logits {tuple(mask_logits[0].shape)} vs target {tuple(target.shape)}")
    return mask_iou(pred, target[:, None]).mean(0).cpu().numpy()


def attention_inside(attn: Tensor, masks: Tensor, num_parts: int, share: bool = True) -> Tensor:
    """Each part token's attention (heads averaged) on the patches inside a mask: attn [B, h, T, T]
    (T = 1 + R + L), masks Bool[B, R, L] -> [B, R]. ``share``: as a fraction of the token's attention
    over all patches (0 when it attends to no patch); otherwise the raw attention mass."""
    rows = attn.float().mean(1)[:, 1:1 + num_parts, 1 + num_parts:]  # [B, R, L]
    if rows.shape != masks.shape:
        raise ValueError(f"attention rows {tuple(rows.shape)} vs masks {tuple(masks.shape)}")
    inside = (rows * masks.float()).sum(-1)
    return inside / rows.sum(-1).clamp(min=1e-12) if share else inside


def token_attention(attn: Tensor, num_parts: int, grid_hw: tuple[int, int]) -> Tensor:
    """Attention of the CLS and part tokens over the patches, averaged over heads and renormalised
    over the patches: attn [B, h, T, T] (T = 1 + R + L, rows are queries) -> [B, 1 + R, gh, gw]."""
    gh, gw = grid_hw
    b, _, t, t2 = attn.shape
    if t != t2 or t != 1 + num_parts + gh * gw:
        raise ValueError(f"attention {tuple(attn.shape)} does not fit 1 + {num_parts} parts + {gh}x{gw} patches")
    rows = attn.float().mean(1)[:, :1 + num_parts, 1 + num_parts:]  # [B, 1+R, L]
    rows = rows / rows.sum(-1, keepdim=True).clamp(min=1e-12)
    return rows.reshape(b, 1 + num_parts, gh, gw)


def ranked_gallery(dist: Any, q_pids: Any, g_pids: Any, q_camids: Any, g_camids: Any, *,
                   topk: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Each query's top-``topk`` gallery items under the Market rule (same id AND same camera removed,
    as the evaluator does; ties by gallery index): dist [Q, G] -> (indices [Q, k] into the gallery,
    -1 where the list is shorter; true match [Q, k] bool)."""
    dist = np.asarray(dist, dtype=np.float64)
    qp, gp, qc, gc = (np.asarray(a).astype(np.int64) for a in (q_pids, g_pids, q_camids, g_camids))
    if dist.shape != (len(qp), len(gp)) or len(qc) != len(qp) or len(gc) != len(gp):
        raise ValueError(f"dist {dist.shape} does not fit {len(qp)} queries x {len(gp)} gallery items")
    idx = np.full((len(qp), topk), -1, np.int64)
    match = np.zeros((len(qp), topk), bool)
    for i in range(len(qp)):
        order = np.argsort(dist[i], kind="stable")
        keep = order[~((gp[order] == qp[i]) & (gc[order] == qc[i]))][:topk]
        idx[i, :len(keep)] = keep
        match[i, :len(keep)] = gp[keep] == qp[i]
    return idx, match


def decreased(rows: Sequence[Mapping[str, Any]], key: str = "loss") -> bool:
    """Did ``key`` end lower than it started over the epoch rows (``logs/<stage>.csv``)?"""
    values = [float(r[key]) for r in rows if key in r]
    if len(values) < 2:
        raise ValueError(f"need at least two epochs with {key!r}, got {len(values)}")
    return values[-1] < values[0]


def part_patch_stats(labels: Any, class_names: Sequence[str], few: int = 2) -> dict[str, Any]:
    """What a dense part loss sees: patch labels of N images ``[N, P]`` (0 = background, i = part class i of
    ``class_names``, background first) -> ``images``, ``patches`` (P), ``background`` (share of all patches),
    ``part_mean`` / ``part_min`` (part patches per image), ``few_share`` (share of images with at most
    ``few`` part patches) and ``with`` (per part class: share of images with at least one patch of it)."""
    lab = np.asarray(labels)
    if lab.ndim != 2 or lab.shape[0] == 0 or lab.shape[1] == 0:
        raise ValueError(f"part_patch_stats: labels must be [N, P] with N, P >= 1, got shape {lab.shape}")
    if lab.min() < 0 or lab.max() >= len(class_names):
        raise ValueError(f"part_patch_stats: labels must lie in 0..{len(class_names) - 1} "
                         f"({len(class_names)} class names), got {lab.min()}..{lab.max()}")
    parts = (lab > 0).sum(1)  # [N]
    return {"images": int(lab.shape[0]), "patches": int(lab.shape[1]), "background": float((lab == 0).mean()),
            "part_mean": float(parts.mean()), "part_min": int(parts.min()), "few": few,
            "few_share": float((parts <= few).mean()),
            "with": {name: float((lab == i).any(1).mean()) for i, name in enumerate(class_names) if i > 0}}


def part_patch_row(stats: Mapping[str, Any], **keys: Any) -> dict[str, Any]:
    """One table row of :func:`part_patch_stats` (``keys`` first, e.g. grid and vote): shares in percent
    with one decimal, the mean with one decimal."""
    return {**keys, "images": stats["images"], "background": f"{100 * stats['background']:.1f}%",
            "part patches / image": f"{stats['part_mean']:.1f}", "fewest": stats["part_min"],
            f"images with <= {stats['few']}": f"{100 * stats['few_share']:.1f}%",
            **{f"images with {name}": f"{100 * v:.1f}%" for name, v in stats["with"].items()}}


def placement_row(boxes: Sequence[Mapping[str, Any]], parts: Sequence[str] = PARTS, **keys: Any) -> dict[str, Any]:
    """How often a box source places every part: ``boxes[i]`` maps each of ``parts`` to image i's box
    ``(x0, y0, x1, y1)`` or None -> a row with ``keys`` first, ``crops`` (N), ``every part placed`` (share
    of the images with a box for each part) and ``upright order`` (share of those whose part centres go
    strictly down in ``parts`` order; ``-`` when no image has every part). Shares in percent, one decimal."""
    from .grounding.backends.cascade import vertical_order

    upright = [o for o in (vertical_order(b, parts) for b in boxes) if o is not None]  # images with every part
    return {**keys, "crops": len(boxes),
            "every part placed": f"{100 * len(upright) / len(boxes):.1f}%" if boxes else "-",
            "upright order": f"{100 * sum(upright) / len(upright):.1f}%" if upright else "-"}


# ----------------------------------------------------------------------------- probes of a run folder

def _model(run: str | Path, device: str | torch.device) -> tuple[ReidModel, RunCfg]:
    from .train import model_from_checkpoint

    return model_from_checkpoint(run, torch.device(device))


def probe_masks(train: Sequence[Item], items: Sequence[Item], vge: VgeCfg, grid_hw: tuple[int, int],
                device: str | torch.device = "cpu") -> dict[str, Any]:
    """VGE masks ``{key: bool [R, h*w]}`` of ``train`` and ``items`` as training sees them: calibrated over
    the training set (plus any of ``items`` outside it), not over ``items`` alone, whose few boxes would
    fall back to the prior bands and show other masks than the ones the model was trained with."""
    from .grounding import part_masks_for

    known = {it.key for it in train}
    return part_masks_for(list(train) + [it for it in items if it.key not in known], vge, grid_hw, device=device)


def _setup(model: ReidModel, cfg: RunCfg, device: str | torch.device, items: Sequence[Item] | None = None) -> Any:
    """A TrainSetup around a loaded model (protocol data, VGE masks of the training set and of ``items``).

    The masks are those training used: calibrated over the whole training set (calibration is fitted
    on the images asked for), with any of ``items`` outside it added, never over ``items`` alone."""
    from .data.protocols import build
    from .train import TrainSetup

    data = build(cfg.data.protocol, split_index=cfg.data.split_index, strict=cfg.data.strict)
    masks = (probe_masks(data.train, items or (), cfg.vge, tuple(model.image_encoder.grid_size), device)
             if model.num_parts else None)
    return TrainSetup(cfg, torch.device(device), data, model, masks, progress=False)


def stage1_probe(run: str | Path, device: str | torch.device = "cpu") -> tuple[Tensor, Tensor, Tensor]:
    """A finished run's stage-1 view: (text [N, G, d] = every identity's prompt features (G = 1 + R),
    feats [M, G*d] = the cached stage-1 image features, labels [M]), on the CPU."""
    from .train import RunDir

    rd = RunDir(run)
    model, _ = _model(run, device)  # final.pt carries the frozen text encoder when it was random
    cache = torch.load(rd.cache_path, map_location="cpu", weights_only=True)
    return model.all_text_features().float().cpu(), cache["feats"].float(), cache["labels"].long()


def memory_probe(run: str | Path, device: str | torch.device = "cpu") -> tuple[Tensor, Tensor, Tensor]:
    """VPM-2 of a finished run's final model, as stage 2 builds it each epoch (eval mode, test transform,
    VGE masks for MUVA): (bank [N, F] prototypes, x [M, F] normalised BN features, labels [M]), CPU."""
    from .train import feature_pass

    model, cfg = _model(run, device)
    setup = _setup(model, cfg, device)
    x = feature_pass(model, setup.data.train, setup, lambda out: F.normalize(out.bn_feat.float(), dim=1),
                     teacher_forced=True, desc="VPM-2").cpu()
    labels = torch.tensor([it.pid for it in setup.data.train])
    return visual_prototypes(x, labels, setup.data.num_classes), x, labels


@dataclass
class MaskProbe:
    """AM-MSA on some images: VGE masks Bool[n, R, L], per-block accumulated mask logits [n, R, L] and
    attention [n, h, T, T] (predicted masks, as at test time), the patch grid and the items."""

    items: list[Item]
    vge: Tensor
    logits: list[Tensor]
    attn: list[Tensor]
    grid_hw: tuple[int, int]
    tau: float
    thresh: float


@torch.no_grad()
def mask_probe(run: str | Path, items: Sequence[Item], device: str | torch.device = "cpu") -> MaskProbe:
    """Run a finished MUVA model on ``items`` (training images: the VGE has grounded them) with
    ``need_weights``; raises ValueError for a model without part tokens."""
    from .batches.loaders import make_test_loader
    from .features import batch_features

    model, cfg = _model(run, device)
    if not model.num_parts:
        raise ValueError(f"{run}: a {cfg.method} model has no part tokens, hence no masks")
    setup = _setup(model, cfg, device, items)

    def encode_batch(batch: Mapping[str, Any]) -> tuple[Tensor, Tensor]:
        """Predicted masks (no ``part_masks``): per-block logits [n_blocks, B, R, L], attention [n_blocks, B, h, T, T]."""
        out = model(batch["img"], need_weights=True)
        return torch.stack(list(out.mask_logits)), torch.stack(list(out.attn_weights))

    vge, logits, attn = [], [], []
    loader = make_test_loader(list(items), cfg.data, device, setup.masks)
    for batch, (block_logits, block_attn) in batch_features(loader, encode_batch, device, progress=False,
                                                            desc="mask probe"):
        vge.append(batch["mask"])
        logits.append(block_logits.cpu())
        attn.append(block_attn.cpu())
    stacked, weights = torch.cat(logits, 1), torch.cat(attn, 1)
    return MaskProbe(list(items), torch.cat(vge).bool(), logits=list(stacked), attn=list(weights),
                     grid_hw=tuple(model.image_encoder.grid_size), tau=cfg.model.rmp_sigmoid_tau,
                     thresh=cfg.model.gate_thresh)


@dataclass
class RetrievalProbe:
    """Ranked lists of some queries of a target: query items, the gallery, indices [n, k] into it
    (-1: shorter list) and true-match flags [n, k] (Market rule)."""

    target: str
    queries: list[Item]
    gallery: list[Item]
    index: np.ndarray
    match: np.ndarray


@torch.no_grad()
def retrieval_probe(run: str | Path, n_queries: int = 4, topk: int = 10, target: str | None = None,
                    device: str | torch.device = "cpu") -> RetrievalProbe:
    """A finished run's test features on ``target`` (default: the protocol's first) with its test
    feature and metric; ``n_queries`` queries spread evenly over the query set (0: all), each with
    its top ``topk`` gallery items (0: the whole ranked gallery, e.g. for per-query AP)."""
    from .batches.loaders import make_test_loader
    from .data.protocols import build
    from .eval import pairwise_distance
    from .features import extract_features
    from .train import test_encoder
    from .utils import evenly_spaced

    model, cfg = _model(run, device)
    data = build(cfg.data.protocol, split_index=cfg.data.split_index, strict=cfg.data.strict)
    target = target or next(iter(data.targets))
    split = data.targets[target][0]
    queries = evenly_spaced(list(split.query), n_queries)
    encode = test_encoder(model, cfg, torch.device(device))
    q, g = (extract_features(encode, make_test_loader(its, cfg.data, device), device, flip=cfg.eval.flip,
                             progress=False) for its in (queries, list(split.gallery)))
    dist = pairwise_distance(q["feats"], g["feats"], cfg.eval.metric, cfg.eval.feat_norm)
    index, match = ranked_gallery(dist.numpy(), q["pids"], g["pids"], q["camids"], g["camids"],
                                  topk=topk or len(split.gallery))
    return RetrievalProbe(target, queries, list(split.gallery), index, match)


@dataclass
class RetrievalDistances:
    """A run's query-gallery distances on one target, with what re-ranking needs: ``qg`` [Q, G], ``qq`` [Q, Q],
    ``gg`` [G, G] (the run's test feature and metric), the query and gallery items in that order; ``targets``:
    every target of the run's protocol."""

    target: str
    targets: list[str]
    queries: list[Item]
    gallery: list[Item]
    qg: np.ndarray
    qq: np.ndarray
    gg: np.ndarray


@torch.no_grad()
def retrieval_distances(run: str | Path, target: str | None = None, n_queries: int = 0,
                        device: str | torch.device = "cpu") -> RetrievalDistances:
    """A finished run's distances on ``target`` (default: the protocol's first), for ``n_queries`` queries
    spread evenly over the query set (0: all) against the whole gallery: what the retrieval explorer ranks,
    with and without re-ranking."""
    from .batches.loaders import make_test_loader
    from .data.protocols import build
    from .eval import pairwise_distance
    from .features import extract_features
    from .train import test_encoder
    from .utils import evenly_spaced

    model, cfg = _model(run, device)
    data = build(cfg.data.protocol, split_index=cfg.data.split_index, strict=cfg.data.strict)
    target = target or next(iter(data.targets))
    if target not in data.targets:
        raise ValueError(f"{run}: target {target!r} is not in protocol {cfg.data.protocol} ({list(data.targets)})")
    split = data.targets[target][0]
    queries = evenly_spaced(list(split.query), n_queries)
    encode = test_encoder(model, cfg, torch.device(device))
    q, g = (extract_features(encode, make_test_loader(its, cfg.data, device), device, flip=cfg.eval.flip,
                             progress=False) for its in (queries, list(split.gallery)))
    dist = [pairwise_distance(a["feats"], b["feats"], cfg.eval.metric, cfg.eval.feat_norm).numpy()
            for a, b in ((q, g), (q, q), (g, g))]
    return RetrievalDistances(target, list(data.targets), queries, list(split.gallery), *dist)
