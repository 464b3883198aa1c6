"""The model side of the zero-shot checks: a plain open_clip CLIP (``muva-tiny``) with chosen weights, and its
image features (global and per patch, through :mod:`muva_lib.features`) and text features.

Weights: ``random`` (seeded init: the floor), a PATH to an open_clip state dict (``.safetensors`` / ``.pt``),
or ``synth`` (the workbench's own pretrained weights, shipped in the package: ``model.pretrained=synth``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import open_clip
import torch
import torch.nn.functional as F

from ...batches.loaders import make_test_loader
from ...config import DataCfg
from ...data.types import Item
from ...features import batch_features
from ...models.clip_backbone import (SYNTH_TAG, create_clip, load_state_dict_file, register_model_configs,
                                      shipped_weights_path)

__all__ = ["ZeroShotModel", "load_zeroshot_model", "encode_texts", "encode_images", "token_lengths"]


@dataclass
class ZeroShotModel:
    """A CLIP in eval mode whose vision tower also returns its patch tokens; ``weights``: where they came from."""

    clip: open_clip.CLIP
    weights: str
    context_length: int
    grid: tuple[int, int]  # patch rows, columns
    device: torch.device


def _file_context_length(path: Path) -> int | None:
    """Rows of the text positional embedding stored in a weights file (its text context), if it has one."""
    pos = load_state_dict_file(path).get("positional_embedding")
    return int(pos.shape[0]) if pos is not None else None


def load_zeroshot_model(weights: str = "random", *, arch: str = "muva-tiny", image_size: tuple[int, int] = (128, 64),
                        seed: int = 0, context_length: int = 0, device: torch.device | str = "cpu") -> ZeroShotModel:
    """Build ``arch`` at ``image_size`` (H, W) with ``weights``: ``random`` (init from ``seed``, the global RNG
    left as it was), ``synth`` (the shipped weights; missing or damaged: the error of
    :func:`~muva_lib.models.clip_backbone.shipped_weights_path`) or a PATH.

    ``context_length`` 0: the file's text context, else the architecture's (``muva-tiny``: 32); longer texts
    are cut (open_clip keeps the end-of-text token)."""
    w = weights.strip()
    if w.lower() in ("", "random", "none"):
        pretrained, described = "", f"random init (seed {seed})"
    else:
        path = shipped_weights_path() if w == SYNTH_TAG else Path(w).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"--weights {w}: no such file (expected an open_clip state dict, "
                                    "'.safetensors' or '.pt'; or 'random' or 'synth')")
        pretrained, described = (SYNTH_TAG, f"synth:{path}") if w == SYNTH_TAG else (str(path), str(path))
        if not context_length:
            context_length = _file_context_length(path) or 0
    if not context_length:
        register_model_configs()
        context_length = int(open_clip.get_model_config(arch)["text_cfg"]["context_length"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        clip, _, _ = create_clip(arch, pretrained, tuple(image_size), device=device, context_length=context_length)
    clip.eval().requires_grad_(False)
    clip.visual.output_tokens = True  # forward returns (pooled, patch tokens)
    return ZeroShotModel(clip, described, context_length, tuple(clip.visual.grid_size), torch.device(device))


def token_lengths(texts: Sequence[str]) -> list[int]:
    """Tokens of each text with its start and end tokens (what must fit the text context)."""
    tokens = open_clip.tokenize(list(texts), context_length=256)  # pads with 0, a token id no text uses
    return (tokens != 0).sum(dim=1).tolist()


@torch.no_grad()
def encode_texts(model: ZeroShotModel, texts: Sequence[str], *, batch_size: int = 256) -> torch.Tensor:
    """L2-normalised text features [T, d] on the model's device, in ``texts`` order."""
    if not texts:
        raise ValueError("no texts to encode")
    out = []
    for s in range(0, len(texts), batch_size):
        tokens = open_clip.tokenize(list(texts[s:s + batch_size]), context_length=model.context_length)
        out.append(model.clip.encode_text(tokens.to(model.device)).float())
    return F.normalize(torch.cat(out), dim=-1)


@torch.no_grad()
def encode_images(model: ZeroShotModel, items: Sequence[Item], data_cfg: DataCfg, *, progress: bool = False
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised image features [N, d] and patch features [N, h*w, d] (the patch tokens after the final norm,
    through the same projection as the pooled token), in ``items`` order, with the test transform of ``data_cfg``."""
    visual = model.clip.visual

    def encode_batch(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        pooled, tokens = visual(batch["img"])
        return pooled, tokens @ visual.proj

    loader = make_test_loader(list(items), data_cfg, model.device)
    glob, patches = [], []
    for _, (g, p) in batch_features(loader, encode_batch, model.device, progress=progress, desc="zero-shot images"):
        glob.append(g)
        patches.append(p)
    return F.normalize(torch.cat(glob), dim=-1), F.normalize(torch.cat(patches), dim=-1)
