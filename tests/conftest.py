"""Shared pytest fixtures (each one self-contained)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest


@pytest.fixture(scope="session")
def synth_small(tmp_path_factory: pytest.TempPathFactory) -> SimpleNamespace:
    """A small synthetic benchmark: three domains of 36 ids at 128x64, generated once per session.

    ``root`` holds ``synth-a/``, ``synth-b/``, ``synth-c/``; ``seed``, ``args`` (the SynthCfg
    overrides) and ``summary`` (what :func:`generate` returned) describe it.
    """
    from muva_lib.data.synthetic import generate

    root = tmp_path_factory.mktemp("synth_small")
    args = dict(ids=36, images_per_id=6, height=128, width=64, distractors=6)
    summary = generate(root, seed=0, workers=2, **args)
    return SimpleNamespace(root=root, seed=0, args=args, summary=summary)
