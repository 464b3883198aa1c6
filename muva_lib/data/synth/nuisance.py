"""Domain randomisation for the pretraining corpus: one nuisance draw per image, wider than the benchmark domains.

Every corpus image gets its own scene and camera response, drawn independently per nuisance from the
ranges below (uniform; an image is its own camera, so there is no per-camera jitter). Every value of the
three benchmark domains (``DOMAINS``) lies inside these ranges.

| nuisance | synth-a / synth-b / synth-c | corpus | ``exclude`` neighbourhood |
|---|---|---|---|
| background family | tiles / foliage / panels | tiles, foliage, panels, bricks, plain | the domain's family |
| texture strength | 0.15 / 0.35 / 0.25 | 0.05 .. 0.45 | within 0.04 |
| wall colour (RGB) | 4 fixed colours each | each channel 40 .. 230, moved 0.4 of the way to its grey | within 40 (L2) of one |
| ground colour (RGB) | 3 fixed colours each | each channel 50 .. 200, moved 0.4 of the way to its grey | within 40 (L2) of one |
| horizon (of the height) | .45-.60 / .30-.50 / .55-.75 | 0.25 .. 0.80 | inside the domain's range |
| illumination (gain) | 1.05 / 0.85 / 0.95 | 0.65 .. 1.30 | within 0.06 |
| colour cast (R, G, B gains) | one triple each | each channel 0.78 .. 1.22 | within 0.05 on every channel |
| saturation | 1.1 / 0.8 / 1.0 | 0.60 .. 1.30 | within 0.06 |
| pixel noise (std, 0..255) | 3 / 4 / 6 | 0 .. 9 | within 0.6 |
| resolution loss (shrink factor) | 1 / 1.5 / 2.6 | 1 .. 3.5 | within 0.2 |
| blur (radius at 256 px) | 0.3 / 0.9 / 0.5 | 0 .. 1.6 | within 0.12 |
| JPEG quality | 92 / 85 / 75 | 60 .. 95 | within 3 |
| person height (distance) | .82-.94 / .78-.92 / .80-1.04 | 0.68 .. 1.08 | inside the domain's range |
| horizontal shift (std) | 0.04 / 0.06 / 0.10 | 0 .. 0.14 | within 0.01 |
| foot margin (crop) | .01-.05 / 0-.08 / -.06-.04 | -0.08 .. 0.10 | inside the domain's range |
| occluder probability | 0.08 / 0.30 / 0.20 | 0 .. 0.45 | within 0.03 |
| occluder kind | box / car, pole / pole, box | box, pole, car | the kinds the domain uses |
| occluder colour (RGB) | 2-4 fixed colours each | each channel 20 .. 220 | within 40 (L2) of one |
| view | 45:35:20 / 25:25:50 / 60:25:15 | front, back, side equally | not excluded (caption content) |

``exclude`` (``synth-pretrain --exclude-style NAME``, repeatable) redraws any nuisance whose value falls
in the named domain's neighbourhood, each nuisance on its own, so no corpus image shares a single
nuisance setting with that domain ("within": strictly closer than the tolerance, JPEG quality up to 3
included; "inside the range": ends included). Identities, views and whole-person captions come from
other random streams and stay the same; part captions can differ, since they follow each part's
visibility. Excluding so much that a categorical nuisance has no option left (all three domains: no
occluder kind) is refused when the draw is set up.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Sequence

import numpy as np

from .domains import CameraScene, DomainStyle
from .identity import Priors

__all__ = ["TEXTURES", "OCCLUDERS", "SPECS", "Spec", "Nuisance", "draw_nuisance", "too_close", "as_scene",
           "check_exclusion"]

TEXTURES: tuple[str, ...] = ("tiles", "foliage", "panels", "bricks", "plain")
OCCLUDERS: tuple[str, ...] = ("box", "pole", "car")
_MAX_TRIES = 1000


@dataclass(frozen=True)
class Spec:
    """How one nuisance is drawn and when it counts as a domain's own.

    ``kind``: ``scalar`` (uniform in [lo, hi], close if within ``tol`` of the domain's value), ``range``
    (uniform, close if inside the domain's (lo, hi) range), ``vector`` (3 uniforms, close if every
    channel is within ``tol``), ``colour`` (3 uniforms, close if within ``tol`` in L2 of any colour of
    the domain's palette), ``category`` (one of ``options``, close if the domain uses it), ``integer``
    (uniform integer in [lo, hi], close if within ``tol``).
    """

    name: str
    style_field: str  # the DomainStyle field holding the domain's value
    kind: str
    lo: float = 0.0
    hi: float = 0.0
    tol: float = 0.0
    options: tuple[str, ...] = ()
    grey_pull: float = 0.0  # colour: move the drawn colour this far towards its grey (tames the saturation)


#: the nuisances in draw order (the table of the module docstring)
SPECS: tuple[Spec, ...] = (
    Spec("texture", "texture", "category", options=TEXTURES),
    Spec("texture_strength", "texture_strength", "scalar", 0.05, 0.45, 0.04),
    Spec("wall", "walls", "colour", 40, 230, 40, grey_pull=0.4),
    Spec("ground", "grounds", "colour", 50, 200, 40, grey_pull=0.4),
    Spec("horizon", "horizon", "range", 0.25, 0.8),
    Spec("gain", "gain", "scalar", 0.65, 1.3, 0.06),
    Spec("cast", "cast", "vector", 0.78, 1.22, 0.05),
    Spec("saturation", "saturation", "scalar", 0.6, 1.3, 0.06),
    Spec("noise", "noise", "scalar", 0.0, 9.0, 0.6),
    Spec("downscale", "downscale", "scalar", 1.0, 3.5, 0.2),
    Spec("blur", "blur", "scalar", 0.0, 1.6, 0.12),
    Spec("jpeg_quality", "jpeg_quality", "integer", 60, 95, 3),
    Spec("person_height", "person_height", "range", 0.68, 1.08),
    Spec("shift", "shift", "scalar", 0.0, 0.14, 0.01),
    Spec("foot_margin", "foot_margin", "range", -0.08, 0.1),
    Spec("occluder_prob", "occluder_prob", "scalar", 0.0, 0.45, 0.03),
    Spec("occluder", "occluders", "category", options=OCCLUDERS),
    Spec("occluder_colour", "occluder_colours", "colour", 20, 220, 40),
)


@dataclass(frozen=True)
class Nuisance:
    """One image's scene and camera: a value per :data:`SPECS` entry (colours in sRGB 0..255)."""

    texture: str
    texture_strength: float
    wall: tuple[float, float, float]
    ground: tuple[float, float, float]
    horizon: float
    gain: float
    cast: tuple[float, float, float]
    saturation: float
    noise: float
    downscale: float
    blur: float
    jpeg_quality: int
    person_height: float
    shift: float
    foot_margin: float
    occluder_prob: float
    occluder: str
    occluder_colour: tuple[float, float, float]

    def as_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}


def too_close(spec: Spec, value: Any, style: DomainStyle) -> bool:
    """Whether ``value`` of nuisance ``spec`` lies in ``style``'s neighbourhood (see the module table)."""
    own = getattr(style, spec.style_field)
    if spec.kind == "category":
        return value in ((own,) if isinstance(own, str) else tuple(own))
    if spec.kind == "range":
        return own[0] <= value <= own[1]
    if spec.kind == "vector":
        return bool(np.all(np.abs(np.asarray(value) - np.asarray(own)) < spec.tol))
    if spec.kind == "colour":
        return bool(np.min(np.linalg.norm(np.asarray(own, float) - np.asarray(value, float), axis=1)) < spec.tol)
    if spec.kind == "scalar":
        return abs(value - own) < spec.tol
    if spec.kind == "integer":
        return abs(value - own) <= spec.tol
    raise ValueError(f"nuisance {spec.name!r}: unknown kind {spec.kind!r}")


def check_exclusion(exclude: Sequence[DomainStyle]) -> None:
    """Raise ValueError when excluding ``exclude`` leaves a categorical nuisance without any option."""
    for spec in SPECS:
        if spec.kind == "category" and all(any(too_close(spec, o, s) for s in exclude) for o in spec.options):
            names = ", ".join(s.name for s in exclude)
            raise ValueError(f"excluding {names} leaves no {spec.name} to draw (options {', '.join(spec.options)})")


def _draw_one(spec: Spec, rng: np.random.Generator) -> Any:
    if spec.kind == "category":
        return spec.options[int(rng.integers(len(spec.options)))]
    if spec.kind == "integer":
        return int(rng.integers(int(spec.lo), int(spec.hi) + 1))
    if spec.kind in ("vector", "colour"):
        v = rng.uniform(spec.lo, spec.hi, 3)
        return tuple(np.round(v + spec.grey_pull * (v.mean() - v), 4).tolist())
    return round(float(rng.uniform(spec.lo, spec.hi)), 4)


def draw_nuisance(rng: np.random.Generator, exclude: Sequence[DomainStyle] = ()) -> Nuisance:
    """One image's nuisances, each redrawn while it lies in the neighbourhood of a domain of ``exclude``."""
    values = {}
    for spec in SPECS:
        for _ in range(_MAX_TRIES):
            value = _draw_one(spec, rng)
            if not any(too_close(spec, value, style) for style in exclude):
                break
        else:
            raise ValueError(f"nuisance {spec.name!r}: no value outside the excluded domains after {_MAX_TRIES} draws")
        values[spec.name] = value
    return Nuisance(**values)


def as_scene(n: Nuisance, *, priors: Priors | None = None) -> tuple[DomainStyle, CameraScene]:
    """The one-image domain and camera that :func:`render_person` draws ``n`` with (ranges collapsed to points)."""
    style = DomainStyle(
        name="synth-pretrain", index=-1, cameras=1, views=(1.0, 1.0, 1.0), walls=(n.wall,), grounds=(n.ground,),
        texture=n.texture, texture_strength=n.texture_strength, horizon=(n.horizon, n.horizon), gain=n.gain,
        cast=n.cast, saturation=n.saturation, camera_jitter=0.0, noise=n.noise, downscale=n.downscale,
        blur=n.blur, person_height=(n.person_height, n.person_height), shift=n.shift,
        foot_margin=(n.foot_margin, n.foot_margin), occluder_prob=n.occluder_prob, occluders=(n.occluder,),
        occluder_colours=(n.occluder_colour,), jpeg_quality=n.jpeg_quality, priors=priors or Priors())
    cam = CameraScene(wall=n.wall, ground=n.ground, horizon=n.horizon, gain=1.0, cast=(1.0, 1.0, 1.0))
    return style, cam
