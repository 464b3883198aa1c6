"""The ``cascade`` backend: OpenCV's bundled Haar cascades (face, upper body, lower body, full body) per crop.

Each cascade runs on the histogram-equalised grey crop and its best window (highest level
weight) is kept; the part boxes then follow fixed rules, all in crop pixels:

======= =====================================================================================
part    rule (first that applies)
======= =====================================================================================
head    a frontal face in the top 40 % of the crop (searched at 2x, faces there are ~15 px):
        widened 1.4x and extended up by 0.45 and down by 0.1 of its height (hair, chin);
        else the top 45 % and middle half of the upper-body window (that cascade, Kruppa et
        al., finds head and shoulders)
upper   x of the upper-body window, from its shoulder line (55 % of its height) down to the
        hips: a fifth of the way down the lower-body window (it starts above the hips: on
        vtest crops its top sits that much above the pose model's hips), else 55 % down the
        full-body window
legs    the lower-body window from the hips down; else the lower half of the full-body window
======= =====================================================================================

A part whose rule has nothing to work on is a ``fallback`` answer (calibration then gives it
the band). What cascades cannot do: they see grey-level patterns only, miss most faces (back
views, 15 px faces), and fire on background texture; on HOG crops the upper- and lower-body
cascades still find most people. Results are deterministic for one OpenCV build.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

from ...data.types import PARTS, Item
from ...geometry.boxes import Box, box_iou
from .backend import Answer, Backend

__all__ = ["CASCADE_FILES", "CascadeCfg", "CascadeBackend", "cascade_windows", "boxes_from_windows",
           "rule_answers", "vertical_order", "agreement_rows"]

#: cascade name -> file in ``cv2.data.haarcascades`` (opencv-python(-headless) < 5 ships them)
CASCADE_FILES: dict[str, str] = {
    "face": "haarcascade_frontalface_default.xml",
    "upperbody": "haarcascade_upperbody.xml",
    "lowerbody": "haarcascade_lowerbody.xml",
    "fullbody": "haarcascade_fullbody.xml",
}


@dataclass(frozen=True)
class CascadeCfg:
    """Detection settings: pyramid factor, neighbours a window needs, minimum window sizes
    (W, H) in crop pixels for a 128 x 256 crop (scaled with the crop height)."""

    scale_factor: float = 1.05
    min_neighbors: int = 2
    face_region: float = 0.4
    min_face: tuple[int, int] = (10, 10)
    min_upperbody: tuple[int, int] = (48, 40)
    min_lowerbody: tuple[int, int] = (48, 60)
    min_fullbody: tuple[int, int] = (40, 110)


def rule_answers(boxes: Mapping[str, Box | None], reasons: Mapping[str, str], raw: str,
                 size_wh: tuple[int, int], parts: Sequence[str] = PARTS) -> dict[str, Answer]:
    """Answers of a rule-based backend: a part box clipped to the image is ``ok`` (reason = the
    rule used), a missing one a ``fallback`` with the reason."""
    w, h = size_wh
    out = {}
    for p in parts:
        b = boxes.get(p)
        if b is not None:
            b = (max(0.0, b[0]), max(0.0, b[1]), min(float(w), b[2]), min(float(h), b[3]))
        if b is None or b[2] - b[0] < 1 or b[3] - b[1] < 1:
            out[p] = Answer(raw, None, "fallback", reasons.get(p, "no box"))
        else:
            box = tuple(round(float(v), 2) for v in b)
            out[p] = Answer(raw, box, "ok", reasons.get(p, ""))  # type: ignore[arg-type]
    return out


def vertical_order(boxes: Mapping[str, Box | None], parts: Sequence[str] = PARTS) -> bool | None:
    """Whether the part centres go strictly downwards in ``parts`` order (an upright person);
    ``None`` when a part has no box."""
    if any(boxes.get(p) is None for p in parts):
        return None
    centres = [(boxes[p][1] + boxes[p][3]) / 2 for p in parts]  # type: ignore[index]
    return all(a < b for a, b in zip(centres, centres[1:]))


def _vertical_iou(a: Box, b: Box) -> float:
    inter = min(a[3], b[3]) - max(a[1], b[1])
    union = max(a[3], b[3]) - min(a[1], b[1])
    return max(inter, 0.0) / union if union > 0 else 0.0


def agreement_rows(a: Sequence[Mapping[str, Box | None]], b: Sequence[Mapping[str, Box | None]],
                   parts: Sequence[str] = PARTS, min_iou: float = 0.3) -> list[dict[str, Any]]:
    """How two box sources agree on the same images (``a[i]``, ``b[i]``: part boxes of image i), per
    part over the images where both have a box: ``both`` (count), ``IoU`` (mean box IoU),
    ``agree`` (share with IoU >= ``min_iou``), ``vertical IoU`` (mean overlap of the y-ranges,
    what the patch-grid masks mostly depend on)."""
    if len(a) != len(b):
        raise ValueError(f"agreement_rows: {len(a)} vs {len(b)} images")
    rows = []
    for p in parts:
        pairs = [(x[p], y[p]) for x, y in zip(a, b) if x.get(p) is not None and y.get(p) is not None]
        ious = np.array([box_iou(x, y) for x, y in pairs])
        vert = np.array([_vertical_iou(x, y) for x, y in pairs])  # type: ignore[arg-type]
        rows.append({"part": p, "both": len(pairs), "IoU": float(ious.mean()) if len(pairs) else float("nan"),
                     "agree": float((ious >= min_iou).mean()) if len(pairs) else float("nan"),
                     "vertical IoU": float(vert.mean()) if len(pairs) else float("nan")})
    return rows


def _load_cascades() -> dict[str, Any]:
    from ...data.real.video import import_cv2

    cv2 = import_cv2()
    folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
    out = {}
    for name, file in CASCADE_FILES.items():
        clf = cv2.CascadeClassifier(folder + file) if folder else None
        if clf is None or clf.empty():
            raise RuntimeError(f"OpenCV's Haar cascade {file} is missing (cv2.data.haarcascades={folder!r}); "
                               "opencv-python(-headless) 5.x no longer ships them: "
                               "pip install 'opencv-python-headless>=4.8,<5'")
        out[name] = clf
    return out


def cascade_windows(grey: np.ndarray, cascades: Mapping[str, Any], cfg: CascadeCfg = CascadeCfg()
                    ) -> dict[str, tuple[Box, float] | None]:
    """Best window ``(box in crop pixels, level weight)`` per cascade on an equalised grey crop ``[H, W]``."""
    import cv2

    h = grey.shape[0]
    k = h / 256
    out: dict[str, tuple[Box, float] | None] = {}
    for name, clf in cascades.items():
        img, zoom, min_wh = grey, 1.0, getattr(cfg, f"min_{name}")
        if name == "face":
            img, zoom = cv2.resize(grey[:int(cfg.face_region * h)], None, fx=2, fy=2,
                                   interpolation=cv2.INTER_LINEAR), 2.0
        min_size = (max(1, int(min_wh[0] * k * zoom)), max(1, int(min_wh[1] * k * zoom)))
        rects, _, weights = clf.detectMultiScale3(img, scaleFactor=cfg.scale_factor, minNeighbors=cfg.min_neighbors,
                                                  minSize=min_size, outputRejectLevels=True)
        if len(rects) == 0:
            out[name] = None
            continue
        rects = np.asarray(rects).reshape(-1, 4)
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        best = min(range(len(rects)), key=lambda i: (-round(float(weights[i]), 6), *rects[i].tolist()))
        x, y, w, hh = (float(v) / zoom for v in rects[best])
        out[name] = ((x, y, x + w, y + hh), round(float(weights[best]), 4))
    return out


def boxes_from_windows(win: Mapping[str, tuple[Box, float] | None]) -> tuple[dict[str, Box | None], dict[str, str]]:
    """Part boxes and the rule used per part (see the module docstring); ``None`` with the reason
    when no rule applies."""
    face, hs, low, full = (None if win.get(n) is None else win[n][0]  # type: ignore[index]
                           for n in ("face", "upperbody", "lowerbody", "fullbody"))
    boxes: dict[str, Box | None] = {}
    why: dict[str, str] = {}
    if face is not None:
        fx0, fy0, fx1, fy1 = face
        cx, fw, fh = (fx0 + fx1) / 2, fx1 - fx0, fy1 - fy0
        boxes["head"], why["head"] = (cx - 0.7 * fw, fy0 - 0.45 * fh, cx + 0.7 * fw, fy1 + 0.1 * fh), "face"
    elif hs is not None:
        x0, y0, x1, y1 = hs
        q = (x1 - x0) / 4
        boxes["head"], why["head"] = (x0 + q, y0, x1 - q, y0 + 0.45 * (y1 - y0)), "upperbody top"
    else:
        boxes["head"], why["head"] = None, "no face or upper-body window"
    hips = (low[1] + 0.2 * (low[3] - low[1]) if low is not None
            else full[1] + 0.55 * (full[3] - full[1]) if full is not None else None)
    if hs is not None and hips is not None and hips > hs[1] + 0.55 * (hs[3] - hs[1]):
        boxes["upper"] = (hs[0], hs[1] + 0.55 * (hs[3] - hs[1]), hs[2], hips)
        why["upper"] = "upperbody shoulders to " + ("lowerbody hips" if low is not None else "fullbody 55%")
    else:
        boxes["upper"] = None
        why["upper"] = ("no upper-body window" if hs is None
                        else "no hips (lower- or full-body window) below the shoulders")
    if low is not None:
        boxes["legs"], why["legs"] = (low[0], hips, low[2], low[3]), "lowerbody from the hips"
    elif full is not None:
        boxes["legs"], why["legs"] = (full[0], (full[1] + full[3]) / 2, full[2], full[3]), "fullbody lower half"
    else:
        boxes["legs"], why["legs"] = None, "no lower- or full-body window"
    return boxes, why


class CascadeBackend(Backend):
    """Part boxes from OpenCV's Haar cascades (no model download; ``opencv-python-headless<5``)."""

    name = "cascade"
    batch_size = 32
    #: bump when the part rules change: the store file name carries it, so old answers are not reused
    rules_version = 1

    @property
    def tag(self) -> str:
        return f"{self.name}-r{self.rules_version}"

    def __init__(self, cfg: CascadeCfg = CascadeCfg(), parts: Sequence[str] = PARTS) -> None:
        super().__init__(parts)
        self.cfg = cfg
        self._cascades: dict[str, Any] | None = None

    def describe(self) -> dict[str, Any]:
        import cv2

        return {**super().describe(), "cascades": CASCADE_FILES, "opencv": cv2.__version__,
                "cfg": json.loads(json.dumps(self.cfg.__dict__))}

    def ground(self, images: Sequence[Image.Image], items: Sequence[Item]) -> list[dict[str, Answer]]:
        import cv2

        if self._cascades is None:
            self._cascades = _load_cascades()
        out = []
        for im in images:
            grey = cv2.equalizeHist(np.asarray(im.convert("L")))
            win = cascade_windows(grey, self._cascades, self.cfg)
            boxes, why = boxes_from_windows(win)
            raw = json.dumps({n: None if v is None else {"box": [round(c, 1) for c in v[0]], "weight": v[1]}
                              for n, v in win.items()}, sort_keys=True)
            out.append(rule_answers(boxes, why, raw, im.size, self.parts))
        return out
