"""The ``pose`` backend: part boxes from mediapipe's bundled 33-keypoint pose model, plus its person mask.

mediapipe 0.10.14 is the last wheel that ships its models (``pose_landmark_full.tflite``,
``selfie_segmentation``), so it runs offline; the legacy ``mp.solutions.pose`` API is used with
``static_image_mode=True`` and ``model_complexity=1``. A keypoint counts when its visibility is at
least ``min_visibility``. Rules, in crop pixels (BlazePose indices: 0-10 face, 7/8 ears, 11/12
shoulders, 13-22 arms and hands, 23/24 hips, 25/26 knees, 27-32 ankles, heels, toes):

======= ==============================================================================================
part    rule
======= ==============================================================================================
head    needs a face point and a shoulder. With ``fy`` the mean height of the face points and
        ``d`` their height above the shoulder line: from ``fy - d`` (hair) to ``fy + 0.55 d``
        (chin), half as wide as ``max(0.55 d, 0.65 x ear-to-ear)`` around the face points' mean x
upper   needs a shoulder and a hip: from ``0.1`` torso lengths above the shoulders down to the
        lower of hips and wrists; x over shoulders, arms and hips, padded by 0.1 shoulder width
legs    needs a hip and a knee or ankle: from the hips down to the lowest ankle / heel / toe plus
        3 % of the crop; with knees only, the shins are taken as long as the thighs (a crop cut
        at the knees); x over hips, knees and feet, padded by 0.1 hip-to-foot length
======= ==============================================================================================

What it cannot do: it finds one person per crop (a second person in the crop can take the
pose), and keypoints of occluded or low-resolution limbs come with low visibility, which turns
the part into a ``fallback``. Outputs come from TFLite on the CPU: identical run to run on one
machine, but they may differ in the last digits between CPUs.

Install (kept out of ``[dev]``, see pyproject's ``pose`` extra): ``pip install -e '.[pose]'``
then ``pip install --no-deps mediapipe==0.10.14``.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
from PIL import Image

from ...data.types import PARTS, Item
from ...geometry.boxes import Box
from .backend import Answer, Backend
from .cascade import rule_answers

__all__ = ["POSE_INSTALL_HINT", "PoseCfg", "PoseResult", "PoseBackend", "pose_missing", "boxes_from_keypoints",
           "coarse_parsing", "COARSE_CLASSES"]

POSE_INSTALL_HINT = ("the pose backend needs mediapipe 0.10.14 (the last wheel that bundles its pose and "
                     "segmentation models): pip install -e '.[pose]' && pip install --no-deps mediapipe==0.10.14 "
                     "(--no-deps: its metadata would add opencv-contrib-python, a second cv2 beside "
                     "opencv-python-headless, plus jax and sounddevice, none of which the pose model uses)")
#: classes of :func:`coarse_parsing`
COARSE_CLASSES: tuple[str, ...] = ("background", "head", "upper", "legs")

_FACE, _EARS, _SHOULDERS, _HIPS = tuple(range(11)), (7, 8), (11, 12), (23, 24)
_ARMS, _KNEES, _FEET = tuple(range(13, 23)), (25, 26), tuple(range(27, 33))


def pose_missing() -> str | None:
    """``None`` when mediapipe's pose solution imports here, else why not and what to install."""
    try:
        from mediapipe.python.solutions import pose  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - ImportError, or protobuf / numpy ABI errors at import
        return f"{POSE_INSTALL_HINT} [{type(exc).__name__}: {exc}]"
    return None


@dataclass(frozen=True)
class PoseCfg:
    """Model choice and thresholds (see the module docstring)."""

    model_complexity: int = 1  # the only pose landmark model bundled in the 0.10.14 wheel is "full" (1)
    min_detection_confidence: float = 0.5
    min_visibility: float = 0.5
    mask_threshold: float = 0.5


@dataclass(frozen=True)
class PoseResult:
    """One crop: ``keypoints [33, 3]`` (x, y in crop pixels, visibility) or ``None`` when no person
    was found, and the person mask ``bool [H, W]`` (``None`` likewise)."""

    keypoints: np.ndarray | None
    mask: np.ndarray | None


def _visible(kp: np.ndarray, idx: Sequence[int], vmin: float) -> np.ndarray:
    rows = kp[list(idx)]
    return rows[rows[:, 2] >= vmin, :2]


