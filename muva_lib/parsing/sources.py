"""Where parsing maps come from: synthetic ground truth, LIP-order PNGs on disk, or a transformers segmentation model.

A source turns a batch of items into class maps at the store size (uint8 ``[H, W]``, its own class
indices): :meth:`ParsingSource.maps`. Bad inputs raise :class:`ParsingError` naming the file.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from ..data.types import Item
from .classes import LIP_CLASSES
from .labels import majority_labels

__all__ = ["ParsingError", "ParsingModelNotFound", "ParsingSource", "SyntheticSource", "PngSource", "HfSource",
           "make_source"]


class ParsingError(ValueError):
    """A parsing map (or source) that cannot be used; the message names the file or setting."""


class ParsingModelNotFound(ParsingError, FileNotFoundError):
    """The segmentation model of the ``hf`` source is not on this machine."""


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _checked(m: np.ndarray, num_classes: int, path: Any, image_hw: tuple[int, int] | None) -> np.ndarray:
    """A full-size map [H, W] checked for size (when ``image_hw``) and class range."""
    if m.ndim != 2:
        raise ParsingError(f"{path}: parsing map has shape {m.shape}, expected one channel [H, W]")
    if image_hw is not None and tuple(m.shape) != tuple(image_hw):
        raise ParsingError(f"{path}: parsing map is {m.shape[1]}x{m.shape[0]} (WxH) but its image is "
                           f"{image_hw[1]}x{image_hw[0]}")
    if m.size and int(m.max()) >= num_classes:
        raise ParsingError(f"{path}: labels up to {int(m.max())}, expected 0..{num_classes - 1} "
                           f"({num_classes} classes)")
    return m


class ParsingSource:
    """Base: ``tag`` (store folder name), ``num_classes``, ``default_grouping`` (a name of
    :data:`muva_lib.parsing.GROUPINGS`), ``batch_size``; :meth:`maps` does the work."""

    tag = "base"
    num_classes = 0
    default_grouping = "lip"
    batch_size = 64

    def maps(self, items: Sequence[Item], size_hw: tuple[int, int]) -> list[np.ndarray]:
        """Items -> class maps uint8 [H, W] at ``size_hw`` (majority vote of the full-size map)."""
        return [majority_labels(self.full_map(it), size_hw, self.num_classes).reshape(size_hw) for it in items]

    def full_map(self, item: Item) -> np.ndarray:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """What produced the maps (written to the store's ``meta.json``)."""
        return {"source": self.tag, "num_classes": self.num_classes}


class SyntheticSource(ParsingSource):
    """The synthetic benchmark's ground truth: ``<domain>/gt/parsing/<subset>/<stem>.png``, classes of
    ``muva_lib.data.synthetic.PARSING_CLASSES`` (grouping ``synth``)."""

    tag = "synthetic"
    default_grouping = "synth"

    def __init__(self) -> None:
        from ..data.synthetic import PARSING_CLASSES

        self.num_classes = len(PARSING_CLASSES)

    def full_map(self, item: Item) -> np.ndarray:
        from ..data.readers.base import DatasetError
        from ..data.synthetic import load_parsing
        from ..grounding.backends.synthetic import domain_root

        root = domain_root(item)
        try:
            m = load_parsing(root, item.relpath)
        except DatasetError as exc:
            raise ParsingError(f"{item.key}: {exc} (parsing.source=synthetic needs a generated synthetic domain)") \
                from None
        return _checked(m, self.num_classes, root / "gt" / "parsing" / item.relpath, None)


class PngSource(ParsingSource):
    """PNG class maps in LIP / SCHP 20-class index order at ``<root>/<dataset>/<relpath with .png>``,
    one channel (mode L or P), the size of their image."""

    default_grouping = "lip"

    def __init__(self, root: str | Path, num_classes: int = len(LIP_CLASSES)) -> None:
        if not str(root).strip():
            raise ParsingError("parsing.source=png needs parsing.png_root=<folder holding <dataset>/<relpath>.png>")
        self.root = Path(root).expanduser().resolve()
        if not self.root.is_dir():
            raise ParsingError(f"parsing.png_root={root}: no such folder")
        self.num_classes = num_classes
        self.tag = f"png-{_short_hash(str(self.root))}"

    def path(self, item: Item) -> Path:
        return self.root / item.dataset / Path(item.relpath).with_suffix(".png")

    def full_map(self, item: Item) -> np.ndarray:
        path = self.path(item)
        if not path.is_file():
            raise ParsingError(f"{path}: no parsing map for {item.key}")
        try:
            with Image.open(path) as im:
                if im.mode not in ("L", "P"):
                    raise ParsingError(f"{path}: mode {im.mode}; expected a one-channel class-index PNG (L or P)")
                m = np.asarray(im).copy()
            with Image.open(item.path) as img:
                w, h = img.size
        except OSError as exc:
            raise ParsingError(f"{path}: cannot read ({exc})") from None
        return _checked(m, self.num_classes, path, (h, w))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "root": str(self.root)}


