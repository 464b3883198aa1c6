"""The ``synthetic`` backend: the synthetic benchmark's true part boxes, corrupted by a noise model.

The noise model reproduces the VGE failure modes of the paper (Fig. 5): a box covering the whole
person (the spurious peak of leg heights near the full height), over-split boxes (a slice of
the part: the tail of tiny heights), missing parts, two parts swapped, unparseable answers,
plus coordinate jitter. Answers are written as CogVLM text (``[[x0,y0,x1,y1]]``, 0-1000) and
go through the same parser as a real model's. Noise is drawn from a generator seeded by
``(seed, key)``: the same image always gets the same answer, whatever the batching or resume.

Every rate is a config field (``vge.noise_<rate>``, :data:`NOISE_RATES`), so robustness can be
swept without editing code. ``vge.noise`` names the preset that fills every rate; a rate field
set explicitly replaces that rate of the preset (one value: every part; three: head, upper,
legs), e.g. ``vge.noise=none vge.noise_missing=0.3`` gives refusals only. A backend whose rates
differ from its preset's writes a store of its own (tag ``synthetic-<preset>-r<hash>``), so
answers of different rates never mix.
"""
from __future__ import annotations

import hashlib
import json
import math
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from ...data.types import PARTS, Item
from ...geometry.boxes import Box, box_union
from ..answers import parse_answer
from .backend import Answer, Backend

__all__ = ["NoiseModel", "NOISE_PRESETS", "NOISE_RATES", "get_noise", "noise_model", "corrupt", "cogvlm_text", "domain_root",
           "gt_boxes", "SyntheticBackend"]

_REFUSALS = ("I'm sorry, I cannot find that in the image.", "There is no such region in the image.",
             "The person is not fully visible.")
_GARBAGE = ("[[12,34", "the legs of the person", "[[nan,nan,nan,nan]]", "[[620,700,380,510]]",
            "[[400,400,400,900]]", "[[100,200,1900,2500]]", "<box></box>", "\u00bf?\ufffd 00 1")


@dataclass(frozen=True)
class NoiseModel:
    """Failure rates of a simulated VGE (per image and part unless noted; fractions in 0..1)."""

    jitter: float = 0.0  # std of each coordinate, as a fraction of the box side
    oversize: Mapping[str, float] = field(default_factory=dict)  # box = the whole person
    oversplit: Mapping[str, float] = field(default_factory=dict)  # a 15-45 % slice of the part
    missing: Mapping[str, float] = field(default_factory=dict)  # a refusal, no box
    garbage: float = 0.0  # unparseable / invalid text (truncated, NaN, swapped corners, ...)
    swap: float = 0.0  # per image: two adjacent parts exchange their boxes

    def scaled(self, factor: float) -> "NoiseModel":
        """The same model with every rate multiplied by ``factor`` (capped at 1)."""
        def s(d: Mapping[str, float]) -> dict[str, float]:
            return {k: min(1.0, v * factor) for k, v in d.items()}
        return replace(self, oversize=s(self.oversize), oversplit=s(self.oversplit), missing=s(self.missing),
                       garbage=min(1.0, self.garbage * factor), swap=min(1.0, self.swap * factor))


_PAPER = NoiseModel(
    jitter=0.04,
    oversize={"head": 0.03, "upper": 0.05, "legs": 0.14},
    oversplit={"head": 0.02, "upper": 0.04, "legs": 0.12},
    missing={"head": 0.04, "upper": 0.02, "legs": 0.05},
    garbage=0.01,
    swap=0.02,
)
#: ``none``: the truth as CogVLM text; ``paper``: rates chosen to give Fig. 5a's picture
#: (about a quarter of leg boxes bad); ``heavy``: twice the ``paper`` rates.
NOISE_PRESETS: dict[str, NoiseModel] = {"none": NoiseModel(), "paper": _PAPER, "heavy": _PAPER.scaled(2.0)}


#: rate name (``vge.noise_<name>``) -> ``"part"`` (one value per part) or ``"one"`` (a single value)
NOISE_RATES: dict[str, str] = {"jitter": "one", "oversize": "part", "oversplit": "part", "missing": "part",
                               "garbage": "one", "swap": "one"}


def get_noise(name: str) -> NoiseModel:
    try:
        return NOISE_PRESETS[name]
    except KeyError:
        raise ValueError(f"vge.noise: unknown noise preset {name!r}; known: {', '.join(NOISE_PRESETS)}") from None


