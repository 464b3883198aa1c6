"""Image datasets (optionally with part masks), test / train transforms and loaders over :class:`Item` lists."""
from __future__ import annotations

import random
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from ..config import DataCfg
from ..data.readers.reader import read_image
from ..data.types import Item
from .sampler import PKSampler
from .transforms import TrainAugment

__all__ = ["INTERPOLATIONS", "interpolation_mode", "read_image", "ImageDataset", "TrainDataset", "test_transform",
           "train_transform", "make_test_loader", "make_train_loader", "seed_worker"]

INTERPOLATIONS: dict[str, InterpolationMode] = {
    "nearest": InterpolationMode.NEAREST,
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "lanczos": InterpolationMode.LANCZOS,
}


def interpolation_mode(name: str) -> InterpolationMode:
    """torchvision's mode for a config name (``bilinear``, ``bicubic``, ...)."""
    try:
        return INTERPOLATIONS[name]
    except KeyError:
        raise ValueError(f"unknown interpolation {name!r}; choose one of {', '.join(INTERPOLATIONS)}") from None


def _require_every_key(items: Sequence[Item], per_key: Mapping[str, Any], what: str) -> None:
    """KeyError naming how many ``items`` have no entry in ``per_key`` (and three of their keys)."""
    missing = [it.key for it in items if it.key not in per_key]
    if missing:
        raise KeyError(f"{len(missing)} of {len(items)} images have no {what}, e.g. {missing[:3]}")


class ImageDataset(Dataset):
    """Items -> dict samples {"img", "pid", "camid", "domain", "index", "key"} (+ "mask").

    ``img`` is ``transform(PIL RGB image)`` (a Tensor[3, H, W] with the test transform). With ``masks``
    (``{item.key: bool [R, L]}``, from :func:`muva_lib.grounding.part_masks_for`) each sample also holds
    ``mask`` Bool[R, L]; an item without a mask is an error naming its key. Subclasses add fields by
    extending :meth:`sample`.
    """

    def __init__(self, items: Sequence[Item], transform: Callable[[Image.Image], Any] | None = None,
                 masks: Mapping[str, Any] | None = None):
        self.items = tuple(items)
        self.transform = transform
        self.masks = masks
        if masks is not None:
            _require_every_key(self.items, masks, "part mask")

    def mask(self, index: int) -> torch.Tensor:
        """The part mask of item ``index`` as Bool[R, L]."""
        return torch.as_tensor(np.asarray(self.masks[self.items[index].key], dtype=bool))

    def __len__(self) -> int:
        return len(self.items)

    def meta(self, index: int) -> dict[str, Any]:
        """Everything but the image: ids, camera, domain, position and the item's unique key."""
        item = self.items[index]
        return {"pid": item.pid, "camid": item.camid, "domain": item.domain, "index": index, "key": item.key}

    def sample(self, index: int) -> dict[str, Any]:
        img = read_image(self.items[index].path)
        out = {"img": self.transform(img) if self.transform is not None else img, **self.meta(index)}
        if self.masks is not None:
            out["mask"] = self.mask(index)
        return out

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.sample(index)


class TrainDataset(ImageDataset):
    """Training samples: ``dataset[(index, aug_seed)]`` -> the :class:`ImageDataset` sample after
    ``augment(img, mask, torch.Generator seeded with aug_seed)`` (see :class:`TrainAugment`); the
    samplers of :mod:`muva_lib.batches.sampler` yield such pairs. A plain int index means seed = index.
    With ``parsing`` (pi-VL: ``{item.key: uint8 [h'*w']}`` part labels on the augment's ``labels_grid_hw``)
    each sample also holds ``parsing`` Long[h'*w'], flipped with the image."""

    def __init__(self, items: Sequence[Item], transform: Callable[[Image.Image], Any], augment: TrainAugment,
                 masks: Mapping[str, Any] | None = None, parsing: Mapping[str, Any] | None = None):
        super().__init__(items, transform, masks)
        self.augment = augment
        self.parsing = parsing
        if parsing is not None:
            _require_every_key(self.items, parsing, "parsing labels")

    def __getitem__(self, index: int | tuple[int, int]) -> dict[str, Any]:
        index, seed = index if isinstance(index, tuple) else (index, index)
        out = self.sample(index)
        g = torch.Generator().manual_seed(int(seed))
        labels = (torch.as_tensor(np.asarray(self.parsing[self.items[index].key], dtype=np.int64))
                  if self.parsing is not None else None)
        out["img"], mask, labels = self.augment.apply(out["img"], out.get("mask"), g, labels)
        if mask is not None:
            out["mask"] = mask
        if labels is not None:
            out["parsing"] = labels
        return out


