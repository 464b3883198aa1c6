"""The parsing store: compact class maps keyed by ``dataset/relpath``, in atomic chunks (append-only, resumable).

Layout (``root`` defaults to ``muva_lib.paths.data_root() / "parsing"``)::

    <root>/<dataset>/<tag>_<H>x<W>/meta.json          what produced the maps (source, classes, size)
    <root>/<dataset>/<tag>_<H>x<W>/chunk-00000.npz    keys [n] (str), maps uint8 [n, H, W] (source classes)

Maps are the source's own classes (grouping is applied when they are read for training, so a new
grouping needs no new parsing), reduced to ``H x W`` by majority vote. Each chunk is written
atomically (temporary sibling + rename): an interrupted run loses at most the chunk in flight and
the next run parses only the keys no chunk holds. A key in several chunks takes the last one.
"""
from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..utils import atomic_write_bytes, atomic_write_json

__all__ = ["ParsingStore", "parsing_root", "StoreError"]

_CHUNK = re.compile(r"^chunk-(\d{5,})\.npz$")


class StoreError(RuntimeError):
    """A parsing store file that cannot be read or does not fit; the message names the file."""


def parsing_root() -> Path:
    from ..paths import data_root

    return data_root() / "parsing"


class ParsingStore:
    """One dataset's maps from one source (``tag``) at one stored size (see the module docstring)."""

    def __init__(self, dataset: str, tag: str, size_hw: tuple[int, int], root: str | Path | None = None) -> None:
        if not dataset or "/" in dataset or not tag or "/" in tag:
            raise ValueError(f"bad store name: dataset={dataset!r} tag={tag!r}")
        self.dataset, self.tag, self.size_hw = dataset, tag, (int(size_hw[0]), int(size_hw[1]))
        base = Path(root) if root is not None else parsing_root()
        self.folder = base / dataset / f"{tag}_{self.size_hw[0]}x{self.size_hw[1]}"

    @property
    def meta_path(self) -> Path:
        return self.folder / "meta.json"

    def chunks(self) -> list[Path]:
        """Chunk files in write order."""
        if not self.folder.is_dir():
            return []
        return sorted((p for p in self.folder.iterdir() if _CHUNK.match(p.name)), key=lambda p: p.name)

    def read(self) -> dict[str, np.ndarray]:
        """``{key: uint8 [H, W]}`` over every chunk (the last chunk holding a key wins)."""
        out: dict[str, np.ndarray] = {}
        for path in self.chunks():
            try:
                with np.load(path, allow_pickle=False) as z:
                    keys, maps = [str(k) for k in z["keys"]], z["maps"]
            except (OSError, ValueError, KeyError) as exc:
                raise StoreError(f"{path}: not a parsing chunk ({exc}); delete it to parse its images again") from None
            if maps.dtype != np.uint8 or maps.shape != (len(keys), *self.size_hw):
                raise StoreError(f"{path}: maps {maps.dtype} {maps.shape}, expected uint8 "
                                 f"{(len(keys), *self.size_hw)}")
            out.update({k: maps[i] for i, k in enumerate(keys)})
        return out

    def keys(self) -> set[str]:
        return set(self.read())

    def append(self, maps: Mapping[str, np.ndarray]) -> Path | None:
        """Write ``{key: uint8 [H, W]}`` as the next chunk, atomically; None when empty."""
        if not maps:
            return None
        keys = list(maps)
        arr = np.stack([np.asarray(maps[k]) for k in keys])
        if arr.dtype != np.uint8 or arr.shape[1:] != self.size_hw:
            raise ValueError(f"maps must be uint8 {self.size_hw}, got {arr.dtype} {arr.shape[1:]}")
        last = self.chunks()
        n = int(_CHUNK.match(last[-1].name).group(1)) + 1 if last else 0
        buf = io.BytesIO()
        np.savez_compressed(buf, keys=np.array(keys, dtype=str), maps=arr)
        return atomic_write_bytes(self.folder / f"chunk-{n:05d}.npz", buf.getvalue())

    def check_meta(self, meta: Mapping[str, Any]) -> None:
        """Write ``meta`` when the store is new; otherwise it must agree with what is there."""
        if self.meta_path.is_file():
            try:
                old = json.loads(self.meta_path.read_text())
            except (OSError, json.JSONDecodeError) as exc:
                raise StoreError(f"{self.meta_path}: unreadable ({exc})") from None
            diff = sorted(k for k in set(old) | set(meta) if old.get(k) != meta.get(k))
            if diff:
                raise StoreError(f"{self.meta_path} was written by another source ({', '.join(diff)} differ: "
                                 f"{ {k: old.get(k) for k in diff} } vs { {k: meta.get(k) for k in diff} }); "
                                 "move the folder away or use another parsing source")
            return
        atomic_write_json(self.meta_path, dict(meta))
