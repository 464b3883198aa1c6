"""Features of a trained run for other code (torchreid's ``FeatureExtractor`` habit): images in, test features out.

``FeatureExtractor.from_run(run_dir)`` rebuilds the run's model (:func:`muva_lib.train.model_from_checkpoint`)
and computes, for image paths, PIL images, image tensors or dataset :class:`~muva_lib.data.types.Item`s, the
very feature ``eval`` ranks with: the run's test transform (``data.height`` x ``data.width``,
``data.test_interpolation``, ``data.pixel_mean`` / ``pixel_std``), the method's test feature
(:func:`muva_lib.train.test_encoder`: BN-neck or not, CLIP-ReID's CLS concatenation, as ``eval.after_bn`` /
``eval.with_hidden`` say), flip averaging when ``eval.flip``, fp16 autocast when the run used AMP on CUDA, all
through the one feature loop (:func:`muva_lib.features.batch_features`). The feature is not L2-normalised: the
evaluator does that inside its distance (``eval.feat_norm``), as :func:`normalize` does here.

    extractor = FeatureExtractor.from_run("runs/synth-a-to-synth-b/muva/<stamp>-smoke-s0")
    feats = extractor(["a.jpg", "b.jpg"])           # float32 [2, F] on the CPU
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence, Union

import torch
from PIL import Image

from .batches.loaders import read_image, test_transform
from .config import RunCfg
from .data.types import Item
from .features import batch_features
from .train.api import model_from_checkpoint
from .train.run_eval import test_encoder
from .utils import resolve_device

if TYPE_CHECKING:
    from .models.factory import ReidModel

__all__ = ["ImageInput", "FeatureExtractor", "normalize"]

#: One image as the extractor accepts it: a file (str / Path), a PIL image, a tensor [3, H, W] (uint8 pixels, or
#: floats in [0, 1] as ``ToTensor`` makes them), or a dataset Item (its ``path`` is read).
ImageInput = Union[str, Path, Image.Image, torch.Tensor, Item]


def _pil_from_tensor(img: torch.Tensor, where: str) -> Image.Image:
    """A [3, H, W] tensor (uint8 0..255, or float in [0, 1]) -> RGB PIL image; other forms raise ``ValueError``.

    Floats are rounded to 8-bit pixels, so ``ToTensor()(pil)`` comes back as exactly ``pil``."""
    if img.ndim != 3 or img.shape[0] != 3:
        raise ValueError(f"{where}: an image tensor must be [3, H, W] (or a batch [B, 3, H, W]); got shape "
                         f"{tuple(img.shape)}")
    if img.dtype == torch.uint8:
        pixels = img
    elif img.is_floating_point():
        lo, hi = float(img.min()), float(img.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(f"{where}: a float image tensor must hold pixels in [0, 1] (got values in [{lo:.3g}, "
                             f"{hi:.3g}]); an already normalised batch at the run's size goes to "
                             "FeatureExtractor.encode instead")
        pixels = (img.detach().float() * 255).round().to(torch.uint8)
    else:
        raise ValueError(f"{where}: an image tensor must be uint8 or floating point, not {img.dtype}")
    return Image.fromarray(pixels.permute(1, 2, 0).cpu().numpy(), mode="RGB")


def _to_pil(obj: Any, where: str) -> Image.Image:
    """One :data:`ImageInput` -> RGB PIL image (files are read as the test loader reads them)."""
    if isinstance(obj, Item):
        obj = obj.path
    if isinstance(obj, (str, Path)):
        if not Path(obj).is_file():
            raise FileNotFoundError(f"{where}: no image file {obj}")
        return read_image(str(obj))
    if isinstance(obj, Image.Image):
        return obj.convert("RGB")
    if isinstance(obj, torch.Tensor):
        return _pil_from_tensor(obj, where)
    raise TypeError(f"{where}: cannot make an image of a {type(obj).__name__}; give a file path (str or Path), a PIL "
                    "image, a tensor [3, H, W] / [B, 3, H, W] (uint8, or float in [0, 1]) or a dataset Item")


def _flatten(inputs: ImageInput | Sequence[ImageInput]) -> list[tuple[Any, str]]:
    """The single images of ``inputs`` (one image, a batch tensor, or a list / tuple of them), each with where it
    came from for error messages (``input 3``, ``input 1[5]`` for image 5 of a batch tensor)."""
    one = isinstance(inputs, (str, Path, Image.Image, Item)) or (isinstance(inputs, torch.Tensor) and inputs.ndim != 4)
    seq = [inputs] if one or isinstance(inputs, torch.Tensor) else inputs
    if not isinstance(seq, (list, tuple)):
        raise TypeError(f"cannot read images from a {type(inputs).__name__}; give one image or a list / tuple of them "
                        "(file paths, PIL images, tensors [3, H, W] / [B, 3, H, W], dataset Items)")
    out: list[tuple[Any, str]] = []
    for i, obj in enumerate(seq):
        if isinstance(obj, torch.Tensor) and obj.ndim == 4:
            out += [(img, f"input {i}[{j}]") for j, img in enumerate(obj)]
        else:
            out.append((obj, f"input {i}"))
    return out


def normalize(feats: torch.Tensor) -> torch.Tensor:
    """Rows scaled to unit L2 norm [N, F] -> [N, F]: what the evaluator does before its distance when
    ``eval.feat_norm`` (cosine similarity = ``a @ b.T`` after this)."""
    return torch.nn.functional.normalize(feats, dim=1)


@dataclass
class FeatureExtractor:
    """The test-time feature of a trained model: ``extractor(images)`` -> float32 [N, F] on the CPU.

    Build it with :meth:`from_run`. ``cfg`` is the run's config (its ``data`` slice gives the transform, its
    ``eval`` slice the feature choice and flip); ``batch_size`` images go through the model at once (default
    ``data.test_batch_size``: the evaluator's batches, so its features are matched bit for bit)."""

    model: ReidModel = field(repr=False)
    cfg: RunCfg = field(repr=False)
    device: torch.device
    batch_size: int
    checkpoint: Path
    amp: bool = False

    @classmethod
    def from_run(cls, path: str | Path, device: str | torch.device = "auto", batch_size: int | None = None
                 ) -> FeatureExtractor:
        """The extractor of a finished run folder, or of a checkpoint file (``checkpoints/final.pt``).

        ``device``: ``auto`` (CUDA when there is one), ``cpu``, ``cuda:N``. AMP follows the run's ``amp``
        on CUDA, as in ``eval``. A missing path, a folder that is no run (no ``config.json``) and a run
        without its final checkpoint raise ``FileNotFoundError`` naming the path."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"no run folder or checkpoint at {path}")
        if path.is_dir():
            if not (path / "config.json").is_file():
                raise FileNotFoundError(f"{path} is no run folder (no config.json); give a run folder "
                                        "(runs/<protocol>/<method>/<stamp>-...) or its checkpoints/final.pt")
            path = path / "checkpoints" / "final.pt"
            if not path.is_file():
                raise FileNotFoundError(f"no checkpoint at {path} (the run has not finished: complete it with "
                                        f"python -m muva_lib train --resume {path.parent.parent} ...)")
        dev = resolve_device(device) if isinstance(device, str) else torch.device(device)
        model, cfg = model_from_checkpoint(path, dev)
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size={batch_size}: give 1 or more (None: the run's data.test_batch_size)")
        return cls(model, cfg, dev, batch_size or cfg.data.test_batch_size, path,
                   amp=bool(cfg.amp) and dev.type == "cuda")

    @property
    def transform(self) -> Callable[[Image.Image], torch.Tensor]:
        """The run's test transform: RGB PIL image -> normalised Tensor[3, height, width] (as the test loader)."""
        d = self.cfg.data
        return test_transform(d.height, d.width, mean=d.pixel_mean, std=d.pixel_std,
                              interpolation=d.test_interpolation)

    @property
    def feature_name(self) -> str:
        """Which feature this is, as ``metrics/<target>.json`` names it: ``bn`` / ``pre-bn``, ``+cls``."""
        return ("bn" if self.cfg.eval.after_bn else "pre-bn") + ("+cls" if self.cfg.eval.with_hidden else "")

    def _batches(self, images: list[tuple[Any, str]]) -> Iterator[dict[str, torch.Tensor]]:
        transform = self.transform
        for s in range(0, len(images), self.batch_size):
            chunk = images[s:s + self.batch_size]
            yield {"img": torch.stack([transform(_to_pil(obj, where)) for obj, where in chunk])}

    def _run(self, batches: Any) -> torch.Tensor:
        encode = test_encoder(self.model, self.cfg, self.device, self.amp)
        outs = [out.cpu() for _, out in batch_features(batches, lambda b: encode(b["img"]), self.device,
                                                       flip=self.cfg.eval.flip, progress=False, desc="extract")]
        return torch.cat(outs)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """Already transformed images: normalised Tensor[B, 3, height, width] -> float32 [B, F] on the CPU (flip
        averaging and AMP as in ``eval``; one batch, no resizing)."""
        want = (3, self.cfg.data.height, self.cfg.data.width)
        if images.ndim != 4 or tuple(images.shape[1:]) != want:
            raise ValueError(f"encode takes transformed images [B, {want[0]}, {want[1]}, {want[2]}] (the run's test "
                             f"transform); got shape {tuple(images.shape)}: call the extractor itself on raw images")
        return self._run([{"img": images}])

    def __call__(self, inputs: ImageInput | Sequence[ImageInput]) -> torch.Tensor:
        """Test features of ``inputs`` (one image, a list / tuple of images in any mix of the accepted forms, or
        a batch tensor [B, 3, H, W]) -> float32 [N, F] on the CPU, in input order."""
        images = _flatten(inputs)
        if not images:
            raise ValueError("no images given")
        return self._run(self._batches(images))
