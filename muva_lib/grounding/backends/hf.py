"""Loading a transformers processor + model from a hub id or a local directory, on one device."""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar, Sequence

from ...data.types import PARTS
from .backend import Backend

__all__ = ["load_pretrained", "model_slug", "HfBackend", "to_device"]


def model_slug(model: str) -> str:
    """A file-name-safe short name of a hub id or directory (``Qwen/Qwen2.5-VL-3B`` -> ``qwen2.5-vl-3b``)."""
    name = Path(model.rstrip("/")).name or "model"
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).lower()


def load_pretrained(model: str, model_classes: Sequence[str], device: Any, trust_remote_code: bool = False,
                    dtype: str = "auto") -> tuple[Any, Any]:
    """``(processor, model)`` in eval mode on ``device``.

    ``model`` is a local directory (loaded with ``local_files_only``: nothing is fetched) or a
    hub id. ``model_classes`` are transformers auto-class names tried in order (the first that
    knows the config wins). ``trust_remote_code`` is passed only when True. ``dtype``: ``auto``
    keeps float32 on CPU and the checkpoint's dtype on an accelerator; or a torch dtype name.
    """
    import torch
    import transformers

    if not model:
        raise ValueError("no model given: pass a hub id or a local directory (vge.model=... / --model)")
    local = Path(model).expanduser()
    kwargs: dict[str, Any] = {}
    if local.is_dir():
        model = str(local)
        kwargs["local_files_only"] = True
    elif model.startswith((".", "/", "~")) or local.suffix in (".pt", ".bin", ".safetensors"):
        raise FileNotFoundError(f"model directory not found: {local} (expected a folder saved with "
                                "save_pretrained, or a hub id such as 'org/name')")
    if trust_remote_code:
        kwargs["trust_remote_code"] = True
    if dtype == "auto":
        torch_dtype: Any = torch.float32 if device.type == "cpu" else "auto"
    else:
        torch_dtype = getattr(torch, dtype)
    processor = transformers.AutoProcessor.from_pretrained(model, **kwargs)
    errors = []
    for cls_name in model_classes:
        cls = getattr(transformers, cls_name, None)
        if cls is None:
            continue
        try:
            net = cls.from_pretrained(model, dtype=torch_dtype, **kwargs)
            break
        except ValueError as exc:  # "Unrecognized configuration class ... for this kind of AutoModel"
            errors.append(f"{cls_name}: {exc}")
    else:
        raise ValueError(f"{model}: no transformers class among {list(model_classes)} can load it:\n"
                         + "\n".join(errors))
    net.to(device).eval()
    return processor, net


def to_device(inputs: Any, device: Any, dtype: Any) -> dict[str, Any]:
    """Processor outputs on ``device``; floating tensors cast to the model's ``dtype``."""
    return {k: (v.to(device, dtype=dtype) if v.is_floating_point() else v.to(device)) if hasattr(v, "to") else v
            for k, v in inputs.items()}


class HfBackend(Backend):
    """Common part of the transformers backends: the model, device, dtype and lazy loading.

    ``model``: hub id or local directory; ``device``: ``auto`` / ``cpu`` / ``cuda:N`` or a
    ``torch.device``; ``trust_remote_code`` is forwarded only when True; ``batch_size``: images per
    call; ``tolerance``: how far a box may overshoot the image before it is rejected.
    """

    #: transformers auto classes tried in order by :meth:`load`
    model_classes: ClassVar[tuple[str, ...]] = ()

    def __init__(self, model: str, *, device: Any = "auto", trust_remote_code: bool = False, batch_size: int = 4,
                 dtype: str = "auto", tolerance: float = 0.02, parts: Sequence[str] = PARTS) -> None:
        from ...utils import resolve_device

        super().__init__(parts)
        self.model_name = model
        self.device = resolve_device(device) if isinstance(device, str) else device
        self.trust_remote_code = trust_remote_code
        self.batch_size = int(batch_size)
        self.dtype = dtype
        self.tolerance = tolerance
        self._loaded: tuple[Any, Any] | None = None

    @property
    def tag(self) -> str:
        return f"{self.name}-{model_slug(self.model_name)}"

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.model_name}

    def load(self) -> tuple[Any, Any]:
        """``(processor, model)``, loaded on first use."""
        if self._loaded is None:
            self._loaded = load_pretrained(self.model_name, self.model_classes, self.device,
                                           self.trust_remote_code, self.dtype)
            self.on_load(*self._loaded)
        return self._loaded

    def on_load(self, processor: Any, net: Any) -> None:
        """Hook for subclasses to adjust the processor or model once loaded."""
