"""Typed text -> the gallery images that match it best: the text-query explorer's one call (notebook 07, issue 16).

The images are given as features (``ZeroShotProbe.feats`` or any L2-normalised [N, d]); the texts are encoded by
the same model, so a score is the cosine similarity the zero-shot checks use.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from .encoder import ZeroShotModel, encode_texts

__all__ = ["TextHits", "top_images", "top_k"]


@dataclass
class TextHits:
    """The best ``k`` images of each text: ``texts`` [Q], ``index`` [Q, k] rows of the image features (best first),
    ``scores`` [Q, k] their cosine similarities."""

    texts: list[str]
    index: np.ndarray
    scores: np.ndarray


def top_k(sim: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row of ``sim`` [Q, N] the ``k`` largest columns, best first (ties: lower column first; k larger than N:
    all N) -> (index [Q, k], scores [Q, k])."""
    sim = np.asarray(sim, dtype=np.float64)
    if sim.ndim != 2 or not sim.shape[1]:
        raise ValueError(f"sim must be [Q, N] with N >= 1, got shape {sim.shape}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    index = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return index, np.take_along_axis(sim, index, axis=1)


def top_images(model: ZeroShotModel, image_feats: torch.Tensor, texts: Sequence[str], k: int = 5) -> TextHits:
    """Encode ``texts`` with ``model`` and rank the images ``image_feats`` [N, d] (L2-normalised, as
    :func:`~muva_lib.eval.zeroshot.encode_images` gives) for each: the top ``k`` of each text."""
    texts = [t.strip() for t in texts]
    if not texts or not all(texts):
        raise ValueError(f"top_images: every text must be non-empty, got {texts!r}")
    if image_feats.ndim != 2:
        raise ValueError(f"image_feats must be [N, d], got shape {tuple(image_feats.shape)}")
    text_feats = encode_texts(model, texts)  # [Q, d]
    sim = (text_feats @ image_feats.to(text_feats.device).T).cpu().numpy()  # [Q, N]
    index, scores = top_k(sim, k)
    return TextHits(texts, index, scores)