def test_transform(height: int, width: int, *, mean: Sequence[float], std: Sequence[float],
                   interpolation: str = "bilinear") -> T.Compose:
    """Resize to (height, width), to a float tensor in [0, 1], normalise per channel -> Tensor[3, H, W]."""
    return T.Compose([
        T.Resize((height, width), interpolation=interpolation_mode(interpolation)),
        T.ToTensor(),
        T.Normalize(list(mean), list(std)),
    ])


def train_transform(cfg_data: DataCfg) -> T.Compose:
    """The deterministic part of the training transform: resize (``train_interpolation``, bicubic),
    to tensor, normalise -> Tensor[3, H, W]; the random part is :class:`TrainAugment`."""
    return test_transform(cfg_data.height, cfg_data.width, mean=cfg_data.pixel_mean, std=cfg_data.pixel_std,
                          interpolation=cfg_data.train_interpolation)


def seed_worker(worker_id: int) -> None:
    """Seed Python and NumPy in a loader worker from torch's per-worker seed (torch seeds itself)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _loader_kwargs(cfg_data: DataCfg, device: torch.device | str, seed: int) -> dict[str, Any]:
    workers = cfg_data.num_workers
    return dict(num_workers=workers, pin_memory=torch.device(device).type == "cuda",
                worker_init_fn=seed_worker if workers else None,
                generator=torch.Generator().manual_seed(seed), persistent_workers=False)


def make_test_loader(items: Sequence[Item], cfg_data: DataCfg, device: torch.device | str,
                     masks: Mapping[str, Any] | None = None) -> DataLoader:
    """A loader over items in their given order (no shuffling, no dropped batch) with the test transform.

    Batch size and workers come from ``cfg_data``; memory is pinned only when ``device`` is CUDA.
    With ``masks`` every batch also holds ``mask`` Bool[B, R, L] (teacher-forced feature passes).
    """
    transform = test_transform(cfg_data.height, cfg_data.width, mean=cfg_data.pixel_mean, std=cfg_data.pixel_std,
                               interpolation=cfg_data.test_interpolation)
    return DataLoader(ImageDataset(items, transform, masks), batch_size=cfg_data.test_batch_size, shuffle=False,
                      drop_last=False, **_loader_kwargs(cfg_data, device, 0))


def make_train_loader(items: Sequence[Item], cfg_data: DataCfg, device: torch.device | str, sampler: PKSampler,
                      *, grid_hw: tuple[int, int], masks: Mapping[str, Any] | None = None, seed: int = 0,
                      parsing: Mapping[str, Any] | None = None, parsing_grid_hw: tuple[int, int] | None = None
                      ) -> DataLoader:
    """Stage-2 loader: ``sampler`` (a :class:`PKSampler`, call its ``set_epoch`` each epoch) picks the
    batches and the augmentation seeds; samples are resized (bicubic), normalised, flipped jointly with
    their part mask (``masks``, patch grid ``grid_hw``) and parsing labels (``parsing`` on
    ``parsing_grid_hw``), padded / cropped / erased as ``cfg_data`` says. Batches: img [B, 3, H, W],
    pid [B], camid [B], domain [B], index [B], key (list), mask Bool[B, R, L], parsing Long[B, L']."""
    augment = TrainAugment.from_config(grid_hw, cfg_data, labels_grid_hw=parsing_grid_hw)
    dataset = TrainDataset(items, train_transform(cfg_data), augment, masks, parsing)
    return DataLoader(dataset, batch_sampler=sampler, **_loader_kwargs(cfg_data, device, seed))
