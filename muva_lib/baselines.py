"""Training-free re-ID baselines: striped HSV colour histograms and an LDA projection fitted on a source set."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping, Sequence

import numpy as np
from PIL import Image
from scipy.linalg import eigh

__all__ = ["colour_features", "Projection", "fit_lda", "cosine_distance", "evaluate_colour_baseline", "colour_metrics",
           "colour_rows"]

if TYPE_CHECKING:
    from .data.types import Item

ImageLike = str | Path | Image.Image | np.ndarray


def _hsv(img: ImageLike, size: tuple[int, int]) -> np.ndarray:
    """``[H, W, 3]`` uint8 HSV of an image path, PIL image or RGB array, resized to ``size`` (H, W)."""
    if isinstance(img, (str, Path)):
        with Image.open(img) as im:
            return _hsv(im.convert("RGB"), size)
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    return np.asarray(img.convert("RGB").resize((size[1], size[0]), Image.BILINEAR).convert("HSV"))


def colour_features(images: Sequence[ImageLike], stripes: int = 6, bins: tuple[int, int, int] = (8, 4, 4),
                    size: tuple[int, int] = (128, 64)) -> np.ndarray:
    """Joint HSV histograms over ``stripes`` horizontal stripes: ``[N, stripes * prod(bins)]`` float32.

    Each stripe's histogram is L1-normalised and square-rooted (Hellinger), the concatenation
    L2-normalised, so cosine similarity is a dot product. ``size`` (H, W) is the working resolution.
    """
    nb = int(np.prod(bins))
    q = np.asarray(bins, np.int32)
    rows = np.minimum(np.arange(size[0]) * stripes // size[0], stripes - 1)  # stripe of each row
    out = np.zeros((len(images), stripes * nb), np.float32)
    for i, img in enumerate(images):
        hsv = _hsv(img, size).astype(np.int32)
        code = ((hsv * q) >> 8) @ np.array([bins[1] * bins[2], bins[2], 1], np.int32)  # [H, W] joint bin
        idx = rows[:, None] * nb + code
        hist = np.bincount(idx.ravel(), minlength=stripes * nb).astype(np.float32).reshape(stripes, nb)
        hist = np.sqrt(hist / np.maximum(hist.sum(axis=1, keepdims=True), 1))
        out[i] = hist.ravel() / max(np.linalg.norm(hist), 1e-12)
    return out


@dataclass(frozen=True)
class Projection:
    """A linear map ``x -> normalize((x - mean) @ matrix)``: ``[N, D] -> [N, K]`` float32."""

    mean: np.ndarray  # [D]
    matrix: np.ndarray  # [D, K]

    def __call__(self, feats: np.ndarray) -> np.ndarray:
        z = (np.asarray(feats, np.float64) - self.mean) @ self.matrix
        return (z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def fit_lda(feats: np.ndarray, labels: Sequence[int], dim: int = 64, reg: float = 1e-2) -> Projection:
    """Fisher LDA on ``feats [N, D]`` with identity ``labels [N]``: the top ``dim`` directions.

    Solves ``S_b v = lambda (S_w + reg * tr(S_w) / D * I) v``; ``dim`` is capped at classes - 1.
    """
    x = np.asarray(feats, np.float64)
    y = np.asarray(labels)
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(f"fit_lda needs at least 2 identities, got {len(classes)}")
    mean = x.mean(axis=0)
    centred = x - mean
    means = np.stack([centred[y == c].mean(axis=0) for c in classes])  # [C, D]
    counts = np.array([(y == c).sum() for c in classes], np.float64)
    within = centred - means[np.searchsorted(classes, y)]
    s_w = within.T @ within
    s_b = (means * counts[:, None]).T @ means
    d = x.shape[1]
    s_w += np.eye(d) * (reg * np.trace(s_w) / d + 1e-9)
    k = min(dim, len(classes) - 1, d)
    _, vecs = eigh(s_b, s_w, subset_by_index=(d - k, d - 1))
    return Projection(mean, vecs[:, ::-1].copy())


def cosine_distance(query: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """``1 - q @ g.T`` for L2-normalised rows: ``[Nq, D], [Ng, D] -> [Nq, Ng]`` float32."""
    return (1.0 - np.asarray(query, np.float32) @ np.asarray(gallery, np.float32).T).astype(np.float32)


def evaluate_colour_baseline(train: Sequence["Item"], query: Sequence["Item"], gallery: Sequence["Item"],
                             lda_dim: int | None = 64) -> dict:
    """Colour-histogram features (optionally LDA fitted on ``train``) scored on query/gallery.

    The chain's trivial baseline: no training beyond the LDA projection. Returns the dict of
    :func:`muva_lib.eval.evaluate_features` (mAP, CMC, mINP; Market rule). ``lda_dim=None``
    scores the raw histograms (training-free).
    """
    from .config import EvalCfg
    from .eval import evaluate_features

    q = colour_features([it.path for it in query])
    g = colour_features([it.path for it in gallery])
    if lda_dim is not None:
        proj = fit_lda(colour_features([it.path for it in train]), [it.pid for it in train], dim=lda_dim)
        q, g = proj(q), proj(g)
    return evaluate_features(q, g, [it.pid for it in query], [it.pid for it in gallery],
                             [it.camid for it in query], [it.camid for it in gallery],
                             cfg=EvalCfg(metric="cosine", feat_norm=True))


def colour_metrics(train: Sequence["Item"], query: Sequence["Item"], gallery: Sequence["Item"], lda_dim: int = 64
                   ) -> dict[str, dict]:
    """Both colour baselines on one query / gallery, by table name: ``colour histogram`` (no training) and
    ``colour histogram + LDA`` (projection fitted on ``train``); values as :func:`evaluate_colour_baseline`."""
    return {"colour histogram": evaluate_colour_baseline(train, query, gallery, lda_dim=None),
            "colour histogram + LDA": evaluate_colour_baseline(train, query, gallery, lda_dim=lda_dim)}


def colour_rows(columns: Mapping[str, tuple[Sequence["Item"], Sequence["Item"], Sequence["Item"]]],
                lda_dim: int = 64) -> list[dict[str, str]]:
    """The colour baselines as two table rows (``method``, ``source``, one ``"mAP / R1"`` cell per column):
    ``columns`` maps a column name to its ``(train, query, gallery)``; ``colour histogram`` needs no
    training, ``colour histogram + LDA`` fits its projection on that column's ``train``."""
    from .tables import cell

    rows = {"colour histogram": {"method": "colour histogram", "source": "baseline (no training)"},
            "colour histogram + LDA": {"method": "colour histogram + LDA", "source": "baseline (LDA on the training ids)"}}
    for name, (train, query, gallery) in columns.items():
        for label, m in colour_metrics(train, query, gallery, lda_dim).items():
            rows[label][name] = cell(m["mAP"], m["rank1"])
    return list(rows.values())
