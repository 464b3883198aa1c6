"""Parsing maps for training: pick the source, fill the store with what it lacks, group, reduce to a grid."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ..data.types import Item
from .classes import Grouping, resolve_grouping
from .labels import vote_labels
from .map_store import ParsingStore
from .sources import ParsingError, ParsingSource, make_source

if TYPE_CHECKING:
    from ..config import ParsingCfg

__all__ = ["ParsingError", "is_synthetic", "is_real_crops", "resolve_source", "fill_store", "parsing_maps_for",
           "grid_labels", "parsing_labels_for", "CHUNK"]

#: images per store chunk (what an interrupted run can lose)
CHUNK = 256


def is_synthetic(item: Item) -> bool:
    """The item belongs to a generated synthetic domain (its ground-truth parsing folder exists)."""
    from ..grounding.backends.noisy_truth import domain_root

    return (domain_root(item) / "gt" / "parsing").is_dir()


def is_real_crops(item: Item) -> bool:
    """The item belongs to the real set cut from vtest.avi (:mod:`muva_lib.data.real`; its reader names
    every build ``real-vtest`` or ``real-vtest-<suffix>``)."""
    return item.dataset == "real-vtest" or item.dataset.startswith("real-vtest-")


def resolve_source(pcfg: ParsingCfg, items: Sequence[Item]) -> str:
    """``parsing.source``, with ``auto`` = ``synthetic`` when every item is synthetic, ``pose`` when every
    item is a real crop of vtest.avi (:func:`is_real_crops`); otherwise an error that says what to provide."""
    if pcfg.source != "auto":
        return pcfg.source
    real = sorted({it.dataset for it in items if not is_synthetic(it)})
    if not real:
        return "synthetic"
    if all(is_real_crops(it) for it in items):
        return "pose"
    raise ParsingError(
        f"pi-VL needs human parsing maps for {', '.join(real)} (only synthetic domains have them built in, and "
        "parsing.source=auto picks pose only for the real-vtest crops). Provide either parsing.source=png "
        "parsing.png_root=<folder with <dataset>/<relpath>.png class maps in LIP / SCHP 20-class order, e.g. "
        "from SCHP's exp-schp-201908261155-lip.pth> or parsing.source=hf parsing.model=<hub id or folder of a "
        "transformers semantic-segmentation model>; parsing.grouping maps their classes to head / upper / "
        "lower / shoes (see muva_lib.human_parsing.classes). Without a parsing model, parsing.source=pose cuts the pose "
        "backend's person mask into head / upper / lower (coarse; needs mediapipe).")


def _groups(items: Sequence[Item]) -> dict[str, list[Item]]:
    out: dict[str, list[Item]] = {}
    for it in sorted(items, key=lambda it: it.key):
        out.setdefault(it.dataset, []).append(it)
    return out


def fill_store(items: Sequence[Item], source: ParsingSource, size_hw: tuple[int, int],
               root: str | Path | None = None, progress: bool = False) -> dict[str, np.ndarray]:
    """Parse the items no chunk of their dataset's store holds (in chunks of :data:`CHUNK`, each written
    atomically); return ``{key: uint8 [H, W]}`` source-class maps of every item."""
    from tqdm import tqdm

    out: dict[str, np.ndarray] = {}
    for dataset, its in _groups(items).items():
        store = ParsingStore(dataset, source.tag, size_hw, root)
        store.check_meta({**source.describe(), "size": list(store.size_hw)})
        done = store.read()
        todo = [it for it in its if it.key not in done]
        bar = tqdm(total=len(todo), desc=f"parse {dataset} [{source.tag}]", unit="img", disable=not progress)
        for start in range(0, len(todo), CHUNK):
            chunk = todo[start:start + CHUNK]
            new: dict[str, np.ndarray] = {}
            for b in range(0, len(chunk), source.batch_size):
                batch = chunk[b:b + source.batch_size]
                new.update({it.key: m for it, m in zip(batch, source.maps(batch, size_hw))})
                bar.update(len(batch))
            store.append(new)
            done.update(new)
        bar.close()
        out.update({it.key: done[it.key] for it in its})
    if source.summary():
        warnings.warn(source.summary(), stacklevel=2)
    return out


def parsing_maps_for(items: Sequence[Item], pcfg: ParsingCfg, *, device: Any = "cpu", root: str | Path | None = None,
                     progress: bool = False) -> tuple[dict[str, np.ndarray], Grouping]:
    """Grouped part-class maps ``{key: uint8 [H, W]}`` (``pcfg.store_size``; 0 = background, i = part i)
    of every item, and the grouping used. ``pcfg`` is a :class:`muva_lib.config.ParsingCfg`."""
    source = make_source(resolve_source(pcfg, items), pcfg, device)
    try:
        grouping = resolve_grouping(pcfg.grouping, source.default_grouping, source.num_classes)
        raw = fill_store(items, source, tuple(pcfg.store_size), root, progress)
    finally:
        source.close()
    lut = grouping.lut()
    return {k: lut[m] for k, m in raw.items()}, grouping


def grid_labels(maps: Mapping[str, np.ndarray], grid_hw: tuple[int, int], num_classes: int,
                vote: str = "majority", min_share: float = 0.25) -> dict[str, np.ndarray]:
    """Grouped maps -> per-cell labels ``{key: uint8 [h*w]}`` (``vote``: ``majority`` or ``foreground``
    with ``min_share``, :func:`muva_lib.human_parsing.labels.vote_labels`)."""
    return {k: vote_labels(m, grid_hw, num_classes, vote, min_share) for k, m in maps.items()}


def parsing_labels_for(items: Sequence[Item], pcfg: ParsingCfg, grid_hw: tuple[int, int], *, device: Any = "cpu",
                       root: str | Path | None = None, progress: bool = False
                       ) -> tuple[dict[str, np.ndarray], Grouping]:
    """Part-class labels ``{key: uint8 [h*w]}`` on a grid (e.g. the encoder's 16 x 8 patches) and the grouping."""
    maps, grouping = parsing_maps_for(items, pcfg, device=device, root=root, progress=progress)
    return grid_labels(maps, grid_hw, grouping.num_parts + 1, pcfg.vote, pcfg.fg_share), grouping