def noise_model(preset: str = "paper", rates: Mapping[str, Sequence[float]] | None = None,
                parts: Sequence[str] = PARTS) -> NoiseModel:
    """The preset's :class:`NoiseModel` with the given rates replaced (see the module docstring).

    ``rates[name]``: ``()`` keeps the preset's rate; one value sets it (for every part); for a
    per-part rate, ``len(parts)`` values set each part. Raises ``ValueError`` naming the
    ``vge.noise_<name>`` key, the value and what is allowed.
    """
    model = get_noise(preset)
    changes: dict[str, Any] = {}
    for name, values in (rates or {}).items():
        key = f"vge.noise_{name}"
        if name not in NOISE_RATES:
            raise ValueError(f"{key}: unknown failure rate; known: {', '.join(NOISE_RATES)}")
        vals = [float(v) for v in (values if isinstance(values, (list, tuple)) else [values])]
        if not vals:
            continue
        allowed = (1,) if NOISE_RATES[name] == "one" else (1, len(parts))
        if len(vals) not in allowed:
            raise ValueError(f"{key}={vals}: expected {' or '.join(map(str, allowed))} value(s)"
                             + ("" if NOISE_RATES[name] == "one" else f" (every part, or {', '.join(parts)})"))
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in vals):
            raise ValueError(f"{key}={vals}: every rate must be a finite number in [0, 1]")
        if NOISE_RATES[name] == "one":
            changes[name] = vals[0]
        else:
            changes[name] = {p: vals[0] if len(vals) == 1 else vals[i] for i, p in enumerate(parts)}
    return replace(model, **changes)


def cogvlm_text(box: Box, size_wh: tuple[int, int]) -> str:
    """A pixel box as CogVLM writes it: ``[[x0,y0,x1,y1]]`` in thousandths, three digits."""
    w, h = size_wh
    v = [box[0] / w, box[1] / h, box[2] / w, box[3] / h]
    return "[[" + ",".join(f"{int(round(min(max(x, 0.0), 1.0) * 1000)):03d}" for x in v) + "]]"


def _clip(box: Box, size_wh: tuple[int, int]) -> Box:
    w, h = size_wh
    x0, y0 = min(max(box[0], 0.0), w - 1.0), min(max(box[1], 0.0), h - 1.0)
    return (x0, y0, min(max(box[2], x0 + 1.0), float(w)), min(max(box[3], y0 + 1.0), float(h)))


def corrupt(truth: Mapping[str, Box | None], size_wh: tuple[int, int], noise: NoiseModel,
            rng: np.random.Generator, parts: Sequence[str] = PARTS) -> dict[str, tuple[str, str]]:
    """Simulated answers for one image: ``{part: (answer text, what was done)}``.

    ``what`` is ``"true"``, ``"oversize"``, ``"oversplit"``, ``"missing"``, ``"garbage"`` or
    ``"swap"`` (the ground truth of the failure, for tests and the notebooks). Draws a fixed
    number of values per part so one rate does not shift the others' draws.
    """
    w, h = size_wh
    boxes: dict[str, Box | None] = {p: truth.get(p) for p in parts}
    kinds = {p: "true" for p in parts}
    visible = [b for b in boxes.values() if b is not None]
    person = box_union(visible) if visible else (0.0, 0.0, float(w), float(h))
    swap_draw, swap_pick = rng.random(2)
    for p in parts:
        u = rng.random(5)
        b = boxes[p]
        if b is None:
            continue
        if u[0] < noise.oversize.get(p, 0.0):
            m = 0.03 * (u[4] - 0.5)
            b, kinds[p] = (person[0] - m * w, person[1] - 0.02 * h * u[4], person[2] + m * w,
                           person[3] + 0.02 * h * u[4]), "oversize"
        elif u[1] < noise.oversplit.get(p, 0.0):
            frac = 0.15 + 0.3 * u[3]
            bh = (b[3] - b[1]) * frac
            y0 = b[1] if u[4] < 0.5 else b[3] - bh
            b, kinds[p] = (b[0], y0, b[2], y0 + bh), "oversplit"
        boxes[p] = b
        if noise.jitter > 0:
            e = rng.normal(0.0, noise.jitter, 4)
            bw, bh = b[2] - b[0], b[3] - b[1]
            boxes[p] = _clip((b[0] + e[0] * bw, b[1] + e[1] * bh, b[2] + e[2] * bw, b[3] + e[3] * bh), size_wh)
        else:
            boxes[p] = _clip(b, size_wh)
        if u[2] < noise.missing.get(p, 0.0):
            kinds[p] = "missing"
    if swap_draw < noise.swap and len(parts) > 1:
        i = int(swap_pick * (len(parts) - 1))
        a, c = parts[i], parts[i + 1]
        if kinds[a] == kinds[c] == "true" and boxes[a] is not None and boxes[c] is not None:
            boxes[a], boxes[c] = boxes[c], boxes[a]
            kinds[a] = kinds[c] = "swap"
    out: dict[str, tuple[str, str]] = {}
    for p in parts:
        g = rng.random(2)
        if kinds[p] == "missing" or boxes[p] is None:
            out[p] = (_REFUSALS[int(g[1] * len(_REFUSALS))], "missing")
        elif g[0] < noise.garbage:
            out[p] = (_GARBAGE[int(g[1] * len(_GARBAGE))], "garbage")
        else:
            out[p] = (cogvlm_text(boxes[p], size_wh), kinds[p])  # type: ignore[arg-type]
    return out


