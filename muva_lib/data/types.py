"""Plain, frozen record types shared by readers, protocols, grounding and loaders."""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Iterable, Sequence

__all__ = ["PARTS", "Item", "PartBox", "Split", "count_ids", "count_cams"]

#: The body parts MUVA grounds, in the order of part tokens and mask rows (R = 3).
PARTS: tuple[str, ...] = ("head", "upper", "legs")


@dataclass(frozen=True)
class Item:
    """One image of a re-ID dataset.

    ``path`` is absolute; ``relpath`` is relative to the dataset root and, joined with
    ``dataset``, is the key every on-disk artefact (grounding store, masks, parsing maps) uses:
    never the bare file name, which collides across datasets.
    ``pid``: training items are relabelled 0..N-1 (with offsets in multi-source training);
    query/gallery keep the dataset's raw id (0 = distractor). ``domain`` is the source index in
    multi-source training (0 otherwise).
    """

    path: str
    pid: int
    camid: int
    dataset: str
    relpath: str
    domain: int = 0

    @property
    def key(self) -> str:
        """``dataset/relpath``: the unique key of this image across every dataset."""
        return f"{self.dataset}/{self.relpath}"


@dataclass(frozen=True)
class PartBox:
    """An axis-aligned box in pixels, top-left origin, ``x1``/``y1`` exclusive-ish (float)."""

    x0: float
    y0: float
    x1: float
    y1: float

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    def as_tuple(self) -> tuple[float, float, float, float]:
        return (self.x0, self.y0, self.x1, self.y1)


def count_ids(items: Iterable[Item]) -> int:
    return len({it.pid for it in items})


def count_cams(items: Iterable[Item]) -> int:
    return len({it.camid for it in items})


@dataclass(frozen=True)
class Split:
    """What a reader returns: train / query / gallery items of one dataset (one split index)."""

    dataset: str
    train: tuple[Item, ...]
    query: tuple[Item, ...]
    gallery: tuple[Item, ...]
    split_index: int = 0
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def num_train_pids(self) -> int:
        return count_ids(self.train)

    @property
    def num_train_cams(self) -> int:
        return count_cams(self.train)

    def summary(self) -> dict[str, int]:
        """Counts in torchreid's layout: ids / images / cameras per subset."""
        out: dict[str, int] = {}
        for name, items in (("train", self.train), ("query", self.query), ("gallery", self.gallery)):
            out[f"{name}_ids"] = count_ids(items)
            out[f"{name}_images"] = len(items)
            out[f"{name}_cams"] = count_cams(items)
        return out

    def with_items(self, *, train: Sequence[Item] | None = None, query: Sequence[Item] | None = None,
                   gallery: Sequence[Item] | None = None) -> "Split":
        return replace(
            self,
            train=tuple(self.train if train is None else train),
            query=tuple(self.query if query is None else query),
            gallery=tuple(self.gallery if gallery is None else gallery),
        )
