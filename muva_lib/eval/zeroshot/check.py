"""Did it learn? The zero-shot checks of a CLIP on a synthetic domain's test identities (never trained on).

One pass over the test images (query + gallery, distractors included) gives global and patch features;
every text is encoded once. Then:

* ``t2i_*``: each distinct (identity, caption) of the test images retrieves the test images (CUHK-PEDES style);
* ``attr_*``: every part attribute of every image by prompting (:mod:`.prompts`), mA = mean balanced accuracy;
* ``binding_acc``: caption vs the caption with upper and lower colours swapped (images whose colours differ);
* ``part_pointing``: best patch of the "head" / "upper body" / "legs" text inside that part's ground-truth box;
* ``reid_*``: query vs gallery with the frozen image encoder (:func:`muva_lib.eval.evaluate_features`).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np
import torch

from ...config import DataCfg
from ...data.readers import get_reader
from ...data.synth.generate import GtRecord, load_gt
from ...data.types import PARTS, Item
from ...utils import resolve_device
from .frozen import rank_features
from .encoder import ZeroShotModel, encode_images, encode_texts, load_zeroshot_model, token_lengths
from .metrics import (binding_accuracy, box_patch_coverage, chance_recall_at_k, fixed_patch_pointing,
                      mean_attribute_accuracy, pointing_accuracy, t2i_retrieval)
from .prompts import ATTRIBUTE_VALUES, applies, attribute_prompts, binding_captions, part_texts

__all__ = ["ZeroShotCfg", "zeroshot_items", "TextPlan", "plan_texts", "reid_metrics", "ZeroShotProbe", "probe",
           "summarise", "run_zeroshot", "SUMMARY_KEYS"]

#: the headline numbers (fractions), in table order
SUMMARY_KEYS = ("t2i_r1", "t2i_r5", "t2i_r10", "t2i_r10_chance", "t2i_map", "attr_ma", "attr_ma_chance",
                "binding_acc", "part_pointing", "part_pointing_chance", "part_pointing_fixed", "reid_map", "reid_r1")


@dataclass
class ZeroShotCfg:
    """What to check, with which weights."""

    dataset: str = "synth-b"  # a synthetic domain (its gt/parts.jsonl holds captions, attributes, boxes)
    root: str = ""  # the domain folder; "" = the reader's default (data/synth/<dataset>, $MUVA_SYNTH)
    weights: str = "synth"  # synth (the shipped pretrained weights) | random (the floor) | PATH of a state dict
    arch: str = "muva-tiny"
    seed: int = 0  # random init
    height: int = 128  # model input (pixels); the pretraining resolution
    width: int = 64
    context_length: int = 0  # 0: the weights file's, else the architecture's
    limit: int = 0  # at most this many test identities, the first by id (0: all); distractors always stay
    part_template: str = "{part}"  # the part texts ({part} = head | upper body | legs)
    batch_size: int = 128
    device: str = "auto"


def zeroshot_items(query: Sequence[Item], gallery: Sequence[Item], limit: int = 0) -> tuple[list[Item], list[Item]]:
    """Query and gallery restricted to the first ``limit`` identities by id (0: all); distractors (id 0) stay."""
    if limit <= 0:
        return list(query), list(gallery)
    keep = set(sorted({it.pid for it in (*query, *gallery) if it.pid > 0})[:limit])
    return [it for it in query if it.pid in keep], [it for it in gallery if it.pid in keep or it.pid == 0]


@dataclass
class TextPlan:
    """The texts of every check, each once (``texts`` [T], in first-use order), and what each check scores, as
    rows of ``texts`` and indices of the images (``records`` order)."""

    texts: list[str]
    t2i_rows: list[int]  # [Tq] the distinct (identity, caption) queries
    t2i_ids: list[int]  # [Tq] their identities
    attributes: dict[str, tuple[list[int], list[list[int]], list[int]]]  # key -> images [Na], rows [Na, V], labels [Na]
    binding_images: list[int]  # [P] images whose upper and lower colours differ
    binding_rows: list[list[int]]  # [P, 2] (caption, colour-swapped caption)
    part_rows: list[int]  # [R] the part texts, PARTS order


def plan_texts(records: Sequence[GtRecord], part_template: str = "{part}") -> TextPlan:
    """Every text the checks need for these images (:mod:`.prompts`), deduplicated."""
    rows: dict[str, int] = {}

    def index(texts: Sequence[str]) -> list[int]:
        return [rows.setdefault(t, len(rows)) for t in texts]

    pairs = sorted({(rec.pid, rec.caption) for rec in records if rec.pid > 0})
    t2i_rows = index([c for _, c in pairs])
    attributes = {}
    for key in ATTRIBUTE_VALUES:
        images = [n for n, rec in enumerate(records) if applies(rec.attributes, key)]
        prompts = [attribute_prompts(records[n].attributes, key) for n in images]
        if images:
            attributes[key] = (images, [index(p) for p, _ in prompts], [label for _, label in prompts])
    binding = [(n, binding_captions(rec.attributes, rec.view)) for n, rec in enumerate(records)]
    binding = [(n, pair) for n, pair in binding if pair is not None]
    binding_rows = [index(pair) for _, pair in binding]
    part_rows = index(part_texts(part_template))
    return TextPlan(list(rows), t2i_rows, [p for p, _ in pairs], attributes, [n for n, _ in binding], binding_rows,
                    part_rows)


def _boxes(records: Sequence[GtRecord]) -> np.ndarray:
    """Part boxes [N, R, 4] as fractions of each image's width and height, NaN where a part has none."""
    out = np.full((len(records), len(PARTS), 4), np.nan)
    for n, rec in enumerate(records):
        for r, part in enumerate(PARTS):
            box = rec.boxes.get(part)
            if box is not None:
                out[n, r] = np.asarray(box, dtype=np.float64) / [rec.width, rec.height, rec.width, rec.height]
    return out


