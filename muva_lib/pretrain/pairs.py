"""The corpus as image-caption pairs held in memory, and the step-indexed batch plan.

Every batch of the plan holds distinct identities (one image and one of its captions each). The plan is a pure
function of ``(seed, step)``: a resumed run draws the same batches, and ``torchrun`` ranks cut the same global
batch into consecutive slices.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import open_clip
import torch
from PIL import Image

from ..data.errors import DatasetError
from ..data.synth.corpus import load_corpus

__all__ = ["PairData", "BatchPlan", "load_pairs", "plan_batch", "make_batch", "normalise"]

#: DataCfg's pixel mean / std (CLIP-ReID's 0.5 / 0.5): what fine-tuning feeds the same model
PIXEL_MEAN, PIXEL_STD = 0.5, 0.5


@dataclass
class PairData:
    """``images`` uint8 [N, 3, H, W]; ``tokens`` int64 [C, context]; ``caption_image`` [C] (image of each caption);
    ``image_captions[i]`` the caption rows of image i; ``identity_images[j]`` the image rows of identity j;
    ``caption_part`` [C] ('full', 'head', 'upper', 'legs')."""

    images: torch.Tensor
    tokens: torch.Tensor
    caption_image: torch.Tensor
    image_captions: list[np.ndarray]
    identity_images: list[np.ndarray]
    caption_part: list[str]
    texts: list[str]
    root: Path

    @property
    def num_ids(self) -> int:
        return len(self.identity_images)


def load_pairs(root: str | Path, context_length: int, *, limit_ids: int = 0) -> PairData:
    """Decode every corpus image into memory (24,000 images at 128x64 are 590 MB) and tokenise every caption.

    ``limit_ids`` > 0 keeps the first identities only (tests). A caption longer than the context is an error
    naming it (open_clip would cut it silently)."""
    root = Path(root)
    records = load_corpus(root)
    if limit_ids:
        keep = sorted({r.pid for r in records})[:limit_ids]
        records = [r for r in records if r.pid in set(keep)]
    pids = sorted({r.pid for r in records})
    index = {p: j for j, p in enumerate(pids)}
    imgs, texts, parts, cap_img = [], [], [], []
    image_captions: list[np.ndarray] = []
    identity_images: list[list[int]] = [[] for _ in pids]
    for i, r in enumerate(records):
        path = root / r.relpath
        try:
            with Image.open(path) as im:
                arr = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except OSError as exc:
            raise DatasetError(f"{path}: cannot read the corpus image ({exc})") from None
        imgs.append(arr)
        start = len(texts)
        for c in r.captions:
            texts.append(c.text)
            parts.append(c.part)
            cap_img.append(i)
        image_captions.append(np.arange(start, len(texts)))
        identity_images[index[r.pid]].append(i)
    shapes = {a.shape for a in imgs}
    if len(shapes) != 1:
        raise DatasetError(f"{root}: corpus images differ in size {sorted(shapes)[:3]}")
    tokens = open_clip.tokenize(texts, context_length=512)
    lengths = (tokens != 0).sum(dim=1)
    if int(lengths.max()) > context_length:
        worst = int(lengths.argmax())
        raise ValueError(f"{root}: caption {texts[worst]!r} has {int(lengths[worst])} tokens, more than the text "
                         f"context {context_length}; raise context_length")
    images = torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()
    return PairData(images, tokens[:, :context_length].contiguous(), torch.tensor(cap_img), image_captions,
                    [np.asarray(v) for v in identity_images], parts, texts, root)


@dataclass(frozen=True)
class BatchPlan:
    """Rows of one global batch: ``image`` [B] image rows, ``caption`` [B] caption rows, ``flip`` [B] bool."""

    image: torch.Tensor
    caption: torch.Tensor
    flip: torch.Tensor


def plan_batch(data: PairData, step: int, batch_size: int, seed: int, flip: float = 0.5) -> BatchPlan:
    """The global batch of ``step``: identities from the epoch's permutation (epoch = step // (ids // B)), one
    random image of each and one random caption of that image. Pure in ``(seed, step)``."""
    per_epoch = data.num_ids // batch_size
    if per_epoch < 1:
        raise ValueError(f"batch_size {batch_size} exceeds the corpus's {data.num_ids} identities")
    epoch, k = divmod(step, per_epoch)
    ids = np.random.default_rng([seed, 1, epoch]).permutation(data.num_ids)[k * batch_size:(k + 1) * batch_size]
    rng = np.random.default_rng([seed, 2, step])
    image = np.array([data.identity_images[j][rng.integers(len(data.identity_images[j]))] for j in ids])
    caption = np.array([data.image_captions[i][rng.integers(len(data.image_captions[i]))] for i in image])
    flips = rng.random(len(ids)) < flip
    return BatchPlan(torch.from_numpy(image), torch.from_numpy(caption), torch.from_numpy(flips))


def normalise(images_u8: torch.Tensor) -> torch.Tensor:
    """uint8 [B, 3, H, W] -> float [B, 3, H, W] with DataCfg's mean / std."""
    return (images_u8.float() / 255.0 - PIXEL_MEAN) / PIXEL_STD


def make_batch(data: PairData, plan: BatchPlan, rows: slice | Sequence[int] = slice(None),
               device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Images [b, 3, H, W] (normalised, flipped where planned) and tokens [b, context] of ``rows`` of the plan."""
    img = data.images[plan.image[rows]]
    fl = plan.flip[rows]
    if bool(fl.any()):
        img = img.clone()
        img[fl] = img[fl].flip(-1)
    pin = torch.device(device).type == "cuda"
    img, tok = normalise(img), data.tokens[plan.caption[rows]]
    if pin:
        img, tok = img.pin_memory(), tok.pin_memory()
    return img.to(device, non_blocking=pin), tok.to(device, non_blocking=pin)
