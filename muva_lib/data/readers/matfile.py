"""Reading MATLAB v5 annotation files (.mat) into plain records, with errors that name the file."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .reader import DatasetError

__all__ = ["load_mat", "records", "get_field", "as_text", "as_ints", "as_box"]


def load_mat(path: Path, key: str, expected: str) -> Any:
    """The variable ``key`` of a .mat file, structs as dicts and cells as lists (``simplify_cells``)."""
    import scipy.io

    try:
        data = scipy.io.loadmat(str(path), simplify_cells=True)
    except Exception as exc:  # scipy raises ValueError, TypeError, MatReadError... on bad files
        raise DatasetError(f"{path}: cannot read as a MATLAB v5 .mat file ({exc}); expected {expected}") from None
    if key not in data:
        found = ", ".join(k for k in data if not k.startswith("__")) or "nothing"
        raise DatasetError(f"{path}: no variable {key!r} (found {found}); expected {expected}")
    return data[key]


def records(value: Any, path: Path, expected: str) -> list[dict]:
    """A struct, a struct array or a (nested) cell array of structs as a flat list of dicts."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.dtype == object):
        out: list[dict] = []
        for v in (value.flat if isinstance(value, np.ndarray) else value):
            out.extend(records(v, path, expected))
        return out
    raise DatasetError(f"{path}: found {type(value).__name__} where {expected} was expected")


def get_field(record: dict, name: str, path: Path, expected: str) -> Any:
    try:
        return record[name]
    except KeyError:
        raise DatasetError(
            f"{path}: a struct has no field {name!r} (fields: {', '.join(record)}); expected {expected}"
        ) from None


def as_text(value: Any, path: Path, what: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, np.ndarray) and value.dtype.kind == "U" and value.size == 1:
        return str(value.item())
    raise DatasetError(f"{path}: {what} should be a string, found {value!r}")


def as_ints(value: Any, path: Path, what: str) -> list[int]:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iuf" or arr.size == 0 or not np.all(np.mod(arr, 1) == 0):
        raise DatasetError(f"{path}: {what} should be a non-empty vector of integers, found {value!r}")
    return [int(v) for v in arr.ravel()]


def as_box(value: Any, path: Path, what: str) -> tuple[int, int, int, int] | None:
    """``[x, y, w, h]`` in pixels as ints; None for an empty entry (the person is not there)."""
    arr = np.asarray(value)
    if arr.size == 0:
        return None
    if arr.dtype.kind not in "iuf" or arr.size != 4:
        raise DatasetError(f"{path}: {what} should be [x, y, w, h], found {value!r}")
    x, y, w, h = (int(round(float(v))) for v in arr.ravel())
    if w <= 0 or h <= 0:
        raise DatasetError(f"{path}: {what} has an empty box [x, y, w, h] = {[x, y, w, h]}")
    return x, y, w, h