def _clean(value: Any) -> Any:
    """Plain JSON values: NaN becomes None, NumPy scalars become Python numbers."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (float, np.floating)):
        return None if math.isnan(value) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


def reid_metrics(q_feats: torch.Tensor, g_feats: torch.Tensor, query: Sequence[Item], gallery: Sequence[Item], *,
                 device: torch.device | str = "cpu") -> dict[str, float]:
    """Re-ID with frozen features: query [Q, d] against gallery [G, d] by the workbench's evaluator (cosine
    ranking, the same-identity same-camera images left out) -> ``reid_map``, ``reid_r1``, ``reid_r5``, ``reid_r10``."""
    res = rank_features(q_feats, g_feats, query, gallery, device=device)
    return {"reid_map": res["mAP"], "reid_r1": res["rank1"], "reid_r5": res["rank5"], "reid_r10": res["rank10"]}


@dataclass
class ZeroShotProbe:
    """Everything the checks are computed from, kept for figures and exploration (built by :func:`probe`):
    the model, the test images (``query`` then ``gallery``; ``records`` their ground truth, same order), their
    global features ``feats`` [N, d] and patch features ``patches`` [N, h*w, d], the texts of every check
    (``plan``) and their features ``text_feats`` [T, d], and ``sim`` [N, T], every image against every text."""

    cfg: ZeroShotCfg
    model: ZeroShotModel
    query: list[Item]
    gallery: list[Item]
    records: list[GtRecord]
    feats: torch.Tensor
    patches: torch.Tensor
    plan: TextPlan
    text_feats: torch.Tensor
    sim: np.ndarray

    @property
    def items(self) -> list[Item]:
        """The test images, query then gallery ([N], the rows of ``feats`` and ``sim``)."""
        return self.query + self.gallery

    @property
    def boxes(self) -> np.ndarray:
        """Part boxes [N, R, 4] as fractions of the image (x0, y0, x1, y1), NaN where a part has none."""
        return _boxes(self.records)

    def part_maps(self) -> np.ndarray:
        """Similarity of every patch to each part text (:data:`PARTS` order): [N, R, h, w]."""
        h, w = self.model.grid
        part_feats = self.text_feats[self.plan.part_rows]  # [R, d]
        maps = torch.einsum("nld,rd->nrl", self.patches, part_feats)
        return maps.reshape(len(self.records), len(self.plan.part_rows), h, w).cpu().numpy()

    def binding_scores(self) -> np.ndarray:
        """[P, 2]: each binding image's similarity to its caption and to the colour-swapped caption."""
        if not self.plan.binding_images:
            return np.zeros((0, 2))
        return self.sim[np.asarray(self.plan.binding_images)[:, None], np.asarray(self.plan.binding_rows)]


