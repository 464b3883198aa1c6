"""Where things live: repository root, data, figures and runs (each overridable by an env var)."""
from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["repo_root", "data_root", "raw_root", "synth_root", "real_vtest_root", "figures_root", "runs_root", "slug"]


def repo_root() -> Path:
    """The folder holding ``pyproject.toml`` above this package (the source checkout).

    Falls back to the current working directory when the package is installed elsewhere.
    """
    here = Path(__file__).resolve().parent
    for cand in (here, *here.parents):
        if (cand / "pyproject.toml").is_file() and (cand / "muva_lib").is_dir():
            return cand
    return Path.cwd()


def _env_path(var: str, default: Path) -> Path:
    value = os.environ.get(var, "").strip()
    return Path(value).expanduser().resolve() if value else default


def data_root() -> Path:
    """``$MUVA_DATA`` or ``<repo>/data``: everything data-like (raw datasets, synthetic, grounding)."""
    return _env_path("MUVA_DATA", repo_root() / "data")


def raw_root() -> Path:
    """``$MUVA_RAW`` or ``<data>/raw``: real datasets, one folder each (see the README's data section)."""
    return _env_path("MUVA_RAW", data_root() / "raw")


def synth_root() -> Path:
    """``$MUVA_SYNTH`` or ``<data>/synth``: the synthetic benchmark, one folder per domain."""
    return _env_path("MUVA_SYNTH", data_root() / "synth")


def real_vtest_root(max_frames: int | None = None) -> Path:
    """``<data>/real-vtest`` for the whole clip, ``<data>/real-vtest-f<N>`` for its first N frames
    (a separate folder, hence a separate dataset key: grounding stores never mix the two). The real
    set's builder writes there and its reader reads there."""
    return data_root() / ("real-vtest" if max_frames is None else f"real-vtest-f{max_frames}")


def figures_root() -> Path:
    """``$MUVA_FIGURES`` or ``<repo>/figures``."""
    return _env_path("MUVA_FIGURES", repo_root() / "figures")


def runs_root() -> Path:
    """``$MUVA_RUNS`` or ``<repo>/runs``."""
    return _env_path("MUVA_RUNS", repo_root() / "runs")


_SLUG_BAD = re.compile(r"[^A-Za-z0-9._-]+")


def slug(name: str) -> str:
    """Folder-safe form of a protocol or dataset name.

    >>> slug("d+ms+c3->ma")
    'd_ms_c3-to-ma'
    >>> slug("synth-a->synth-b")
    'synth-a-to-synth-b'
    """
    s = name.strip().lower().replace("->", "-to-").replace("+", "_")
    s = _SLUG_BAD.sub("_", s).strip("_")
    if not s:
        raise ValueError(f"cannot make a folder name from {name!r}")
    return s
