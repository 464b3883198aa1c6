"""Image datasets, test-time transforms and loaders over :class:`Item` lists (dict samples)."""
from __future__ import annotations

from typing import Any, Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode

from ..config import DataCfg
from .types import Item

__all__ = ["INTERPOLATIONS", "interpolation_mode", "read_image", "ImageDataset", "test_transform",
           "make_test_loader"]

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


def read_image(path: str) -> Image.Image:
    """An RGB PIL image; a file that cannot be decoded raises OSError naming it."""
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (OSError, ValueError) as exc:
        raise OSError(f"cannot read image {path}: {exc}") from exc


class ImageDataset(Dataset):
    """Items -> dict samples {"img", "pid", "camid", "domain", "index", "key"}.

    ``img`` is ``transform(PIL RGB image)`` (a Tensor[3, H, W] with the test transform). Subclasses
    add fields (part masks, ...) by extending :meth:`sample`.
    """

    def __init__(self, items: Sequence[Item], transform: Callable[[Image.Image], Any] | None = None):
        self.items = tuple(items)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def meta(self, index: int) -> dict[str, Any]:
        """Everything but the image: ids, camera, domain, position and the item's unique key."""
        item = self.items[index]
        return {"pid": item.pid, "camid": item.camid, "domain": item.domain, "index": index, "key": item.key}

    def sample(self, index: int) -> dict[str, Any]:
        img = read_image(self.items[index].path)
        return {"img": self.transform(img) if self.transform is not None else img, **self.meta(index)}

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.sample(index)


def test_transform(height: int, width: int, mean: Sequence[float], std: Sequence[float],
                   interpolation: str = "bilinear") -> T.Compose:
    """Resize to (height, width), to a float tensor in [0, 1], normalise per channel -> Tensor[3, H, W]."""
    return T.Compose([
        T.Resize((height, width), interpolation=interpolation_mode(interpolation)),
        T.ToTensor(),
        T.Normalize(list(mean), list(std)),
    ])


def make_test_loader(items: Sequence[Item], cfg_data: DataCfg, device: torch.device | str) -> DataLoader:
    """A loader over items in their given order (no shuffling, no dropped batch) with the test transform.

    Batch size and workers come from ``cfg_data``; memory is pinned only when ``device`` is CUDA.
    """
    transform = test_transform(cfg_data.height, cfg_data.width, cfg_data.pixel_mean, cfg_data.pixel_std,
                               cfg_data.test_interpolation)
    return DataLoader(ImageDataset(items, transform), batch_size=cfg_data.test_batch_size, shuffle=False,
                      drop_last=False, num_workers=cfg_data.num_workers,
                      pin_memory=torch.device(device).type == "cuda")
