"""Answer parsing: grounding answers of the formats VLMs emit -> one validated pixel box, or a reason.

Formats understood (``fmt="auto"`` tries them in this order; the first one found in the text
decides):

============== ============================================ ====================================
name           example                                      units
============== ============================================ ====================================
``qwen_json``  ``[{"bbox_2d": [38, 3, 73, 44], ...}]``      pixels of the model's input frame
``qwen2_tags`` ``<|box_start|>(38,12),(570,172)<|box_end|>`` 0-1000 of the image
``box_tags``   ``<ref>head</ref><box>(38,12),(570,172)</box>`` 0-1000 of the image
``florence``   ``head<loc_297><loc_11><loc_570><loc_171>``  0-999 bins of the image
``cogvlm``     ``[[297,011,570,171]]`` (``;`` separates boxes) 0-1000 of the image
``numbers``    ``38, 3, 73, 44`` / ``[0.3, 0.01, 0.57, 0.17]`` guessed: all in [0, 1] with a
                                                            fraction -> 0-1; beyond the frame
                                                            and <= 1000 -> 0-1000; else pixels
============== ============================================ ====================================

Validation (every failure is a fallback with its reason; nothing raises on bad text): no box,
wrong number of coordinates, NaN / inf, swapped corners (``x1 < x0`` or ``y1 < y0``), zero
area, coordinates more than ``tolerance`` (fraction of the image side) outside the image.
Boxes slightly outside the image are clipped to it (reason ``clipped to image``). Several boxes
for one part (CogVLM's ``[[a;b]]``, two legs) are merged into their union.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from ..geometry.boxes import Box, box_union

__all__ = ["Parsed", "FORMATS", "ANSWER_FORMATS", "check_answer_format", "parse_answer", "extract_boxes",
           "validate_box", "MAX_ANSWER_CHARS"]

#: answers are cut to this many characters before parsing (a runaway generation is still parsed)
MAX_ANSWER_CHARS = 20_000

_NUM = r"[-+]?(?:nan|inf(?:inity)?|(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)"
_NUM_RE = re.compile(_NUM, re.IGNORECASE)
_SEP = r"[\s,;()\[\]]+"
_FOUR_RE = re.compile(rf"(?<![\w.]){_NUM}(?:{_SEP}{_NUM}){{3}}(?![\w.])", re.IGNORECASE)
_PATTERNS: dict[str, re.Pattern[str]] = {
    "qwen_json": re.compile(r"[\"']bbox(?:_2d)?[\"']\s*:\s*\[([^\]]*)\]", re.IGNORECASE),
    "qwen2_tags": re.compile(r"<\|box_start\|>(.*?)<\|box_end\|>", re.DOTALL),
    "box_tags": re.compile(r"<box>(.*?)</box>", re.DOTALL | re.IGNORECASE),
    "florence": re.compile(r"((?:<loc_\d+>\s*){4})"),
    "cogvlm": re.compile(r"\[\[(.*?)\]\]", re.DOTALL),
    "numbers": _FOUR_RE,
}
#: format name -> coordinate units (``auto``: guessed from the values, see the module docstring)
FORMATS: dict[str, str] = {"qwen_json": "pixels", "qwen2_tags": "rel1000", "box_tags": "rel1000",
                           "florence": "bin1000", "cogvlm": "rel1000", "numbers": "auto"}
#: every value ``vge.answer_format`` may take: ``auto`` and the format names
ANSWER_FORMATS: tuple[str, ...] = ("auto", *FORMATS)


def check_answer_format(fmt: Any, key: str = "vge.answer_format") -> str:
    """``fmt`` if it is one of :data:`ANSWER_FORMATS`, else ``ValueError`` naming ``key``, the value and
    what is allowed (checked before any grounding: a typo would make every answer a fallback)."""
    if fmt not in ANSWER_FORMATS:
        import difflib

        close = difflib.get_close_matches(str(fmt), ANSWER_FORMATS, n=1)
        raise ValueError(f"{key}={fmt!r} is not an answer format; allowed: {', '.join(ANSWER_FORMATS)}"
                         + (f" (did you mean {close[0]!r}?)" if close else ""))
    return fmt


@dataclass(frozen=True)
class Parsed:
    """One part's parsed answer: ``box`` in image pixels or ``None``; ``status`` ``ok`` / ``fallback``."""

    box: Box | None
    status: str
    reason: str
    fmt: str

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def _numbers(text: str) -> list[float]:
    return [float(m) for m in _NUM_RE.findall(text)]


def extract_boxes(text: str, fmt: str = "auto") -> tuple[str, list[list[float]]]:
    """Raw coordinate lists found in ``text`` and the format that matched (``"none"`` if nothing).

    Lists are returned as written (any length, any units): validation happens later.
    """
    names = list(_PATTERNS) if fmt == "auto" else [fmt]
    for name in names:
        if name not in _PATTERNS:
            raise ValueError(f"unknown answer format {name!r}; known: auto, {', '.join(_PATTERNS)}")
        found = _PATTERNS[name].findall(text) if name != "numbers" else _FOUR_RE.findall(text)[:1]
        if not found:
            continue
        boxes: list[list[float]] = []
        for chunk in found:
            pieces = chunk.split(";") if name == "cogvlm" else [chunk]
            boxes += [_numbers(p) for p in pieces if p.strip()]
        if boxes:
            return name, boxes
    return "none", []


