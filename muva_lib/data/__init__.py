"""Data: item types, dataset readers, the synthetic benchmark, the real set and protocols (batches: :mod:`muva_lib.batches`)."""
from .types import PARTS, Item, PartBox, Split

__all__ = ["PARTS", "Item", "PartBox", "Split"]
