"""Shared builders for the model tests (tiny random-weight CLIP, no network)."""
from __future__ import annotations

import socket

import pytest
import torch

from muva_lib.models.clip_backbone import create_clip


def tiny_clip(size: tuple[int, int] = (128, 64), seed: int = 0, **kw):
    """A random-weight ``muva-tiny`` open_clip CLIP at ``size`` (H, W)."""
    torch.manual_seed(seed)
    model, _, _ = create_clip("muva-tiny", "", size, **kw)
    return model


def block_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to open a connection fail loudly."""
    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """No network, empty caches: data root, home (~/.cache/clip) and the Hugging Face cache."""
    import huggingface_hub.constants as hfc

    from muva_lib.models.clip_backbone import ENV_WEIGHTS

    block_network(monkeypatch)
    monkeypatch.setenv("MUVA_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv(ENV_WEIGHTS, raising=False)
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path / "hf"))
    return tmp_path


def test_tiny_clip_is_registered_and_small():
    import open_clip

    model = tiny_clip()
    assert "muva-tiny" in open_clip.list_models()
    assert model.visual.grid_size == (8, 4) and model.positional_embedding.shape[0] == 32
    assert sum(p.numel() for p in model.visual.parameters()) < 3e6