def _guess_units(c: list[float], frame_wh: tuple[float, float], tolerance: float) -> str:
    if all(0.0 <= v <= 1.0 for v in c) and any(v != int(v) for v in c):
        return "rel1"
    fw, fh = frame_wh
    beyond = max(c[0], c[2]) > fw * (1 + tolerance) or max(c[1], c[3]) > fh * (1 + tolerance)
    return "rel1000" if beyond and max(c) <= 1000 else "pixels"


def _to_pixels(c: list[float], units: str, image_wh: tuple[int, int], frame_wh: tuple[float, float]) -> Box:
    w, h = image_wh
    if units == "rel1000":
        sx, sy, off = w / 1000, h / 1000, 0.0
    elif units == "bin1000":
        sx, sy, off = w / 1000, h / 1000, 0.5
    elif units == "rel1":
        sx, sy, off = w, h, 0.0
    elif units == "pixels":
        sx, sy, off = w / frame_wh[0], h / frame_wh[1], 0.0
    else:
        raise ValueError(f"unknown units {units!r}")
    return ((c[0] + off) * sx, (c[1] + off) * sy, (c[2] + off) * sx, (c[3] + off) * sy)


def validate_box(box: Any, image_wh: tuple[int, int], tolerance: float = 0.02) -> tuple[Box | None, str]:
    """Check a pixel box against the image: ``(box, "")``, ``(clipped, "clipped to image")`` or
    ``(None, reason)``. Used for every backend's boxes, parsed or not."""
    try:
        vals = [float(v) for v in box]
    except (TypeError, ValueError):
        return None, f"not a list of numbers: {str(box)[:60]!r}"
    if len(vals) != 4:
        return None, f"expected 4 coordinates, got {len(vals)}"
    if not all(math.isfinite(v) for v in vals):
        return None, "non-finite coordinates (NaN or inf)"
    x0, y0, x1, y1 = vals
    if x1 < x0 or y1 < y0:
        return None, "swapped corners (x1 < x0 or y1 < y0)"
    if x1 == x0 or y1 == y0:
        return None, "zero area"
    w, h = image_wh
    tx, ty = tolerance * w, tolerance * h
    if x0 < -tx or y0 < -ty or x1 > w + tx or y1 > h + ty:
        return None, "out of range (beyond the image by more than the tolerance)"
    clipped = (max(x0, 0.0), max(y0, 0.0), min(x1, float(w)), min(y1, float(h)))
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        return None, "zero area after clipping to the image"
    return clipped, ("clipped to image" if clipped != (x0, y0, x1, y1) else "")


def parse_answer(text: Any, image_wh: tuple[int, int], frame_wh: tuple[float, float] | None = None,
                 fmt: str = "auto", tolerance: float = 0.02) -> Parsed:
    """Parse one grounding answer into a box in pixels of an image of ``image_wh = (W, H)``.

    ``frame_wh`` is the pixel frame the model answers in when it answers in pixels (Qwen2.5-VL:
    its resized input); default: the image itself. ``tolerance``: how far (fraction of the
    image side) a coordinate may overshoot the image before the box is rejected rather than
    clipped. Never raises on bad text; always returns a :class:`Parsed`.
    """
    if not isinstance(text, str) or not text.strip():
        return Parsed(None, "fallback", "empty answer", "none")
    text = text[:MAX_ANSWER_CHARS]
    frame = tuple(float(v) for v in (frame_wh or image_wh))
    name, found = extract_boxes(text, fmt)
    if not found:
        return Parsed(None, "fallback", "no box in answer", name)
    good: list[Box] = []
    notes: list[str] = []
    errors: list[str] = []
    for c in found:
        if len(c) != 4:
            errors.append(f"expected 4 coordinates, got {len(c)}")
            continue
        if not all(math.isfinite(v) for v in c):
            errors.append("non-finite coordinates (NaN or inf)")
            continue
        units = FORMATS[name] if FORMATS[name] != "auto" else _guess_units(c, frame, tolerance)
        box, why = validate_box(_to_pixels(c, units, image_wh, frame), image_wh, tolerance)
        if box is None:
            errors.append(why)
        else:
            good.append(box)
            if why:
                notes.append(why)
    if not good:
        return Parsed(None, "fallback", errors[0], name)
    if len(good) > 1:
        notes.append(f"merged {len(good)} boxes")
    if errors:
        notes.append(f"ignored {len(errors)} invalid box(es)")
    return Parsed(box_union(good), "ok", "; ".join(dict.fromkeys(notes)), name)

