"""Dataset readers: one small class per dataset layout, registered by name."""
from __future__ import annotations

from pathlib import Path

from ..types import Item
from .reader import (READERS, DatasetError, Reader, Subsets, UnreadableImageWarning, check_image, describe,
                   get_reader, layout_markdown, list_readers, read_dataset, register)
from . import market, msmt17, cuhk03, cuhk02, cuhk_sysu, small, real  # noqa: F401,E402  (register the readers)

__all__ = ["READERS", "DatasetError", "Reader", "Subsets", "UnreadableImageWarning", "check_image",
           "describe", "get_reader", "layout_markdown", "list_readers", "read_all", "read_dataset",
           "register"]


def read_all(name: str, root: str | Path | None = None, strict: bool = False) -> tuple[Item, ...]:
    """Every image of a dataset, pids relabelled 0..N-1 (a source of the classical multi-source protocol)."""
    return get_reader(name)(root=root, strict=strict).read_all()