def domain_root(item: Item) -> Path:
    """The dataset folder an item's ``relpath`` is relative to."""
    depth = len(Path(item.relpath).parts)
    return Path(item.path).parents[depth - 1]


def gt_boxes(items: Sequence[Item]) -> dict[str, dict[str, Box | None]]:
    """True part boxes (pixels) of synthetic items, keyed by ``dataset/relpath``.

    Raises ``FileNotFoundError`` naming the file when a domain has no ``gt/parts.jsonl``.
    """
    from ...data.synthetic import load_gt

    cache: dict[Path, dict[str, Any]] = {}
    out: dict[str, dict[str, Box | None]] = {}
    for it in items:
        root = domain_root(it)
        if root not in cache:
            if not (root / "gt" / "parts.jsonl").is_file():
                raise FileNotFoundError(f"{it.dataset}: no ground truth at {root / 'gt' / 'parts.jsonl'}: the "
                                        "synthetic backend and IoU evaluation need a synthetic domain")
            cache[root] = load_gt(root)
        rec = cache[root].get(it.relpath)
        if rec is None:
            raise KeyError(f"{it.key}: not in {root / 'gt' / 'parts.jsonl'}")
        out[it.key] = {p: (None if rec.boxes.get(p) is None else tuple(map(float, rec.boxes[p])))
                       for p in PARTS}
    return out


class SyntheticBackend(Backend):
    """Ground truth of the synthetic benchmark through a :class:`NoiseModel` (``noise`` preset name)."""

    name = "synthetic"
    batch_size = 256

    def __init__(self, noise: str = "paper", seed: int = 0, parts: Sequence[str] = PARTS,
                 tolerance: float = 0.02, rates: Mapping[str, Sequence[float]] | None = None) -> None:
        super().__init__(parts)
        self.noise_name = noise
        self.noise = noise_model(noise, rates, self.parts)
        self.seed = int(seed)
        self.tolerance = tolerance

    @property
    def tag(self) -> str:
        """``synthetic-<preset>[-s<seed>]``, plus ``-r<hash of the rates>`` when they differ from the preset's."""
        tag = f"synthetic-{self.noise_name}" + (f"-s{self.seed}" if self.seed else "")
        if self.noise != get_noise(self.noise_name):
            blob = json.dumps(asdict(self.noise), sort_keys=True).encode()
            tag += f"-r{hashlib.sha256(blob).hexdigest()[:8]}"
        return tag

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "noise": self.noise_name, "seed": self.seed, "rates": asdict(self.noise)}

    def rng(self, key: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(key.encode("utf-8"))])

    def simulate(self, item: Item, truth: Mapping[str, Box | None], size_wh: tuple[int, int]
                 ) -> dict[str, tuple[str, str]]:
        """``{part: (text, failure kind)}`` for one image (deterministic in ``seed`` and the key)."""
        return corrupt(truth, size_wh, self.noise, self.rng(item.key), self.parts)

    def answers(self, item: Item, truth: Mapping[str, Box | None], size_wh: tuple[int, int]) -> dict[str, Answer]:
        """One image's parsed answers (what :meth:`ground` stores), from its true boxes and size."""
        out: dict[str, Answer] = {}
        for p, (text, _kind) in self.simulate(item, truth, size_wh).items():
            parsed = parse_answer(text, size_wh, fmt="auto", tolerance=self.tolerance)
            out[p] = Answer(text, parsed.box, parsed.status, parsed.reason)
        return out

    def check(self, items: Sequence[Item]) -> None:
        """The synthetic backend answers from a synthetic domain's ground truth: a dataset without
        ``gt/parts.jsonl`` (real crops, a real dataset) is refused here, instead of storing a failure
        for every image and training on the prior boxes."""
        seen: set[Path] = set()
        for it in items:
            root = domain_root(it)
            if root in seen:
                continue
            seen.add(root)
            if not (root / "gt" / "parts.jsonl").is_file():
                raise ValueError(f"vge.backend=synthetic needs a synthetic domain's ground truth, and {it.dataset} has "
                                 f"none ({root / 'gt' / 'parts.jsonl'} is missing): ground it with a backend that looks "
                                 "at the images (vge.backend=pose, cascade, prior, mllm or detector)")

    def ground(self, images: Sequence[Image.Image], items: Sequence[Item]) -> list[dict[str, Answer]]:
        truth = gt_boxes(items)
        return [self.answers(it, truth[it.key], im.size) for im, it in zip(images, items)]
