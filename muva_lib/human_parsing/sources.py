"""Where parsing maps come from: synthetic ground truth, LIP-order PNGs on disk, a transformers segmentation model,
or the pose backend's person mask cut into head / upper / legs (real crops, no parsing model needed).

A source turns a batch of items into class maps at the store size (uint8 ``[H, W]``, its own class
indices): :meth:`ParsingSource.maps`. Bad inputs raise :class:`ParsingError` naming the file.
"""
from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from PIL import Image

from ..data.types import Item
from .classes import LIP_CLASSES
from .labels import majority_labels

if TYPE_CHECKING:
    from ..config import ParsingCfg

__all__ = ["PARSING_SOURCES", "ParsingError", "ParsingModelNotFound", "ParsingSource", "SyntheticSource", "PngSource",
           "HfSource", "PoseSource", "make_source"]

#: the values ``parsing.source`` may take (``auto`` picks one of the others:
#: :func:`muva_lib.human_parsing.maps.resolve_source`); the one list config validation and :func:`make_source` use
PARSING_SOURCES: tuple[str, ...] = ("auto", "synthetic", "png", "hf", "pose")


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
    :data:`muva_lib.human_parsing.GROUPINGS`), ``batch_size``; :meth:`maps` does the work."""

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

    def summary(self) -> str:
        """What went wrong so far, in words (``""``: nothing); :func:`~muva_lib.human_parsing.maps.fill_store`
        warns with it."""
        return ""

    def close(self) -> None:
        """Release what the source holds (a model)."""


class SyntheticSource(ParsingSource):
    """The synthetic benchmark's ground truth: ``<domain>/gt/parsing/<subset>/<stem>.png``, classes of
    ``muva_lib.data.synthetic.PARSING_CLASSES`` (grouping ``synth``)."""

    tag = "synthetic"
    default_grouping = "synth"

    def __init__(self) -> None:
        from ..data.synthetic import PARSING_CLASSES

        self.num_classes = len(PARSING_CLASSES)

    def full_map(self, item: Item) -> np.ndarray:
        from ..data.errors import DatasetError
        from ..data.synthetic import load_parsing
        from ..grounding.backends.noisy_truth import domain_root

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

        from ..data.readers.reader import read_image

        images = [read_image(it.path) for it in items]
        inputs = self.processor(images=images, return_tensors="pt")
        with torch.no_grad():
            logits = self.model(pixel_values=inputs["pixel_values"].to(self.device)).logits  # [B, C, h, w]
            logits = F.interpolate(logits.float(), size=tuple(size_hw), mode="bilinear", align_corners=False)
        return [m for m in logits.argmax(1).to(torch.uint8).cpu().numpy()]

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.name}


class PoseSource(ParsingSource):
    """Real crops without a parsing model: mediapipe's person mask cut into head / upper / legs slabs at the
    part boundaries its keypoints give (:func:`muva_lib.grounding.backends.pose.coarse_parsing`; classes
    ``COARSE_CLASSES``, grouping ``pose``: head, upper, lower, no shoes). A crop in which the pose model
    finds no person gets an all-background map, i.e. no part patch (:attr:`no_person` lists their keys).
    Needs mediapipe 0.10.14 (``POSE_INSTALL_HINT``); the model loads on the first map."""

    default_grouping = "pose"
    batch_size = 16

    def __init__(self) -> None:
        from ..grounding.backends.pose import COARSE_CLASSES, PoseBackend, pose_missing

        missing = pose_missing()
        if missing:
            raise ParsingError(f"parsing.source=pose: {missing}")
        self.backend = PoseBackend()
        self.num_classes = len(COARSE_CLASSES)
        self.tag = self.backend.tag  # pose-r<rules version>: new keypoint rules -> a new store
        self.no_person: list[str] = []

    def full_map(self, item: Item) -> np.ndarray:
        from ..grounding.backends.pose import boxes_from_keypoints, coarse_parsing

        try:
            with Image.open(item.path) as im:
                image = im.convert("RGB")
        except OSError as exc:
            raise ParsingError(f"{item.path}: cannot read ({exc})") from None
        res = self.backend.analyse(image)
        if res.keypoints is None or res.mask is None:
            self.no_person.append(item.key)
            return np.zeros((image.height, image.width), np.uint8)
        boxes, _ = boxes_from_keypoints(res.keypoints, image.size, self.backend.cfg.min_visibility)
        return _checked(coarse_parsing(res.mask, boxes), self.num_classes, item.path, (image.height, image.width))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "pose": self.backend.describe()}

    def summary(self) -> str:
        if not self.no_person:
            return ""
        return (f"parsing.source=pose: no person found in {len(self.no_person)} crop(s), parsed as background "
                f"(no part patches), e.g. {', '.join(self.no_person[:3])}")

    def close(self) -> None:
        self.backend.close()


def make_source(name: str, pcfg: ParsingCfg, device: Any = "cpu") -> ParsingSource:
    """The source ``name`` (one of :data:`PARSING_SOURCES` but ``auto``) configured from a ``ParsingCfg``."""
    if name == "synthetic":
        return SyntheticSource()
    if name == "png":
        return PngSource(pcfg.png_root)
    if name == "hf":
        return HfSource(pcfg.model, device, pcfg.batch_size)
    if name == "pose":
        return PoseSource()
    raise ParsingError(f"parsing.source={name!r}; expected one of {', '.join(PARSING_SOURCES)}")
