"""Interactive explorers for JupyterLab (issue 16): one module per explorer, each a function returning an
:class:`~muva_lib.explore.base.Explorer` (an ipywidgets container) whose controls redraw a figure built by
:mod:`muva_lib.viz`. Without a front end an explorer still shows the figure of its initial state (see
:mod:`.base`). Heavy imports (torch, the models) happen in the explorer functions' modules on first use."""
from __future__ import annotations

import importlib
from typing import Any

from .base import Explorer, View, figure_png

__all__ = ["Explorer", "View", "figure_png", "grounding_explorer", "calibration_explorer", "masks_explorer",
           "retrieval_explorer", "runs_explorer", "text_query_explorer"]

_LAZY = {"grounding_explorer": "grounding", "calibration_explorer": "calibration", "masks_explorer": "masks",
         "retrieval_explorer": "retrieval", "runs_explorer": "runs", "text_query_explorer": "text_query"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