def _missing_model_message(model: str) -> str:
    return "\n".join([
        f"parsing model {model!r} is not on this machine (no download is attempted).",
        f"Fetch it with `huggingface-cli download {model}` (into the Hugging Face cache, $HF_HOME),",
        "or save it as a folder holding config.json, the weights (model.safetensors) and",
        "preprocessor_config.json, and set parsing.model=/path/to/that/folder.",
        "It must be a transformers semantic-segmentation model (AutoModelForSemanticSegmentation);",
        "its classes must fit parsing.grouping (default: the LIP / SCHP 20-class order)."])


class HfSource(ParsingSource):
    """A transformers semantic-segmentation model (``AutoModelForSemanticSegmentation`` + ``AutoImageProcessor``)
    from a hub id (already in the local cache) or a local folder. Logits are resized to the store size
    (bilinear) and arg-maxed: no full-size map is made."""

    default_grouping = "lip"

    def __init__(self, model: str, device: Any = "cpu", batch_size: int = 8) -> None:
        import torch
        from transformers import AutoImageProcessor, AutoModelForSemanticSegmentation

        if not model:
            raise ParsingError("parsing.source=hf needs parsing.model=<hub id or local folder>")
        local = Path(model).expanduser()
        name = str(local.resolve()) if local.is_dir() else model
        try:
            self.processor = AutoImageProcessor.from_pretrained(name, local_files_only=True)
            self.model = AutoModelForSemanticSegmentation.from_pretrained(name, local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ParsingModelNotFound(f"{_missing_model_message(model)}\n({type(exc).__name__}: {exc})") from None
        self.device = torch.device(device)
        self.model.to(self.device).eval()
        self.num_classes = int(self.model.config.num_labels)
        self.batch_size = batch_size
        self.name = name
        self.tag = f"hf-{re.sub(r'[^A-Za-z0-9._-]+', '_', Path(name).name)[:40]}-{_short_hash(name)}"

    def maps(self, items: Sequence[Item], size_hw: tuple[int, int]) -> list[np.ndarray]:
        import torch
        import torch.nn.functional as F

        from ..data.loading import read_image

        images = [read_image(it.path) for it in items]
        inputs = self.processor(images=images, return_tensors="pt")
        with torch.no_grad():
            logits = self.model(pixel_values=inputs["pixel_values"].to(self.device)).logits  # [B, C, h, w]
            logits = F.interpolate(logits.float(), size=tuple(size_hw), mode="bilinear", align_corners=False)
        return [m for m in logits.argmax(1).to(torch.uint8).cpu().numpy()]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.name}


def make_source(name: str, pcfg: Any, device: Any = "cpu") -> ParsingSource:
    """The source ``name`` (synthetic | png | hf) configured from a ``ParsingCfg``."""
    if name == "synthetic":
        return SyntheticSource()
    if name == "png":
        return PngSource(pcfg.png_root)
    if name == "hf":
        return HfSource(pcfg.model, device, pcfg.batch_size)
    raise ParsingError(f"parsing.source={name!r}; expected auto, synthetic, png or hf")
