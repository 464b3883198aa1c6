"""Seeded train/test splits of the small datasets, saved once as JSON beside the data and re-used."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable, Sequence

import numpy as np

from .derived import derived_candidates, find_derived, write_derived
from .reader import DatasetError

if TYPE_CHECKING:
    from .reader import Reader

__all__ = ["SPLIT_SEED", "SPLITS_FILE", "half_splits", "load_or_make_splits", "check_split_ids"]

#: The fixed seed of every generated split file (GRID, PRID, VIPeR, iLIDS).
SPLIT_SEED = 1501
#: Name of the split file inside the dataset folder.
SPLITS_FILE = "splits_muva.json"


def half_splits(rng: np.random.Generator, ids: Sequence[int], num_splits: int, num_train: int) -> list[dict]:
    """``num_splits`` random partitions of ``ids``: ``{"train": [...], "test": [...]}``, each sorted."""
    ids = sorted(ids)
    out = []
    for _ in range(num_splits):
        perm = rng.permutation(len(ids))
        out.append({"train": sorted(ids[i] for i in perm[:num_train]),
                    "test": sorted(ids[i] for i in perm[num_train:])})
    return out


def load_or_make_splits(reader: "Reader", make: Callable[[np.random.Generator], list[dict]]
                        ) -> tuple[list[dict], Path]:
    """The reader's split file if one exists, else ``make(default_rng(SPLIT_SEED))`` saved atomically.

    Looked up (and written) at ``<root>/splits_muva.json``, falling back to
    ``<data_root>/splits/<name>.json`` when the dataset folder is read-only.
    """
    candidates = derived_candidates(reader.root, SPLITS_FILE, f"splits/{reader.name}.json")
    found = find_derived(candidates)
    if found is not None:
        return _load(found, reader), found
    splits = make(np.random.default_rng(SPLIT_SEED))
    doc = {"dataset": reader.name, "seed": SPLIT_SEED, "num_splits": len(splits), "splits": splits}
    path = write_derived(candidates, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode())
    return splits, path


def _load(path: Path, reader: "Reader") -> list[dict]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DatasetError(f"{path}: cannot read the split file ({exc}); delete it to regenerate") from None
    splits = doc.get("splits") if isinstance(doc, dict) else None
    if (not isinstance(splits, list) or doc.get("dataset") != reader.name
            or len(splits) != reader.num_splits or not all(isinstance(s, dict) for s in splits)):
        raise DatasetError(
            f"{path}: not a {reader.name} split file with {reader.num_splits} splits "
            "({'dataset': ..., 'splits': [{...}, ...]}); delete it to regenerate"
        )
    return splits


def check_split_ids(path: Path, splits: list[dict], key: str, allowed: Iterable, count: int | None = None) -> None:
    """Every ``split[key]`` must be a list of values in ``allowed`` (of length ``count`` if given)."""
    allowed = set(allowed)
    for k, split in enumerate(splits):
        values = split.get(key)
        if not isinstance(values, list) or not values:
            raise DatasetError(f"{path}: split {k} has no list {key!r}; delete the file to regenerate")
        unknown = [v for v in values if v not in allowed]
        if unknown or (count is not None and len(values) != count):
            why = f"unknown entries {unknown[:3]}" if unknown else f"{len(values)} entries instead of {count}"
            raise DatasetError(
                f"{path}: split {k} {key!r} does not fit the data ({why}); the data changed? "
                "Delete the file to regenerate"
            )
