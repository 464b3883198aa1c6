"""Figures: builders return matplotlib Figures (one module per topic); ``save_figure`` writes them byte-stably."""
from __future__ import annotations

import io
from pathlib import Path

import matplotlib

from ..paths import figures_root
from ..utils import atomic_write_bytes

__all__ = ["save_figure", "FIGURE_DPI"]

FIGURE_DPI = 110


def save_figure(fig: "matplotlib.figure.Figure", notebook: str, name: str,
                out_dir: str | Path | None = None, formats: tuple[str, ...] = ("png", "pdf")) -> Path:
    """Write ``fig`` as PNG (fixed dpi) and PDF, byte-identical across runs; return the PNG path.

    Default folder: ``figures/<notebook>/`` (``$MUVA_FIGURES``); a protocol run passes its own
    ``out_dir`` (``<run>/figures``). Metadata that changes between runs or versions (creation
    date, software version) is left out, so re-running a notebook rewrites identical files.
    """
    folder = Path(out_dir) if out_dir is not None else figures_root() / notebook
    first: Path | None = None
    for fmt in formats:
        buf = io.BytesIO()
        if fmt == "pdf":
            metadata = {"CreationDate": None, "Producer": None, "Creator": None}
        elif fmt == "png":
            metadata = {"Software": None}
        else:
            metadata = None
        fig.savefig(buf, format=fmt, dpi=FIGURE_DPI, metadata=metadata, bbox_inches="tight")
        path = atomic_write_bytes(folder / f"{name}.{fmt}", buf.getvalue())
        first = first or path
    assert first is not None, "formats must not be empty"
    return first
