"""The grounding store: an append-only JSONL manifest per dataset and backend, plus atomic derived files.

Layout (``root`` defaults to ``muva_lib.paths.data_root() / "grounding"``)::

    <root>/<dataset>/<tag>.jsonl                       raw answers, one line per image, append-only
    <root>/<dataset>/<tag>.meta.json                   what produced them (backend, model, prompts)
    <root>/<dataset>/<tag>__calibrated.json            statistics + calibrated boxes + reasons (atomic)
    <root>/<dataset>/<tag>__masks_<source>_<h>x<w>.npz boolean masks [N, R, h*w] + keys (atomic)

A manifest line is ``{"key": "dataset/relpath", "size": [W, H], "parts": {part: {"raw", "box",
"status", "reason"}}}``. Appends are one ``write`` per batch followed by flush + fsync
(:mod:`muva_lib.jsonl`), so a killed run leaves at most one torn last line. The torn line is
*repaired*, never refused: :meth:`GroundingStore.read` ignores it and the next writer cuts it off
with a warning naming ``<file>:<line>``, so its image is grounded again. A bad line before the
last one is refused (:class:`StoreError` naming the file and line). A key written twice (a
retried failure) takes its last line.

A stored ``ok`` box that is not four finite numbers (a NaN written by hand or by another tool)
is dropped when read: the part becomes a ``fallback`` (calibration fills it from the band), the
drop is counted in :attr:`GroundingStore.dropped` and a warning names the file, the count and
the first lines. One NaN would otherwise turn the statistics of its part, and so every mask of
that part, into NaN.

Writers take an exclusive lock (``<tag>.lock`` beside the manifest, :meth:`GroundingStore.lock`),
so a second run on the same store waits and then grounds only what is still missing. A complete
store is read without write access: nothing is opened for writing unless there is work to do.
A manifest that cannot be written raises :class:`StoreWriteError` naming the path and the ways
out (``--store-root`` / ``MUVA_DATA``); a derived file that cannot be written (a cache) only warns.
Derived files record a digest of the manifest and are rebuilt when it changes.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np

from ..geometry.boxes import is_finite_box
from ..jsonl import append_lines, complete_lines, cut_torn_tail
from ..utils import atomic_write_bytes, atomic_write_json

__all__ = ["GroundingStore", "grounding_root", "StoreError", "StoreWriteError", "save_masks", "load_masks",
           "write_failure"]


class StoreError(RuntimeError):
    """A store file that cannot be read; the message names the file and line."""


class StoreWriteError(StoreError):
    """A store file that cannot be written; the message names the path and the ways out."""


def write_failure(path: str | Path, exc: OSError) -> str:
    """What to say when ``path`` cannot be written: the path, the error and the ways out."""
    return (f"cannot write {path} ({exc.strerror or exc}): the grounding store needs a writable folder when it "
            "has work to do; pass --store-root DIR (ground / calibrate) or set MUVA_DATA=DIR (every command, "
            "training included) to a writable folder, or make the folder writable")


def _stored_box_ok(box: Any) -> bool:
    try:
        return len(box) == 4 and is_finite_box(box)
    except (TypeError, ValueError):
        return False


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
        self.dropped: list[str] = []  # "line N part" of the non-finite boxes the last read() dropped

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
        """``{key: record}`` in file order (last line wins); a torn last line is ignored, a stored box
        that is not four finite numbers is dropped (see the module docstring; counted in ``dropped``)."""
        out: dict[str, dict[str, Any]] = {}
        dropped: list[str] = []
        for n, line in complete_lines(self.path):
            try:
                rec = json.loads(line)
                key = rec["key"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise StoreError(f"{self.path}:{n}: not a grounding record ({exc})") from None
            for part, ans in (rec.get("parts") or {}).items():
                if isinstance(ans, dict) and ans.get("box") is not None and not _stored_box_ok(ans["box"]):
                    dropped.append(f"line {n} {part}")
                    rec["parts"][part] = {**ans, "box": None, "status": "fallback",
                                          "reason": f"stored box {ans['box']!r} is not 4 finite numbers: dropped"}
            out[key] = rec
        self.dropped = dropped
        if dropped:
            warnings.warn(f"{self.path}: {len(dropped)} stored box(es) not finite, dropped (those parts fall back "
                          f"to calibration's band): {', '.join(dropped[:5])}{' ...' if len(dropped) > 5 else ''}",
                          stacklevel=2)
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
        """Cut a torn last line (bytes after the last newline); return the bytes removed. Writes
        nothing when the manifest ends with a complete line."""
        try:
            return cut_torn_tail(self.path)
        except OSError as exc:
            raise StoreWriteError(write_failure(self.path, exc)) from None

    def append(self, records: Sequence[dict[str, Any]]) -> None:
        """Append records (one JSON line each) with one write, then flush and fsync."""
        if not records:
            return
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            append_lines(self.path, records)
        except OSError as exc:
            raise StoreWriteError(write_failure(self.path, exc)) from None

    def write_meta(self, meta: dict[str, Any]) -> None:
        try:
            atomic_write_json(self.meta_path, meta)
        except OSError as exc:
            raise StoreWriteError(write_failure(self.meta_path, exc)) from None

    @property
    def lock_path(self) -> Path:
        return self.folder / f"{self.tag}.lock"

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive writer lock on ``<tag>.lock`` (``fcntl.flock``, released when the process dies).

        A second writer says on stderr that it waits, then waits; re-read the store once inside.
        """
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fh = open(self.lock_path, "a")
        except OSError as exc:
            raise StoreWriteError(write_failure(self.lock_path, exc)) from None
        with fh:
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"waiting for another run writing {self.path} (lock {self.lock_path}); it goes on with "
                      "what that run leaves to do", file=sys.stderr, flush=True)
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def write_derived(self, path: Path, write: Callable[[], Any]) -> bool:
        """Run ``write()`` for a derived (cache) file; on a write failure warn, naming ``path`` and the
        ways out, and return False: the caller goes on with what it computed in memory."""
        try:
            write()
            return True
        except OSError as exc:
            warnings.warn(f"{write_failure(path, exc)}; not cached, recomputed next time", stacklevel=2)
            return False

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
