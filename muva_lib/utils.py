"""Seeding, device and AMP choice, atomic file writes, sampling and rounding: small helpers every stage may use."""
from __future__ import annotations

import contextlib
import json
import os
import random
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence, TypeVar

import numpy as np

__all__ = ["seed_everything", "resolve_device", "autocast", "atomic_write_bytes", "atomic_write_text",
           "atomic_write_json", "set_threads", "evenly_spaced", "rounded", "fmt_pct"]

T = TypeVar("T")


def seed_everything(seed: int, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (all devices); optionally ask torch for deterministic kernels."""
    import torch

    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False


def set_threads(n: int) -> None:
    """Fix torch's intra-op thread count (0 leaves the default). Reductions can change with it."""
    if n > 0:
        import torch

        torch.set_num_threads(n)


def resolve_device(name: str = "auto") -> "torch.device":  # noqa: F821
    """``auto`` -> ``cuda`` when available, else ``cpu``; anything else is checked and returned."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available on this machine")
    return dev


@contextlib.contextmanager
def autocast(device: "torch.device", enabled: bool = True) -> Iterator[None]:  # noqa: F821
    """fp16 autocast on CUDA when enabled; a no-op on CPU (CPU runs stay fp32)."""
    import torch

    if enabled and device.type == "cuda":
        with torch.autocast(device_type="cuda", dtype=torch.float16):
            yield
    else:
        yield


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write to a temporary sibling, fsync, then rename: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def evenly_spaced(items: Sequence[T], n: int) -> list[T]:
    """``n`` items spread evenly over the list (all of them when ``n <= 0`` or ``n >= len``)."""
    if n <= 0 or n >= len(items):
        return list(items)
    return [items[i * len(items) // n] for i in range(n)]


def rounded(rows: Sequence[Mapping[str, Any]], digits: int = 4) -> list[dict[str, Any]]:
    """Rows with every float rounded (stable printed tables)."""
    return [{k: round(v, digits) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


def fmt_pct(value: float | None, digits: int = 1) -> str:
    """A 0..1 fraction as a percentage string (``0.5234 -> '52.3'``); ``None`` -> ``'-'``."""
    return "-" if value is None else f"{100.0 * value:.{digits}f}"