def boxes_from_keypoints(kp: np.ndarray | None, size_wh: tuple[int, int], min_visibility: float = 0.5
                         ) -> tuple[dict[str, Box | None], dict[str, str]]:
    """Part boxes (crop pixels) and a reason per part from ``kp [33, 3]`` (see the module docstring)."""
    if kp is None:
        return {p: None for p in PARTS}, {p: "no person found by the pose model" for p in PARTS}
    v = min_visibility
    face, ears, sh, hips = (_visible(kp, i, v) for i in (_FACE, _EARS, _SHOULDERS, _HIPS))
    arms, knees, feet = (_visible(kp, i, v) for i in (_ARMS, _KNEES, _FEET))
    boxes: dict[str, Box | None] = {p: None for p in PARTS}
    why: dict[str, str] = {}
    if len(face) and len(sh) and sh[:, 1].mean() > face[:, 1].mean():
        fx, fy = face[:, 0].mean(), face[:, 1].mean()
        d = sh[:, 1].mean() - fy
        half = max(0.55 * d, 0.65 * (abs(ears[0, 0] - ears[1, 0]) if len(ears) == 2 else 0.0))
        boxes["head"], why["head"] = (fx - half, fy - d, fx + half, fy + 0.55 * d), "face points + shoulders"
    else:
        why["head"] = "face points or shoulders not visible" if not (len(face) and len(sh)) else \
            "face points not above the shoulders"
    if len(sh) and len(hips) and hips[:, 1].max() > sh[:, 1].min():
        torso = hips[:, 1].mean() - sh[:, 1].mean()
        pts = np.concatenate([sh, arms, hips])
        pad = 0.1 * (np.ptp(sh[:, 0]) if len(sh) == 2 else torso / 2)
        bottom = max(hips[:, 1].max(), arms[:, 1].max() if len(arms) else 0.0)
        boxes["upper"] = (pts[:, 0].min() - pad, sh[:, 1].min() - 0.1 * torso, pts[:, 0].max() + pad, bottom)
        why["upper"] = "shoulders to hips"
    else:
        why["upper"] = "shoulders or hips not visible" if not (len(sh) and len(hips)) else "hips above the shoulders"
    lower = feet if len(feet) else knees
    if len(hips) and len(lower) and lower[:, 1].max() > hips[:, 1].min():
        top = hips[:, 1].min()
        if len(feet):
            bottom, rule = feet[:, 1].max() + 0.03 * size_wh[1], "hips to ankles"
        else:
            bottom, rule = knees[:, 1].max() + (knees[:, 1].max() - hips[:, 1].mean()), "hips to knees, shins = thighs"
        pts = np.concatenate([hips, knees, feet])
        pad = 0.1 * (bottom - top)
        boxes["legs"], why["legs"] = (pts[:, 0].min() - pad, top, pts[:, 0].max() + pad, bottom), rule
    else:
        why["legs"] = "hips or knees / ankles not visible" if not (len(hips) and len(lower)) else \
            "knees / ankles above the hips"
    return {p: (None if b is None else tuple(float(c) for c in b)) for p, b in boxes.items()}, why  # type: ignore


def coarse_parsing(mask: np.ndarray, boxes: dict[str, Box | None]) -> np.ndarray:
    """pi-VL style coarse parsing ``uint8 [H, W]`` (indices into :data:`COARSE_CLASSES`): the person
    mask ``bool [H, W]`` cut into horizontal slabs at the part boundaries, i.e. halfway between the
    head's bottom and the upper body's top, and between the upper body's bottom and the legs' top
    (a missing box leaves its neighbour's edge as the boundary; no boxes at all: head / upper /
    legs at 1/6 and 1/2 of the height)."""
    h = mask.shape[0]

    def edge(part: str, k: int, default: float) -> float:
        b = boxes.get(part)
        return default if b is None else float(b[k])

    cut1 = (edge("head", 3, h / 6) + edge("upper", 1, edge("head", 3, h / 6))) / 2
    cut2 = (edge("upper", 3, h / 2) + edge("legs", 1, edge("upper", 3, h / 2))) / 2
    rows = np.arange(h, dtype=np.float64)[:, None] + 0.5
    part = np.where(rows < cut1, 1, np.where(rows < cut2, 2, 3)).astype(np.uint8)
    return np.where(mask, part, 0).astype(np.uint8)


class PoseBackend(Backend):
    """Part boxes from mediapipe's pose keypoints; :meth:`analyse` also returns the person mask."""

    name = "pose"
    batch_size = 16
    #: bump when the keypoint rules change: the store file name carries it, so old answers are not reused
    rules_version = 1

    @property
    def tag(self) -> str:
        return f"{self.name}-r{self.rules_version}"

    def __init__(self, cfg: PoseCfg = PoseCfg(), parts: Sequence[str] = PARTS) -> None:
        super().__init__(parts)
        self.cfg = cfg
        self._model: Any = None

    def describe(self) -> dict[str, Any]:
        import mediapipe

        return {**super().describe(), "mediapipe": mediapipe.__version__, "cfg": dict(self.cfg.__dict__)}

    def _pose(self) -> Any:
        if self._model is None:
            missing = pose_missing()
            if missing:
                raise ImportError(missing)
            from mediapipe.python.solutions import pose as mp_pose

            self._model = mp_pose.Pose(static_image_mode=True, model_complexity=self.cfg.model_complexity,
                                       enable_segmentation=True,
                                       min_detection_confidence=self.cfg.min_detection_confidence)
        return self._model

    def analyse(self, image: Image.Image) -> PoseResult:
        """Keypoints and person mask of one crop."""
        rgb = np.ascontiguousarray(np.asarray(image.convert("RGB")))
        h, w = rgb.shape[:2]
        with warnings.catch_warnings():  # protobuf 4.25 deprecation inside mediapipe's packet getter
            warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated",
                                    category=UserWarning)
            res = self._pose().process(rgb)
        if res.pose_landmarks is None:
            return PoseResult(None, None)
        kp = np.array([[lm.x * w, lm.y * h, lm.visibility] for lm in res.pose_landmarks.landmark], dtype=np.float64)
        mask = None if res.segmentation_mask is None else np.asarray(res.segmentation_mask) >= self.cfg.mask_threshold
        return PoseResult(kp, mask)

    def ground(self, images: Sequence[Image.Image], items: Sequence[Item]) -> list[dict[str, Answer]]:
        out = []
        for im in images:
            kp = self.analyse(im).keypoints
            boxes, why = boxes_from_keypoints(kp, im.size, self.cfg.min_visibility)
            raw = "no pose" if kp is None else json.dumps(np.round(kp, 2).tolist())
            out.append(rule_answers(boxes, why, raw, im.size, self.parts))
        return out

    def close(self) -> None:
        """Release the mediapipe graph."""
        if self._model is not None:
            self._model.close()
            self._model = None
