"""Zero-shot metrics of a vision-language model (pure NumPy): text-to-image retrieval, attribute mA, colour
binding, part pointing.

Every function takes similarity scores (higher = more alike) and ground truth, and returns fractions in [0, 1].
Ties: a ranking or an argmax breaks them by the lower index (stable); the binding test counts a tie as half.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["t2i_retrieval", "chance_recall_at_k", "attribute_accuracy", "mean_attribute_accuracy", "binding_accuracy",
           "pointing_hits", "pointing_accuracy", "box_patch_coverage", "fixed_patch_pointing"]


def _array(x: Any, name: str, ndim: int, dtype: Any = np.float64) -> np.ndarray:
    a = np.asarray(x, dtype=dtype)
    if a.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {a.shape}")
    return a


def t2i_retrieval(sim: Any, text_ids: Any, image_ids: Any, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Text-to-image retrieval, CUHK-PEDES style: a text matches every image of its identity.

    ``sim`` [T, I]: similarity of each text to each image; ``text_ids`` [T], ``image_ids`` [I]: identities.
    Images are ranked by decreasing similarity (ties: lower image index first). Returns ``r{k}`` for each k
    in ``ks`` (share of texts with a match among their top k), ``mAP`` (mean over texts of the average
    precision over all their matching images) and ``num_texts``. A text without any matching image is an error.
    """
    sim = _array(sim, "sim", 2)
    tids, iids = _array(text_ids, "text_ids", 1, np.int64), _array(image_ids, "image_ids", 1, np.int64)
    if sim.shape != (len(tids), len(iids)):
        raise ValueError(f"sim has shape {sim.shape}, expected [{len(tids)} texts, {len(iids)} images]")
    if np.isnan(sim).any():
        raise ValueError("sim contains NaN")
    order = np.argsort(-sim, axis=1, kind="stable")  # [T, I] image indices, best first
    match = tids[:, None] == iids[order]  # [T, I] bool, in rank order
    n_rel = match.sum(axis=1)
    if (n_rel == 0).any():
        bad = sorted(set(tids[n_rel == 0].tolist()))
        raise ValueError(f"{int((n_rel == 0).sum())} texts have no image of their identity (ids {bad[:8]})")
    first = match.argmax(axis=1)  # 0-based rank of the first match
    precision = np.cumsum(match, axis=1) / np.arange(1, match.shape[1] + 1)
    ap = (precision * match).sum(axis=1) / n_rel
    out = {f"r{k}": float((first < k).mean()) for k in ks}
    out.update(mAP=float(ap.mean()), num_texts=int(len(tids)))
    return out


def chance_recall_at_k(text_ids: Any, image_ids: Any, k: int) -> float:
    """R@k of a random ranking, the floor of :func:`t2i_retrieval`: mean over texts of the chance that k images
    drawn without replacement from the I include one of the text's m matches, 1 - prod_{j<k} (I - m - j) / (I - j).

    ``text_ids`` [T], ``image_ids`` [I]: identities."""
    tids, iids = _array(text_ids, "text_ids", 1, np.int64), _array(image_ids, "image_ids", 1, np.int64)
    n = len(iids)
    if not len(tids) or not 1 <= k:
        raise ValueError(f"need texts and k >= 1 (got {len(tids)} texts, k={k})")
    m = (tids[:, None] == iids[None, :]).sum(axis=1)  # [T] matches per text
    j = np.arange(min(k, n))
    miss = np.prod(np.clip(n - m[:, None] - j, 0, None) / (n - j), axis=1)
    return float(np.mean(1 - miss))


def attribute_accuracy(scores: Any, labels: Any) -> dict[str, float]:
    """One attribute recognised by prompting: ``scores`` [N, V] (each image against the V value prompts),
    ``labels`` [N] (the true value's index). The prediction is the best-scoring value (ties: lower index).

    Returns ``accuracy`` (share of images right) and ``balanced`` (mean over the values that occur in
    ``labels`` of their recall: the pedestrian-attribute "mA" of one attribute; chance is 1/V whatever the
    value frequencies; for two values it is (TPR + TNR) / 2)."""
    scores, labels = _array(scores, "scores", 2), _array(labels, "labels", 1, np.int64)
    if len(scores) != len(labels) or not len(labels):
        raise ValueError(f"scores {scores.shape} and labels {labels.shape}: expected [N, V] and [N], N > 0")
    if labels.min() < 0 or labels.max() >= scores.shape[1]:
        raise ValueError(f"labels must index the {scores.shape[1]} values, got {labels.min()}..{labels.max()}")
    right = scores.argmax(axis=1) == labels
    recalls = [right[labels == v].mean() for v in np.unique(labels)]
    return {"accuracy": float(right.mean()), "balanced": float(np.mean(recalls))}


def mean_attribute_accuracy(tasks: Mapping[str, tuple[Any, Any]]) -> dict[str, Any]:
    """``tasks``: attribute name -> (scores [N_a, V_a], labels [N_a]) (see :func:`attribute_accuracy`).

    Returns ``mA`` (mean over attributes of the balanced accuracy), ``accuracy`` (mean plain accuracy) and
    ``per_attribute`` {name: {"accuracy", "balanced", "n"}}."""
    if not tasks:
        raise ValueError("no attribute to score")
    per = {name: {**attribute_accuracy(s, y), "n": int(len(y))} for name, (s, y) in tasks.items()}
    return {"mA": float(np.mean([p["balanced"] for p in per.values()])),
            "accuracy": float(np.mean([p["accuracy"] for p in per.values()])), "per_attribute": per}


