"""The grounding store: an append-only JSONL manifest per dataset and backend, plus atomic derived files.

Layout (``root`` defaults to ``muva_lib.paths.data_root() / "grounding"``)::

    <root>/<dataset>/<tag>.jsonl                       raw answers, one line per image, append-only
    <root>/<dataset>/<tag>.meta.json                   what produced them (backend, model, prompts)
    <root>/<dataset>/<tag>__calibrated.json            statistics + calibrated boxes + reasons (atomic)
    <root>/<dataset>/<tag>__masks_<source>_<h>x<w>.npz boolean masks [N, R, h*w] + keys (atomic)

A manifest line is ``{"key": "dataset/relpath", "size": [W, H], "parts": {part: {"raw", "box",
"status", "reason"}}}``. Appends are one ``write`` per batch followed by flush + fsync, so a
killed run leaves at most one torn last line; :meth:`GroundingStore.repair` cuts it off before
the next append and :meth:`GroundingStore.read` ignores it. A key written twice (a retried
failure) takes its last line. Derived files record a digest of the manifest and are rebuilt
when it changes.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..utils import atomic_write_bytes, atomic_write_json

__all__ = ["GroundingStore", "grounding_root", "StoreError", "save_masks", "load_masks"]


class StoreError(RuntimeError):
    """A store file that cannot be read; the message names the file and line."""


def grounding_root() -> Path:
    from ..paths import data_root

    return data_root() / "grounding"


class GroundingStore:
    """One dataset's manifest for one backend tag (see the module docstring)."""

    def __init__(self, dataset: str, tag: str, root: str | Path | None = None) -> None:
        if not dataset or "/" in dataset or not tag or "/" in tag:
            raise ValueError(f"bad store name: dataset={dataset!r} tag={tag!r}")
        self.dataset, self.tag = dataset, tag
        self.folder = Path(root) if root is not None else grounding_root()
        self.folder = self.folder / dataset

    @property
    def path(self) -> Path:
        return self.folder / f"{self.tag}.jsonl"

    @property
    def meta_path(self) -> Path:
        return self.folder / f"{self.tag}.meta.json"

    @property
    def calibrated_path(self) -> Path:
        return self.folder / f"{self.tag}__calibrated.json"

    def masks_path(self, source: str, grid_hw: tuple[int, int]) -> Path:
        return self.folder / f"{self.tag}__masks_{source}_{grid_hw[0]}x{grid_hw[1]}.npz"

    # ------------------------------------------------------------------ reading

    def read(self) -> dict[str, dict[str, Any]]:
        """``{key: record}`` in file order (last line wins); a torn last line is ignored."""
        out: dict[str, dict[str, Any]] = {}
        if not self.path.is_file():
            return out
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        complete = lines[:-1] if not data.endswith(b"\n") else lines
        for n, line in enumerate(complete, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                key = rec["key"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                if n == len(complete) and not data.endswith(b"\n"):
                    break
                raise StoreError(f"{self.path}:{n}: not a grounding record ({exc})") from None
            out[key] = rec
        return out

    def keys(self) -> set[str]:
        return set(self.read())

    def digest(self) -> str:
        """sha256 of the complete lines of the manifest (what derived files are built from)."""
        if not self.path.is_file():
            return hashlib.sha256(b"").hexdigest()
        data = self.path.read_bytes()
        return hashlib.sha256(data[: data.rfind(b"\n") + 1]).hexdigest()

    # ------------------------------------------------------------------ writing

    def repair(self) -> int:
        """Cut a torn last line (bytes after the last newline); return the bytes removed."""
        if not self.path.is_file():
            return 0
        size = self.path.stat().st_size
        with open(self.path, "rb+") as fh:
            if size == 0:
                return 0
            fh.seek(max(0, size - 1))
            if fh.read(1) == b"\n":
                return 0
            data = self.path.read_bytes()
            keep = data.rfind(b"\n") + 1
            fh.truncate(keep)
            fh.flush()
            os.fsync(fh.fileno())
        warnings.warn(f"{self.path}: removed a torn last line ({size - keep} bytes) left by an interrupted run",
                      stacklevel=2)
        return size - keep

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Append records (one JSON line each) with one write, then flush and fsync."""
        if not records:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        self.repair()
        blob = "".join(json.dumps(r, sort_keys=True, allow_nan=False) + "\n"
                       for r in records).encode("utf-8")
        with open(self.path, "ab") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())

    def write_meta(self, meta: dict[str, Any]) -> None:
        atomic_write_json(self.meta_path, meta)

    def read_json(self, path: Path) -> dict[str, Any] | None:
        """A derived JSON file, or None when absent or unreadable (then it is rebuilt)."""
        try:
            return json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            return None


def save_masks(path: str | Path, masks: dict[str, np.ndarray], parts: Iterable[str], digest: str) -> Path:
    """Write ``{key: bool [R, L]}`` as one compressed ``.npz`` (``keys``, ``masks [N, R, L]``, ``parts``,
    ``digest``), atomically."""
    import io

    keys = sorted(masks)
    arr = (np.stack([masks[k] for k in keys]).astype(bool) if keys else np.zeros((0, 0, 0), dtype=bool))
    buf = io.BytesIO()
    np.savez_compressed(buf, keys=np.array(keys, dtype=str), masks=arr, parts=np.array(list(parts), dtype=str),
                        digest=np.array(digest))
    return atomic_write_bytes(path, buf.getvalue())


def load_masks(path: str | Path) -> tuple[dict[str, np.ndarray], tuple[str, ...], str]:
    """``({key: bool [R, L]}, parts, digest)`` from a file written by :func:`save_masks`."""
    with np.load(path, allow_pickle=False) as z:
        keys = [str(k) for k in z["keys"]]
        masks = z["masks"]
        return ({k: masks[i] for i, k in enumerate(keys)}, tuple(str(p) for p in z["parts"]), str(z["digest"]))
