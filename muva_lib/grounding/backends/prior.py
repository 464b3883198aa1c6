"""The ``prior`` backend: fixed per-part bands, the no-model baseline and the fallback of calibration."""
from __future__ import annotations

from typing import Sequence

from PIL import Image

from ...data.types import Item
from ...geometry.boxes import Box, denormalise
from .backend import Answer, Backend

__all__ = ["PRIOR_BANDS", "PriorBackend", "prior_box"]

#: normalised ``(x0, y0, x1, y1)`` per part (fractions of width / height), read off the
#: pipeline figure's example on a 128 x 256 crop (head [38,3,73,44], upper [10,49,126,142],
#: legs [2,145,103,255]) and widened to a centred person.
PRIOR_BANDS: dict[str, Box] = {
    "head": (0.30, 0.00, 0.70, 0.18),
    "upper": (0.10, 0.17, 0.90, 0.57),
    "legs": (0.15, 0.53, 0.85, 1.00),
}


def prior_box(part: str, size_wh: tuple[int, int]) -> Box:
    """The fixed band of ``part`` in pixels of an image of ``size_wh = (W, H)``."""
    return denormalise(PRIOR_BANDS[part], size_wh)


class PriorBackend(Backend):
    """Every image gets the same bands (scaled to its size); answers are ``ok`` by construction."""

    name = "prior"
    batch_size = 256

    def ground(self, images: Sequence[Image.Image], items: Sequence[Item]) -> list[dict[str, Answer]]:
        return [{p: Answer("prior band", prior_box(p, im.size), "ok") for p in self.parts} for im in images]