def binding_accuracy(true_scores: Any, swapped_scores: Any) -> float:
    """Share of pairs where the true caption scores higher than its colour-swapped twin; a tie counts half.

    ``true_scores``, ``swapped_scores`` [N]: one image's similarity to each caption. Chance is 0.5."""
    t, s = _array(true_scores, "true_scores", 1), _array(swapped_scores, "swapped_scores", 1)
    if t.shape != s.shape or not len(t):
        raise ValueError(f"true_scores {t.shape} and swapped_scores {s.shape}: expected the same [N], N > 0")
    return float(np.mean((t > s) + 0.5 * (t == s)))


def _boxes(boxes: Any, n: int, r: int) -> np.ndarray:
    b = _array(boxes, "boxes", 3)
    if b.shape != (n, r, 4):
        raise ValueError(f"boxes has shape {b.shape}, expected [{n}, {r}, 4]")
    return b


def _centres(grid_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Normalised patch-centre rows cy [h] and columns cx [w] (the rule of :mod:`muva_lib.geometry.patch_grid`)."""
    h, w = grid_hw
    return (np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w


def pointing_hits(sim_maps: Any, boxes: Any) -> np.ndarray:
    """Whether each part text's best patch lies in that part's box.

    ``sim_maps`` [N, R, h, w]: similarity of every patch of image n to the text of part r; ``boxes``
    [N, R, 4]: the part boxes as (x0, y0, x1, y1) fractions of the image width and height, NaN where the part
    has no box. The best patch (argmax, ties: first in row-major order) hits when its centre
    ((col + 0.5) / w, (row + 0.5) / h) lies in the box, half-open (``x0 <= cx < x1``, ``y0 <= cy < y1``).
    Returns float [N, R]: 1 hit, 0 miss, NaN no box."""
    maps = _array(sim_maps, "sim_maps", 4)
    n, r, h, w = maps.shape
    b = _boxes(boxes, n, r)
    best = maps.reshape(n, r, h * w).argmax(axis=2)
    cy, cx = _centres((h, w))
    y, x = cy[best // w], cx[best % w]
    hit = (b[..., 0] <= x) & (x < b[..., 2]) & (b[..., 1] <= y) & (y < b[..., 3])
    return np.where(np.isnan(b).any(axis=2), np.nan, hit.astype(np.float64))


def pointing_accuracy(sim_maps: Any, boxes: Any, parts: Sequence[str] | None = None) -> dict[str, Any]:
    """Pointing accuracy per part (over the images where it has a box) and their mean (see :func:`pointing_hits`).

    Returns ``{"mean": float, "per_part": {part: float}, "n": {part: int}}``; ``parts`` names the R rows
    (default ``"0", "1", ...``). A part with no box anywhere gets NaN and is left out of the mean."""
    hits = pointing_hits(sim_maps, boxes)
    names = list(parts) if parts is not None else [str(i) for i in range(hits.shape[1])]
    if len(names) != hits.shape[1]:
        raise ValueError(f"{len(names)} part names for {hits.shape[1]} parts")
    valid = ~np.isnan(hits)
    per = {p: float(np.nanmean(hits[:, i])) if valid[:, i].any() else float("nan") for i, p in enumerate(names)}
    scored = [v for v in per.values() if not np.isnan(v)]
    if not scored:
        raise ValueError("no part has a box: nothing to point at")
    counts = {p: int(valid[:, i].sum()) for i, p in enumerate(names)}
    return {"mean": float(np.mean(scored)), "per_part": per, "n": counts}


def box_patch_coverage(boxes: Any, grid_hw: tuple[int, int]) -> np.ndarray:
    """Share of the ``h x w`` patch centres inside each box: the hit rate of a patch drawn at random (the
    chance level of :func:`pointing_hits`). ``boxes`` [N, R, 4] normalised, NaN = no box -> float [N, R], NaN."""
    b = _array(boxes, "boxes", 3)
    if b.shape[-1] != 4:
        raise ValueError(f"boxes has shape {b.shape}, expected [N, R, 4]")
    return np.where(np.isnan(b).any(axis=2), np.nan, _inside(b, grid_hw).mean(axis=-1))


def _inside(boxes: np.ndarray, grid_hw: tuple[int, int]) -> np.ndarray:
    """Whether each patch centre lies in each box: bool [N, R, h*w] (False where the box is NaN)."""
    cy, cx = _centres(grid_hw)
    rows = (boxes[..., 1:2] <= cy) & (cy < boxes[..., 3:4])  # [N, R, h]
    cols = (boxes[..., 0:1] <= cx) & (cx < boxes[..., 2:3])  # [N, R, w]
    return (rows[..., :, None] & cols[..., None, :]).reshape(*boxes.shape[:2], -1)


def fixed_patch_pointing(boxes: Any, grid_hw: tuple[int, int]) -> dict[str, Any]:
    """The hit rate of the best constant answer: per part, the one patch that lies in that part's box most often
    (over the images where it has a box), the floor a model reaches by pointing at one place whatever the text.

    ``boxes`` [N, R, 4] normalised, NaN = no box. Returns ``{"mean": float, "per_part": [R] floats}`` (NaN for a
    part with no box; left out of the mean)."""
    b = _array(boxes, "boxes", 3)
    if b.shape[-1] != 4:
        raise ValueError(f"boxes has shape {b.shape}, expected [N, R, 4]")
    inside = _inside(b, grid_hw)  # [N, R, L]
    valid = ~np.isnan(b).any(axis=2)  # [N, R]
    counts = valid.sum(axis=0)  # [R]
    per = np.where(counts > 0, inside.sum(axis=0).max(axis=1) / np.maximum(counts, 1), np.nan)
    if np.isnan(per).all():
        raise ValueError("no part has a box")
    return {"mean": float(np.nanmean(per)), "per_part": per.tolist()}
