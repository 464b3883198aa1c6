"""One synthetic pedestrian: a label map drawn back to front, then colours, part boxes and visibility."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
from PIL import Image, ImageDraw

from .domains import CameraScene, DomainStyle, draw_background, finish_image
from .identity import CLOTH, HAIR, SKIN

__all__ = ["PARSING_CLASSES", "PART_CLASSES", "VIEWS", "Rendered", "render_person", "part_boxes"]

#: parsing-map class indices (index = position); hats count as hair, skin as face / arms / legs
PARSING_CLASSES: tuple[str, ...] = ("background", "hair", "face", "arms", "upper_clothes", "bag",
                                    "lower_clothes", "legs", "shoes", "occluder")
#: which parsing classes make up each part box
PART_CLASSES: dict[str, tuple[str, ...]] = {
    "head": ("hair", "face"),
    "upper": ("arms", "upper_clothes", "bag"),
    "legs": ("lower_clothes", "legs", "shoes"),
}
VIEWS: tuple[str, ...] = ("front", "back", "side")

# drawing labels, finer than the parsing classes so that each gets its own colour
BG, HAIR_L, HAT, FACE, EYE, ARM, SLEEVE, UPPER, BAG, LOWER, LEG, SHOE, OCC, OCC_DARK = range(14)
_TO_PARSING = np.array([0, 1, 1, 2, 2, 3, 4, 4, 5, 6, 7, 8, 9, 9], np.uint8)
_PART_IDS = {p: [PARSING_CLASSES.index(c) for c in cs] for p, cs in PART_CLASSES.items()}

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Rendered:
    """A rendered person: image, parsing map ``[H, W]`` uint8, part boxes (pixels) and visibility."""

    image: Image.Image
    parsing: np.ndarray
    boxes: dict[str, Box | None]
    visible: dict[str, float]
    view: str


@dataclass(frozen=True)
class _Pose:
    """Where and how the person stands, in canvas pixels; angles in radians from the vertical."""

    view: str
    facing: int  # +1 right, -1 left (side view)
    cx: float
    top: float
    u: float  # person height in pixels: every body length is a fraction of it
    lean: float
    arms: tuple[float, float]  # left / right (front, back); far / near (side)
    legs: tuple[float, float]
    shoulder: float
    head: float


def _around(rng: np.random.Generator, lo: float, hi: float, jitter: float) -> float:
    """Uniform in [lo, hi] with the half-width scaled by ``jitter`` around the middle."""
    mid, half = (lo + hi) / 2, (hi - lo) / 2 * jitter
    return float(rng.uniform(mid - half, mid + half))


def _sample_pose(style: DomainStyle, rng: np.random.Generator, h: int, w: int, pad: int, jitter: float) -> _Pose:
    view = VIEWS[int(rng.choice(3, p=np.asarray(style.views) / sum(style.views)))]
    facing = 1 if rng.random() < 0.5 else -1
    u = h * _around(rng, *style.person_height, jitter)
    bottom = h - h * _around(rng, *style.foot_margin, jitter)
    cx = w / 2 + rng.normal(0, style.shift * jitter) * w
    deg = math.pi / 180
    if view == "side":
        swing, stride = rng.uniform(-25, 25) * deg, rng.uniform(4, 20) * deg * (1 if rng.random() < 0.5 else -1)
        arms, legs = (-0.8 * swing, swing), (-stride, stride)
    else:
        arms = (-rng.uniform(3, 12) * deg, rng.uniform(3, 12) * deg)
        legs = (-rng.uniform(0, 5) * deg, rng.uniform(0, 5) * deg)
    return _Pose(view=view, facing=facing, cx=cx + pad, top=bottom - u + pad, u=u, lean=float(rng.normal(0, 0.01)),
                 arms=arms, legs=legs, shoulder=float(rng.uniform(0.93, 1.07)), head=float(rng.uniform(0.94, 1.06)))


def _limb(draw: ImageDraw.ImageDraw, p0: tuple[float, float], angle: float, length: float, w0: float,
          w1: float, label: int, end: float = 1.0) -> tuple[float, float]:
    """A tapered quad from ``p0`` along ``angle`` for ``end`` of ``length``, with a round joint."""
    dx, dy, nx, ny = math.sin(angle), math.cos(angle), math.cos(angle), -math.sin(angle)
    wb = w0 + (w1 - w0) * end
    p1 = (p0[0] + dx * length * end, p0[1] + dy * length * end)
    draw.polygon([(p0[0] + nx * w0 / 2, p0[1] + ny * w0 / 2), (p1[0] + nx * wb / 2, p1[1] + ny * wb / 2),
                  (p1[0] - nx * wb / 2, p1[1] - ny * wb / 2), (p0[0] - nx * w0 / 2, p0[1] - ny * w0 / 2)], fill=label)
    draw.ellipse([p0[0] - w0 / 2, p0[1] - w0 / 2, p0[0] + w0 / 2, p0[1] + w0 / 2], fill=label)
    return p1


def _draw_leg(draw: ImageDraw.ImageDraw, a: Mapping[str, str], p: _Pose, hip: tuple[float, float], angle: float) -> None:
    u, side = p.u, p.view == "side"
    ankle = _limb(draw, hip, angle, 0.47 * u, 0.075 * u, 0.052 * u, LEG)
    cover = {"trousers": 0.97, "shorts": 0.38}.get(a["lower_type"])
    if cover is not None:
        _limb(draw, hip, angle, 0.47 * u, 0.085 * u, 0.06 * u, LOWER, end=cover)
    fx = ankle[0] + (p.facing * 0.025 * u if side else 0.0)
    half = (0.055 if side else 0.045) * u
    draw.ellipse([fx - half, ankle[1] - 0.015 * u, fx + half, ankle[1] + 0.05 * u], fill=SHOE)


def _draw_arm(draw: ImageDraw.ImageDraw, a: Mapping[str, str], p: _Pose, shoulder: tuple[float, float], angle: float) -> None:
    u = p.u
    hand = _limb(draw, shoulder, angle, 0.31 * u, 0.055 * u, 0.042 * u, ARM)
    _limb(draw, shoulder, angle, 0.31 * u, 0.064 * u, 0.05 * u, SLEEVE, end=0.38 if a["sleeves"] == "short" else 0.93)
    r = 0.026 * u
    draw.ellipse([hand[0] - r, hand[1] - r, hand[0] + r, hand[1] + r], fill=ARM)


def _draw_head(draw: ImageDraw.ImageDraw, a: Mapping[str, str], p: _Pose, after_torso: bool) -> None:
    """Long hair falling behind the body (``after_torso=False``) or the head itself (True)."""
    u, s, view = p.u, p.facing, p.view
    hx, hy = p.cx + p.lean * u, p.top + 0.08 * u
    rx, ry = 0.055 * u * p.head, 0.075 * u * p.head
    long_hair = a["hair_style"] == "long"
    if not after_torso:
        if long_hair and view == "front":
            draw.rounded_rectangle([hx - 1.15 * rx, hy - 0.6 * ry, hx + 1.15 * rx, p.top + 0.30 * u], rx, fill=HAIR_L)
        return
    if long_hair and view == "back":
        draw.rounded_rectangle([hx - 1.1 * rx, hy - 0.6 * ry, hx + 1.1 * rx, p.top + 0.31 * u], rx, fill=HAIR_L)
    if long_hair and view == "side":
        x0, x1 = sorted((hx - s * 1.1 * rx, hx + s * 0.1 * rx))
        draw.rounded_rectangle([x0, hy - 0.5 * ry, x1, p.top + 0.29 * u], 0.5 * rx, fill=HAIR_L)
    head = [hx - rx, hy - ry, hx + rx, hy + ry]
    if view == "back":
        draw.ellipse(head, fill=HAIR_L)
    else:
        draw.ellipse(head, fill=FACE)
        draw.chord([hx - 1.06 * rx, hy - 1.1 * ry, hx + 1.06 * rx, hy + 0.6 * ry], 180, 360, fill=HAIR_L)
        if view == "side":  # the back of the head is hair
            start, end = (90, 270) if s > 0 else (270, 90)
            draw.chord(head, start, end, fill=HAIR_L)
            eyes = [hx + s * 0.5 * rx]
        else:
            eyes = [hx - 0.36 * rx, hx + 0.36 * rx]
        for ex in eyes:
            draw.ellipse([ex - 0.1 * rx, hy - 0.02 * ry, ex + 0.1 * rx, hy + 0.12 * ry], fill=EYE)
    if a["hat"] == "cap":
        cy = hy - 0.41 * ry
        draw.chord([hx - 1.08 * rx, hy - 1.12 * ry, hx + 1.08 * rx, hy + 0.3 * ry], 180, 360, fill=HAT)
        if view == "front":
            draw.ellipse([hx - 1.1 * rx, cy - 0.12 * ry, hx + 1.1 * rx, cy + 0.12 * ry], fill=HAT)
        elif view == "side":
            x0, x1 = sorted((hx, hx + s * 1.6 * rx))
            draw.rectangle([x0, cy - 0.06 * ry, x1, cy + 0.08 * ry], fill=HAT)
    elif a["hat"] == "beanie":
        draw.chord([hx - 1.1 * rx, hy - 1.2 * ry, hx + 1.1 * rx, hy + 0.9 * ry], 180, 360, fill=HAT)


def _draw_person(draw: ImageDraw.ImageDraw, a: Mapping[str, str], p: _Pose) -> None:
    """Paint the person back to front with drawing labels (canvas pixels)."""
    u, s, view = p.u, p.facing, p.view
    side = view == "side"
    X = lambda fx: p.cx + fx * u  # noqa: E731  (body-relative x, y in units of the height)
    Y = lambda fy: p.top + fy * u  # noqa: E731
    sw, ww = (0.07, 0.065) if side else (0.115 * p.shoulder, 0.095 * p.shoulder)
    hips = [(X(-0.01), Y(0.46)), (X(0.01), Y(0.46))] if side else [(X(-0.048), Y(0.46)), (X(0.048), Y(0.46))]
    shoulders = [(X(0), Y(0.18))] * 2 if side else [(X(-sw + 0.025), Y(0.18)), (X(sw - 0.025), Y(0.18))]
    _draw_head(draw, a, p, after_torso=False)
    if side:  # far leg and far arm, half hidden by the body
        _draw_leg(draw, a, p, hips[0], p.legs[0])
        _draw_arm(draw, a, p, shoulders[0], p.arms[0])
    for i in ((1,) if side else (0, 1)):
        _draw_leg(draw, a, p, hips[i], p.legs[i])
    if a["lower_type"] == "skirt":
        flare = 0.045 if side else 0.06
        draw.polygon([(X(-ww), Y(0.45)), (X(ww), Y(0.45)), (X(ww + flare), Y(0.70)), (X(-ww - flare), Y(0.70))], fill=LOWER)
    else:
        draw.polygon([(X(-ww), Y(0.45)), (X(ww), Y(0.45)), (X(0.9 * ww), Y(0.56)), (X(-0.9 * ww), Y(0.56))], fill=LOWER)
    if a["bag"] == "backpack" and side:  # the pack sticks out behind the back
        x0, x1 = sorted((X(-s * (sw + 0.075)), X(-s * (sw - 0.02))))
        draw.rounded_rectangle([x0, Y(0.19), x1, Y(0.43)], 0.02 * u, fill=BAG)
    draw.polygon([(X(-sw + 0.02), Y(0.16)), (X(-sw), Y(0.2)), (X(-ww), Y(0.47)), (X(ww), Y(0.47)),
                  (X(sw), Y(0.2)), (X(sw - 0.02), Y(0.16))], fill=UPPER)
    strap = max(1, round(0.018 * u))
    if a["bag"] == "backpack":
        if view == "back":
            draw.rounded_rectangle([X(-0.085), Y(0.19), X(0.085), Y(0.43)], 0.02 * u, fill=BAG)
        elif view == "front":
            for sx in (-1, 1):
                draw.line([(X(sx * sw * 0.55), Y(0.165)), (X(sx * sw * 0.62), Y(0.40))], fill=BAG, width=strap)
        else:
            draw.line([(X(s * 0.02), Y(0.17)), (X(s * 0.03), Y(0.40))], fill=BAG, width=strap)
    # the shoulder bag hangs at the person's right hip: image left from the front, right from the back
    bag_side = {"front": -1, "back": 1, "side": 0}[view]
    if a["bag"] == "shoulder":
        if side:
            draw.line([(X(-s * 0.04), Y(0.165)), (X(s * 0.02), Y(0.44))], fill=BAG, width=strap)
        else:
            draw.line([(X(-bag_side * sw * 0.7), Y(0.165)), (X(bag_side * (ww + 0.02)), Y(0.44))], fill=BAG, width=strap)
    for i in ((1,) if side else (0, 1)):
        _draw_arm(draw, a, p, shoulders[i], p.arms[i])
    if a["bag"] == "shoulder":
        bx = X(bag_side * (ww + 0.01) - (s * 0.01 if side else 0))
        draw.rounded_rectangle([bx - 0.045 * u, Y(0.42), bx + 0.045 * u, Y(0.53)], 0.012 * u, fill=BAG)
    _draw_head(draw, a, p, after_torso=True)


def _draw_occluder(draw: ImageDraw.ImageDraw, kind: str, rng: np.random.Generator, p: _Pose, pad: int,
                   h: int, w: int) -> None:
    """A box, pole or car in front of the person (frame pixels)."""
    cx, top = p.cx - pad, p.top - pad
    if kind == "box":
        half = rng.uniform(0.22, 0.45) * w
        x = cx + rng.uniform(-0.15, 0.15) * w
        draw.rounded_rectangle([x - half, top + rng.uniform(0.62, 0.8) * p.u, x + half, h + 2], 0.03 * w, fill=OCC)
    elif kind == "pole":
        half = rng.uniform(0.025, 0.05) * w
        x = cx + rng.uniform(-0.25, 0.25) * w
        draw.rectangle([x - half, -2, x + half, h + 2], fill=OCC)
    elif kind == "car":
        y0 = top + rng.uniform(0.55, 0.75) * p.u
        draw.rounded_rectangle([-0.3 * w, y0, 1.3 * w, h + 0.2 * h], 0.15 * w, fill=OCC)
        draw.rectangle([-0.3 * w, y0 + 0.04 * h, 1.3 * w, y0 + 0.09 * h], fill=OCC_DARK)
        wx = rng.uniform(0.1, 0.9) * w
        r = 0.12 * w
        draw.ellipse([wx - r, h - r, wx + r, h + r], fill=OCC_DARK)
    else:
        raise ValueError(f"unknown occluder kind {kind!r}; expected box, pole or car")


def _colour_table(a: Mapping[str, str], occluder: np.ndarray) -> np.ndarray:
    """``[14, 3]`` float32 colour of every drawing label."""
    lut = np.zeros((14, 3), np.float32)
    skin = SKIN[a["skin"]]
    lut[HAIR_L], lut[FACE], lut[ARM], lut[LEG] = HAIR[a["hair_colour"]], skin, skin, skin
    lut[HAT] = CLOTH.get(a["hat_colour"], (0, 0, 0))
    lut[EYE] = (34, 24, 22)
    lut[SLEEVE] = lut[UPPER] = CLOTH[a["upper_colour"]]
    lut[BAG] = CLOTH.get(a["bag_colour"], (0, 0, 0))
    lut[LOWER], lut[SHOE] = CLOTH[a["lower_colour"]], CLOTH[a["shoes_colour"]]
    lut[OCC], lut[OCC_DARK] = occluder, occluder * 0.3
    return lut


def _colourise(labels: np.ndarray, a: Mapping[str, str], p: _Pose, pad: int, occluder: np.ndarray,
               background: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Frame labels ``[H, W]`` -> ``[H, W, 3]`` float32 colours (pattern, body shading, background)."""
    h, w = labels.shape
    img = _colour_table(a, occluder)[labels]
    ys = np.arange(h, dtype=np.float32)[:, None] - (p.top - pad)
    xs = np.arange(w, dtype=np.float32)[None, :] - (p.cx - pad)
    if a["upper_pattern"] != "plain":
        period = max(2.0, 0.035 * p.u)
        band = np.floor(ys / period) + (np.floor(xs / period) if a["upper_pattern"] == "checks" else 0)
        cloth = (labels == UPPER) | (labels == SLEEVE)
        base = np.asarray(CLOTH[a["upper_colour"]], np.float32)
        second = base * 0.35 if base @ np.array([0.299, 0.587, 0.114]) > 110 else base * 0.4 + 153
        img[cloth & (np.mod(band, 2) == 1)] = second
    person = (labels != BG) & (labels < OCC)
    shade = 1 - 0.28 * np.minimum((xs / (0.16 * p.u)) ** 2, 1)  # a round body, lit from the front
    img *= np.where(person, shade * np.float32(rng.uniform(0.92, 1.08)), 1)[..., None]
    occ = labels >= OCC
    if occ.any():
        img[occ] *= (1.1 - 0.3 * np.broadcast_to(ys + (p.top - pad), (h, w))[occ] / h)[:, None]
    return np.where((labels == BG)[..., None], background, img)