def probe(cfg: ZeroShotCfg, *, progress: bool = False) -> ZeroShotProbe:
    """Load the model of ``cfg``, encode ``cfg.dataset``'s test images (global and per patch) and every text of
    the checks once: the data of :func:`summarise` and of the notebook's figures."""
    device = resolve_device(cfg.device)
    model = load_zeroshot_model(cfg.weights, arch=cfg.arch, image_size=(cfg.height, cfg.width), seed=cfg.seed,
                                context_length=cfg.context_length, device=device)
    reader = get_reader(cfg.dataset)(root=cfg.root or None)
    split = reader.read(0)
    gt = load_gt(reader.root)
    query, gallery = zeroshot_items(split.query, split.gallery, cfg.limit)
    items = query + gallery
    missing = [it.relpath for it in items if it.relpath not in gt]
    if missing:
        raise ValueError(f"{cfg.dataset}: {len(missing)} test images have no ground-truth record in gt/parts.jsonl "
                         f"(first: {missing[0]}); regenerate the domain with `python -m muva_lib synth`")
    records = [gt[it.relpath] for it in items]
    data_cfg = DataCfg(height=cfg.height, width=cfg.width, test_batch_size=cfg.batch_size)
    feats, patches = encode_images(model, items, data_cfg, progress=progress)  # [N, d], [N, L, d]
    plan = plan_texts(records, cfg.part_template)
    text_feats = encode_texts(model, plan.texts)  # [T, d]
    sim = (feats @ text_feats.T).cpu().numpy()  # [N, T]: every image against every text
    return ZeroShotProbe(cfg, model, query, gallery, records, feats, patches, plan, text_feats, sim)


def summarise(p: ZeroShotProbe) -> dict[str, Any]:
    """The numbers of every check from a :class:`ZeroShotProbe`: a flat dict of fractions (:data:`SUMMARY_KEYS`
    and more), ``per_attribute`` and ``sizes``, JSON-ready (what :func:`run_zeroshot` returns)."""
    cfg, model, records, sim, plan = p.cfg, p.model, p.records, p.sim, p.plan
    out: dict[str, Any] = {"dataset": cfg.dataset, "weights": model.weights}
    t2i = t2i_retrieval(sim[:, plan.t2i_rows].T, plan.t2i_ids, [rec.pid for rec in records])
    out.update({f"t2i_{k}": t2i[k] for k in ("r1", "r5", "r10")}, t2i_map=t2i["mAP"])
    out["t2i_r10_chance"] = chance_recall_at_k(plan.t2i_ids, [rec.pid for rec in records], 10)
    tasks = {key: (sim[np.asarray(images)[:, None], np.asarray(rows)], labels)
             for key, (images, rows, labels) in plan.attributes.items()}
    attrs = mean_attribute_accuracy(tasks)
    out.update(attr_ma=attrs["mA"], attr_accuracy=attrs["accuracy"],
               attr_ma_chance=float(np.mean([1 / len(ATTRIBUTE_VALUES[key]) for key in tasks])))
    scores = p.binding_scores()  # [P, 2]: true, swapped
    out["binding_acc"] = binding_accuracy(scores[:, 0], scores[:, 1]) if len(scores) else float("nan")
    h, w = model.grid
    boxes = p.boxes
    pointing = pointing_accuracy(p.part_maps(), boxes, PARTS)
    out["part_pointing"] = pointing["mean"]
    out.update({f"part_pointing_{part}": v for part, v in pointing["per_part"].items()})
    out["part_pointing_chance"] = float(np.nanmean(box_patch_coverage(boxes, (h, w))))
    out["part_pointing_fixed"] = fixed_patch_pointing(boxes, (h, w))["mean"]
    nq = len(p.query)
    out.update(reid_metrics(p.feats[:nq], p.feats[nq:], p.query, p.gallery, device=model.device))
    lengths = token_lengths(plan.texts)
    out["per_attribute"] = {k: v["balanced"] for k, v in attrs["per_attribute"].items()}
    out["sizes"] = {"images": len(records), "query": nq, "gallery": len(p.gallery),
                    "identities": len({rec.pid for rec in records if rec.pid > 0}), "t2i_texts": len(plan.t2i_ids),
                    "binding_pairs": len(plan.binding_images), "texts": len(plan.texts),
                    "context_length": model.context_length,
                    "texts_cut": sum(n > model.context_length for n in lengths), "longest_text": max(lengths)}
    out["config"] = asdict(cfg)
    return _clean(out)


def run_zeroshot(cfg: ZeroShotCfg, *, progress: bool = False) -> dict[str, Any]:
    """Every check of :mod:`muva_lib.eval.zeroshot` on ``cfg.dataset``'s test identities: :func:`summarise` of
    :func:`probe`."""
    return summarise(probe(cfg, progress=progress))
