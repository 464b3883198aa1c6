"""Mean and standard deviation of metric dicts over random splits (GRID / PRID / VIPeR / iLIDS protocols)."""
from __future__ import annotations

from numbers import Number
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = ["average_results"]


def average_results(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Average the result dicts of several splits.

    Every numeric entry (scalars and arrays such as ``cmc`` [max_rank]) becomes its mean under the
    same key plus ``<key>_std`` (population std over splits, ddof=0); ``num_splits`` is added.
    All dicts must have the same keys; non-numeric entries are dropped.
    """
    if not results:
        raise ValueError("average_results: no results to average")
    keys = list(results[0])
    for i, res in enumerate(results[1:], start=1):
        if set(res) != set(keys):
            raise ValueError(f"average_results: result {i} has keys {sorted(res)}, expected {sorted(keys)}")
    out: dict[str, Any] = {}
    for key in keys:
        values = [res[key] for res in results]
        if all(isinstance(v, Number) and not isinstance(v, bool) for v in values):
            arr = np.asarray(values, dtype=np.float64)
            out[key], out[f"{key}_std"] = float(arr.mean()), float(arr.std())
        elif all(isinstance(v, np.ndarray) and v.dtype.kind in "iuf" for v in values):
            shapes = {v.shape for v in values}
            if len(shapes) != 1:
                raise ValueError(f"average_results: {key!r} has different shapes across splits: {sorted(shapes)}")
            arr = np.stack(values).astype(np.float64)
            out[key], out[f"{key}_std"] = arr.mean(0), arr.std(0)
    out["num_splits"] = len(results)
    return out