def part_boxes(parsing: np.ndarray) -> dict[str, Box | None]:
    """Bounding box ``(x0, y0, x1, y1)`` (pixels, x1/y1 exclusive) of each part's classes, None if absent."""
    out: dict[str, Box | None] = {}
    for part, ids in _PART_IDS.items():
        mask = np.isin(parsing, ids)
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        out[part] = None if rows.size == 0 else (float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1))
    return out


def _part_counts(parsing: np.ndarray) -> dict[str, int]:
    counts = np.bincount(parsing.ravel(), minlength=len(PARSING_CLASSES))
    return {part: int(counts[ids].sum()) for part, ids in _PART_IDS.items()}


def render_person(attrs: Mapping[str, str], style: DomainStyle, cam: CameraScene, rng: np.random.Generator,
                  *, height: int = 256, width: int = 128, occlusion: float = 1.0, jitter: float = 1.0,
                  degrade: float = 1.0) -> Rendered:
    """Draw one image of an identity in a domain's style, seen by camera ``cam``.

    Boxes come from the parsing map before occluders are drawn, inside the frame; ``visible`` is
    the fraction of each part's pixels (person drawn on a padded canvas, so parts cut off by the
    frame count as hidden) that end up in the frame and not under an occluder. A part with no
    visible pixel gets a None box. ``occlusion`` scales the domain's occluder probability,
    ``jitter`` its scale / position / crop jitter, ``degrade`` its noise, blur and resolution loss.
    """
    pad = height // 3
    pose = _sample_pose(style, rng, height, width, pad, jitter)
    canvas = Image.new("L", (width + 2 * pad, height + 2 * pad), BG)
    _draw_person(ImageDraw.Draw(canvas), attrs, pose)
    full = np.asarray(canvas)
    totals = _part_counts(_TO_PARSING[full])
    frame = Image.fromarray(full[pad:pad + height, pad:pad + width].copy())
    boxes = part_boxes(_TO_PARSING[np.asarray(frame)])
    occluder = np.zeros(3, np.float32)
    if style.occluders and rng.random() < min(1.0, style.occluder_prob * occlusion):
        kind = style.occluders[int(rng.integers(len(style.occluders)))]
        occluder = np.asarray(style.occluder_colours[int(rng.integers(len(style.occluder_colours)))], np.float32)
        _draw_occluder(ImageDraw.Draw(frame), kind, rng, pose, pad, height, width)
    labels = np.asarray(frame)
    parsing = _TO_PARSING[labels]
    seen = _part_counts(parsing)
    # rounded to 4 decimals, but never to 0 while a pixel is left (a null box means nothing visible)
    visible = {k: max(round(seen[k] / totals[k], 4), 1e-4) if seen[k] else 0.0 for k in totals}
    boxes = {k: (b if seen[k] else None) for k, b in boxes.items()}
    background = draw_background(style, cam, rng, height, width)
    image = finish_image(_colourise(labels, attrs, pose, pad, occluder, background, rng), style, cam, rng, degrade)
    return Rendered(image, parsing, boxes, visible, pose.view)
