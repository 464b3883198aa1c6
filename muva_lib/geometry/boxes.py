"""Box helpers shared by parsing, calibration and evaluation: pixel boxes ``(x0, y0, x1, y1)``, IoU."""
from __future__ import annotations

import math
from typing import Sequence

__all__ = ["Box", "box_iou", "box_union", "normalise", "denormalise", "is_finite_box", "as_box"]

#: ``(x0, y0, x1, y1)`` in pixels, top-left origin, ``x1``/``y1`` exclusive (a box of width
#: ``x1 - x0``); the normalised form divides x by the image width and y by its height.
Box = tuple[float, float, float, float]


def as_box(values: Sequence[float] | None) -> Box | None:
    """A 4-sequence (list from JSON, numpy row) as a float tuple; ``None`` stays ``None``."""
    if values is None:
        return None
    if len(values) != 4:
        raise ValueError(f"a box has 4 coordinates (x0, y0, x1, y1), got {list(values)!r}")
    return tuple(float(v) for v in values)  # type: ignore[return-value]


def is_finite_box(box: Sequence[float]) -> bool:
    return all(math.isfinite(float(v)) for v in box)


def box_iou(a: Box | None, b: Box | None) -> float:
    """Intersection over union of two pixel boxes; 0 when either is ``None`` or empty."""
    if a is None or b is None:
        return 0.0
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def box_union(boxes: Sequence[Box]) -> Box:
    """The smallest box holding every box of a non-empty list."""
    if not boxes:
        raise ValueError("box_union of an empty list")
    return (min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes))


def normalise(box: Box, size_wh: tuple[int, int]) -> Box:
    """Pixels -> fractions of the image (x / W, y / H)."""
    w, h = size_wh
    return (box[0] / w, box[1] / h, box[2] / w, box[3] / h)


def denormalise(box: Box, size_wh: tuple[int, int]) -> Box:
    """Fractions of the image -> pixels."""
    w, h = size_wh
    return (box[0] * w, box[1] * h, box[2] * w, box[3] * h)
