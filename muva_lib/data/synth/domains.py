"""Domain styles of the synthetic benchmark: cameras, backgrounds, illumination and degradation."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageFilter

from .identity import Priors

__all__ = ["DomainStyle", "CameraScene", "DOMAINS", "make_cameras", "draw_background", "finish_image"]

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class DomainStyle:
    """What makes one domain look like one dataset (sizes in fractions of the image unless noted)."""

    name: str
    index: int  # fixed per domain: pids are 1000 * index + 1, ...
    cameras: int
    views: tuple[float, float, float]  # probabilities of front, back, side
    walls: tuple[RGB, ...]  # upper-background colours (one drawn per camera)
    grounds: tuple[RGB, ...]  # floor colours (one drawn per camera)
    texture: str  # tiles | foliage | panels (the benchmark's) | bricks | plain (pretraining corpus only)
    texture_strength: float  # 0..1
    horizon: tuple[float, float]  # range of the wall/floor border, fraction of the height
    gain: float  # brightness multiplier
    cast: tuple[float, float, float]  # per-channel colour multipliers
    saturation: float  # 1 leaves colours unchanged
    camera_jitter: float  # std of per-camera gain and cast variation
    noise: float  # std of pixel noise, 0..255 units
    downscale: float  # resolution loss: shrink by this factor and back up (1 = none)
    blur: float  # Gaussian blur radius in pixels at a 256-pixel height
    person_height: tuple[float, float]  # person height / image height
    shift: float  # std of the horizontal centre offset, fraction of the width
    foot_margin: tuple[float, float]  # gap under the feet (negative cuts the feet off)
    occluder_prob: float  # probability of an occluder in front of the person
    occluders: tuple[str, ...]  # box | pole | car
    occluder_colours: tuple[RGB, ...]
    jpeg_quality: int
    priors: Priors = field(default_factory=Priors)  # clothing habits of the domain


@dataclass(frozen=True)
class CameraScene:
    """One camera of a domain: its scene colours and its colour response (fixed per camera)."""

    wall: tuple[float, float, float]
    ground: tuple[float, float, float]
    horizon: float
    gain: float
    cast: tuple[float, float, float]


#: The default domains, loosely after Market-1501 (bright summer campus, sharp), DukeMTMC-reID
#: (cool winter streets, cars, side views, blur) and MSMT17 / CUHK (warm indoor light, low
#: resolution, loose crops, poles).
DOMAINS: dict[str, DomainStyle] = {
    "synth-a": DomainStyle(
        name="synth-a", index=0, cameras=6, views=(0.45, 0.35, 0.20),
        walls=((200, 200, 188), (168, 190, 156), (214, 204, 182), (150, 172, 140)),
        grounds=((182, 176, 164), (160, 160, 154), (192, 182, 160)),
        texture="tiles", texture_strength=0.15, horizon=(0.45, 0.6), gain=1.05,
        cast=(1.04, 1.0, 0.94), saturation=1.1, camera_jitter=0.05, noise=3.0, downscale=1.0,
        blur=0.3, person_height=(0.82, 0.94), shift=0.04, foot_margin=(0.01, 0.05),
        occluder_prob=0.08, occluders=("box",), occluder_colours=((84, 110, 66), (124, 124, 120)),
        jpeg_quality=92, priors=Priors(short_sleeves=0.7, shorts=0.3, skirt=0.1, hat=0.15, bag=0.35),
    ),
    "synth-b": DomainStyle(
        name="synth-b", index=1, cameras=8, views=(0.25, 0.25, 0.5),
        walls=((70, 80, 96), (92, 96, 102), (62, 74, 62), (104, 104, 114)),
        grounds=((86, 86, 92), (70, 72, 76), (150, 152, 158)),
        texture="foliage", texture_strength=0.35, horizon=(0.3, 0.5), gain=0.85,
        cast=(0.9, 0.98, 1.12), saturation=0.8, camera_jitter=0.08, noise=4.0, downscale=1.5,
        blur=0.9, person_height=(0.78, 0.92), shift=0.06, foot_margin=(0.0, 0.08),
        occluder_prob=0.3, occluders=("car", "car", "pole"),
        occluder_colours=((40, 40, 46), (150, 22, 28), (190, 190, 196), (30, 50, 92)),
        jpeg_quality=85, priors=Priors(short_sleeves=0.15, shorts=0.05, skirt=0.08, hat=0.45, bag=0.5),
    ),
    "synth-c": DomainStyle(
        name="synth-c", index=2, cameras=4, views=(0.6, 0.25, 0.15),
        walls=((170, 120, 70), (150, 130, 100), (190, 160, 110), (120, 90, 60)),
        grounds=((110, 80, 50), (140, 120, 90), (90, 70, 50)),
        texture="panels", texture_strength=0.25, horizon=(0.55, 0.75), gain=0.95,
        cast=(1.12, 0.98, 0.78), saturation=1.0, camera_jitter=0.12, noise=6.0, downscale=2.6,
        blur=0.5, person_height=(0.8, 1.04), shift=0.1, foot_margin=(-0.06, 0.04),
        occluder_prob=0.2, occluders=("pole", "box"), occluder_colours=((60, 60, 60), (200, 200, 200), (140, 100, 60)),
        jpeg_quality=75, priors=Priors(short_sleeves=0.4, shorts=0.15, skirt=0.15, hat=0.1, bag=0.25),
    ),
}


def make_cameras(style: DomainStyle, rng: np.random.Generator) -> tuple[CameraScene, ...]:
    """The fixed scene of each camera of a domain (colours, horizon, colour response)."""
    cams = []
    for _ in range(style.cameras):
        wall = np.asarray(style.walls[int(rng.integers(len(style.walls)))], float) * rng.uniform(0.9, 1.1, 3)
        ground = np.asarray(style.grounds[int(rng.integers(len(style.grounds)))], float) * rng.uniform(0.9, 1.1, 3)
        cast = np.asarray(style.cast) * (1 + rng.normal(0, style.camera_jitter, 3))
        cams.append(CameraScene(
            wall=tuple(np.round(wall, 2).tolist()), ground=tuple(np.round(ground, 2).tolist()),
            horizon=round(float(rng.uniform(*style.horizon)), 4),
            gain=round(float(1 + rng.normal(0, style.camera_jitter)), 4),
            cast=tuple(np.round(cast, 4).tolist()),
        ))
    return tuple(cams)


def _smooth_noise(rng: np.random.Generator, h: int, w: int, cell: int) -> np.ndarray:
    """Low-frequency noise in 0..1, ``[H, W]`` float32: random cells upsampled bicubically."""
    small = rng.random((h // cell + 2, w // cell + 2), dtype=np.float32)
    return np.asarray(Image.fromarray(small, "F").resize((w, h), Image.BICUBIC), np.float32)


def draw_background(style: DomainStyle, cam: CameraScene, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """The scene behind the person: ``[H, W, 3]`` float32 sRGB in 0..255 (before illumination)."""
    ys = np.arange(h, dtype=np.float32)[:, None]
    xs = np.arange(w, dtype=np.float32)[None, :]
    horizon = (cam.horizon + rng.normal(0, 0.02)) * h
    floor = np.clip((ys - horizon) / (0.03 * h) + 0.5, 0, 1)  # [H, 1] 0 on the wall, 1 on the floor
    wall = np.asarray(cam.wall, np.float32) * rng.uniform(0.93, 1.07, 3).astype(np.float32)
    ground = np.asarray(cam.ground, np.float32) * rng.uniform(0.93, 1.07, 3).astype(np.float32)
    light = 1.08 - 0.16 * ys / h  # brighter at the top
    img = (wall * (1 - floor)[..., None] + ground * floor[..., None]) * light[..., None]
    img = np.broadcast_to(img, (h, w, 3)).copy()
    s = style.texture_strength
    for _ in range(int(rng.integers(1, 4))):  # windows, doors, signs on the wall
        x0, x1 = sorted(rng.uniform(-0.2, 1.2, 2) * w)
        y0 = rng.uniform(0.0, 0.5) * horizon
        y1 = y0 + rng.uniform(0.2, 0.6) * (horizon - y0)
        tint = rng.uniform(0.7, 1.25) * rng.uniform(0.93, 1.07, 3)
        img[int(max(y0, 0)):int(max(y1, 0)), int(max(x0, 0)):int(max(x1, 0))] *= tint.astype(np.float32)
    if style.texture == "tiles":  # paving lines that widen towards the camera
        depth = np.sqrt(np.maximum(ys - horizon, 0) / h)
        lines = (np.mod(depth * 9 + rng.random(), 1.0) < 0.08) | (np.mod(xs / (0.3 * w) + rng.random() + 2 * depth, 1.0) < 0.04)
        img[np.broadcast_to(lines & (ys > horizon), (h, w))] *= 1 - s * 2
    elif style.texture == "foliage":  # dark blotchy trees on the wall part
        blot = _smooth_noise(rng, h, w, max(4, h // 24)) > 0.55
        img[blot & (ys < horizon)] *= np.asarray((0.6, 0.8, 0.55), np.float32) * (1 - s) + s * 0.3
    elif style.texture == "panels":  # wall panels and a lamp
        period = rng.uniform(0.25, 0.45) * w
        seams = (np.mod(xs + rng.random() * period, period) < max(1.0, 0.03 * w)) & (ys < horizon)
        img[np.broadcast_to(seams, (h, w))] *= 1 - s * 1.5
        lx, ly = rng.uniform(0, w), rng.uniform(0, 0.4 * h)
        lamp = np.exp(-((xs - lx) ** 2 + (ys - ly) ** 2) / (2 * (0.4 * w) ** 2))
        img *= (1 + s * 1.6 * lamp)[..., None]
    elif style.texture == "bricks":  # brick courses on the wall, every other row offset by half a brick
        course = max(2.0, float(rng.uniform(0.03, 0.06)) * h)
        brick = 2.2 * course
        offset = np.mod(np.floor(ys / course), 2) * brick / 2 + rng.random() * brick
        mortar = (np.mod(ys, course) < max(1.0, 0.2 * course)) | (np.mod(xs + offset, brick) < max(1.0, 0.15 * course))
        img[mortar & (ys < horizon)] *= 1 - s * 1.5
    elif style.texture != "plain":  # plain: a bare wall and floor, only the shading below
        raise ValueError(f"{style.name}: unknown background texture {style.texture!r}")
    img *= (1 + s * (_smooth_noise(rng, h, w, max(4, h // 12)) - 0.5))[..., None]
    return img


def finish_image(img: np.ndarray, style: DomainStyle, cam: CameraScene, rng: np.random.Generator,
                 degrade: float = 1.0) -> Image.Image:
    """Camera response, noise, resolution loss and blur: ``[H, W, 3]`` float 0..255 -> RGB image.

    ``degrade`` scales the noise, the resolution loss and the blur of the domain (0 = clean).
    """
    h, w = img.shape[:2]
    gain = style.gain * cam.gain * (1 + rng.normal(0, 0.06))
    # colour cast and gain, then saturation around the channel mean: one 3x3 matrix
    sat = style.saturation * np.eye(3) + (1 - style.saturation) / 3
    img = img @ (np.diag(np.asarray(cam.cast) * gain) @ sat).astype(np.float32)
    if style.noise * degrade > 0:
        img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(style.noise * degrade)
    out = Image.fromarray(np.clip(img + 0.5, 0, 255).astype(np.uint8), "RGB")
    factor = 1 + (style.downscale - 1) * degrade
    if factor > 1.01:
        small = (max(1, round(w / factor)), max(1, round(h / factor)))
        out = out.resize(small, Image.BILINEAR).resize((w, h), Image.BICUBIC)
    radius = style.blur * degrade * h / 256
    if radius > 0.05:
        out = out.filter(ImageFilter.GaussianBlur(radius))
    return out
