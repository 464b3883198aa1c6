"""One home per method: a recipe module each, registered here in table order.

``clipreid`` is the base recipe; ``muva`` and ``pivl`` build on it (subclasses), each written as its
difference from CLIP-ReID. :mod:`muva_lib.config` resolves a method through :func:`get`. Adding a
method: one module with a :class:`Recipe` subclass, registered below, plus its tests.
"""
from __future__ import annotations

from .clipreid import ClipReid
from .muva import Muva
from .pivl import Pivl
from .registry import Recipe, get, names, recipes, register

# table order (the first is the default method)
for _recipe in (Muva, ClipReid, Pivl):
    register(_recipe)

__all__ = ["Recipe", "register", "get", "names", "recipes", "ClipReid", "Muva", "Pivl"]
