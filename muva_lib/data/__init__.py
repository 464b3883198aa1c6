"""Data: item types, dataset readers, the synthetic benchmark, protocols and loaders."""
from .types import PARTS, Item, PartBox, Split

__all__ = ["PARTS", "Item", "PartBox", "Split"]
