"""Where readers keep files they derive from a dataset (splits, crops): beside it, else under data/."""
from __future__ import annotations

from pathlib import Path

from ...utils import atomic_write_bytes
from .reader import DatasetError

__all__ = ["derived_candidates", "find_derived", "write_derived"]


def derived_candidates(root: Path, relative: str, fallback: str) -> tuple[Path, Path]:
    """``<root>/<relative>`` first, then ``<data_root>/<fallback>`` for read-only dataset folders."""
    from ...paths import data_root

    return root / relative, data_root() / fallback


def find_derived(candidates: tuple[Path, ...]) -> Path | None:
    """The first candidate that exists, or None."""
    return next((c for c in candidates if c.is_file()), None)


def write_derived(candidates: tuple[Path, ...], data: bytes) -> Path:
    """Write atomically to the first writable candidate and return where it went."""
    errors: list[str] = []
    for cand in candidates:
        try:
            return atomic_write_bytes(cand, data)
        except OSError as exc:
            errors.append(f"{cand} ({exc.strerror or exc})")
    raise DatasetError(f"cannot write a derived file to any of: {'; '.join(errors)}")
