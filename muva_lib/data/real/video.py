"""Finding OpenCV's sample video, reading its frames and detecting people with the HOG detector (deterministic)."""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import VTEST_INSTALL_HINT, DatasetError

__all__ = ["VIDEO_CANDIDATES", "INSTALL_HINT", "OPENCV_HINT", "HogCfg", "Detection", "VideoInfo", "find_video",
           "video_info", "iter_frames", "nms", "detect_people", "people_detector", "import_cv2", "box_iou_matrix",
           "colour_signature", "SIGNATURE_BINS", "detect_video"]

#: where Debian's ``opencv-doc`` package puts the clip (``dpkg -L opencv-doc | grep vtest``)
VIDEO_CANDIDATES: tuple[str, ...] = (
    "/usr/share/doc/opencv-doc/examples/data/vtest.avi",
    "/usr/share/opencv4/samples/data/vtest.avi",
)
INSTALL_HINT = VTEST_INSTALL_HINT
OPENCV_HINT = "OpenCV is missing: pip install 'opencv-python-headless>=4.8,<5' (the project's [real] extra)"


def import_cv2() -> Any:
    """``cv2``, or an ImportError that says what to install."""
    try:
        import cv2
    except ImportError as exc:
        raise ImportError(f"{OPENCV_HINT} ({exc})") from None
    return cv2


def find_video(path: str | Path | None = None) -> Path:
    """The video to read: ``path`` if given, else ``$MUVA_VTEST``, else the Debian package's copy.

    Raises :class:`DatasetError` with the exact install instruction when none exists.
    """
    if path is not None:
        p = Path(path).expanduser()
        if not p.is_file():
            raise DatasetError(f"video not found: {p}; {INSTALL_HINT}")
        return p
    env = os.environ.get("MUVA_VTEST", "").strip()
    for cand in ([env] if env else []) + list(VIDEO_CANDIDATES):
        if Path(cand).is_file():
            return Path(cand)
    raise DatasetError(f"OpenCV's pedestrian clip vtest.avi was not found; {INSTALL_HINT}")


@dataclass(frozen=True)
class VideoInfo:
    """What identifies a video: file name, size, SHA-256, and OpenCV's frame count, rate and size."""

    name: str
    bytes: int
    sha256: str
    frames: int
    fps: float
    width: int
    height: int


def video_info(path: str | Path) -> VideoInfo:
    path = Path(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    cv2 = import_cv2()
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise DatasetError(f"{path}: OpenCV cannot open this video")
        return VideoInfo(path.name, bytes=path.stat().st_size, sha256=digest,
                         frames=int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), fps=round(float(cap.get(cv2.CAP_PROP_FPS)), 3),
                         width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    finally:
        cap.release()


def iter_frames(path: str | Path, max_frames: int | None = None, step: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """``(frame index, BGR uint8 [H, W, 3])`` for every ``step``-th frame among the first ``max_frames``.

    Frames are decoded in order (no seeking, which is inexact for some codecs), by one decoder
    thread where the FFmpeg back-end allows it.
    """
    cv2 = import_cv2()
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, 1])  # one decoder thread
    if not cap.isOpened():
        cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise DatasetError(f"{path}: OpenCV cannot open this video")
    try:
        index = 0
        while max_frames is None or index < max_frames:
            ok, frame = cap.read()
            if not ok:
                break
            if index % step == 0:
                yield index, frame
            index += 1
    finally:
        cap.release()


@dataclass(frozen=True)
class HogCfg:
    """HOG people detection, then non-maximum suppression (defaults tuned on ``vtest.avi``).

    ``scale``: pyramid factor (1.1 builds half the levels of OpenCV's 1.05 and still finds the 130 to
    200 pixel tall walkers); ``win_stride`` / ``padding`` in pixels; raw windows (no OpenCV
    grouping) scoring below ``min_score`` (the SVM margin) are dropped; NMS keeps the best window
    of every group overlapping by more than ``nms_iou``; boxes are clipped to the frame and kept
    when at least ``min_inside`` of their area was inside and they are ``min_height`` pixels tall.
    """

    scale: float = 1.1
    win_stride: int = 8
    padding: int = 8
    min_score: float = 0.6
    nms_iou: float = 0.3
    min_inside: float = 0.85
    min_height: int = 120


@dataclass(frozen=True)
class Detection:
    """One person box in frame pixels ``(x0, y0, x1, y1)`` (integers, x1/y1 exclusive), its SVM
    score and, when asked for, its colour signature (:func:`colour_signature`)."""

    box: tuple[int, int, int, int]
    score: float
    signature: np.ndarray | None = field(default=None, compare=False, repr=False)


#: hue x saturation bins of coloured pixels, and value levels of grey / dark ones (:func:`colour_signature`)
SIGNATURE_BINS = (12, 3, 4)


def _hsv_histogram(hsv: np.ndarray) -> np.ndarray:
    """Histogram of HSV pixels ``[N, 3]`` (OpenCV ranges) over :data:`SIGNATURE_BINS`, summing to 1."""
    hb, sb, vb = SIGNATURE_BINS
    h, s, v = hsv[:, 0], hsv[:, 1], hsv[:, 2]
    coloured = (s >= 50) & (v >= 50)
    idx = np.where(coloured, (h * hb // 180) * sb + np.minimum((s - 50) * sb // 206, sb - 1),
                   hb * sb + np.minimum(v * vb // 256, vb - 1))
    hist = np.bincount(idx, minlength=hb * sb + vb).astype(np.float64)
    return hist / max(hist.sum(), 1.0)


def colour_signature(frame: np.ndarray, box: Sequence[int]) -> np.ndarray:
    """Colour signature of a person box: the histograms (:func:`_hsv_histogram`) of the upper and the
    lower half of its centre (middle half of the width, 10 % to 90 % of the height: mostly the
    person, little background), concatenated and halved so the whole sums to 1."""
    cv2 = import_cv2()
    x0, y0, x1, y1 = (int(v) for v in box)
    w, h = x1 - x0, y1 - y0
    patch = cv2.cvtColor(frame[y0 + h // 10:y1 - h // 10, x0 + w // 4:x1 - w // 4], cv2.COLOR_BGR2HSV)
    mid = patch.shape[0] // 2
    halves = [patch[:mid].reshape(-1, 3).astype(np.int64), patch[mid:].reshape(-1, 3).astype(np.int64)]
    return np.concatenate([_hsv_histogram(x) for x in halves]) / 2


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU ``[len(a), len(b)]`` of boxes ``[N, 4]`` and ``[M, 4]`` (x0, y0, x1, y1)."""
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression, best first.

    ``boxes [N, 4]`` (x0, y0, x1, y1), ``scores [N]``. Ties in score are broken by the box
    coordinates, so the result does not depend on the input order.
    """
    if len(boxes) == 0:
        return []
    boxes = np.asarray(boxes, dtype=np.float64)
    order = sorted(range(len(boxes)), key=lambda i: (-float(scores[i]), *boxes[i].tolist()))
    overlaps = _iou_matrix(boxes, boxes)
    keep: list[int] = []
    for i in order:
        if all(overlaps[i, j] <= iou for j in keep):
            keep.append(i)
    return keep


def people_detector() -> Any:
    """OpenCV's HOG descriptor with its built-in people SVM (Dalal and Triggs, 64 x 128 window)."""
    cv2 = import_cv2()
    hog = cv2.HOGDescriptor()
    hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
    return hog


def detect_people(frame: np.ndarray, cfg: HogCfg = HogCfg(), hog: Any = None, signatures: bool = False
                  ) -> list[Detection]:
    """People in one BGR frame ``[H, W, 3]``, best first (same boxes whatever OpenCV's thread count:
    raw windows are sorted before the suppression); ``signatures`` adds each box's colour signature."""
    hog = hog if hog is not None else people_detector()
    rects, weights = hog.detectMultiScale(frame, hitThreshold=0.0, winStride=(cfg.win_stride,) * 2,
                                          padding=(cfg.padding,) * 2, scale=cfg.scale, groupThreshold=0)
    if len(rects) == 0:
        return []
    rects = np.asarray(rects, dtype=np.int64).reshape(-1, 4)
    scores = np.round(np.asarray(weights, dtype=np.float64).reshape(-1), 6)
    boxes = np.stack([rects[:, 0], rects[:, 1], rects[:, 0] + rects[:, 2], rects[:, 1] + rects[:, 3]], axis=1)
    good = scores >= cfg.min_score
    boxes, scores = boxes[good], scores[good]
    h, w = frame.shape[:2]
    out: list[Detection] = []
    for i in nms(boxes, scores, cfg.nms_iou):
        x0, y0, x1, y1 = (int(v) for v in boxes[i])
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        inside = max(cx1 - cx0, 0) * max(cy1 - cy0, 0) / max((x1 - x0) * (y1 - y0), 1)
        if inside >= cfg.min_inside and cy1 - cy0 >= cfg.min_height:
            box = (cx0, cy0, cx1, cy1)
            out.append(Detection(box, float(scores[i]), colour_signature(frame, box) if signatures else None))
    return out


def box_iou_matrix(a: Sequence[Sequence[float]], b: Sequence[Sequence[float]]) -> np.ndarray:
    """IoU ``[len(a), len(b)]`` of two lists of boxes (empty lists give an empty matrix)."""
    a_arr = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b_arr = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    return _iou_matrix(a_arr, b_arr)


def _detect_frame(cfg: HogCfg, job: tuple[int, np.ndarray]) -> tuple[int, list[Detection], list[np.ndarray]]:
    """One frame in a worker: its detections (with signatures) and their RGB crops, on one OpenCV thread."""
    cv2 = import_cv2()
    cv2.setNumThreads(1)
    index, frame = job
    dets = detect_people(frame, cfg, people_detector(), signatures=True)
    crops = [cv2.cvtColor(frame[d.box[1]:d.box[3], d.box[0]:d.box[2]], cv2.COLOR_BGR2RGB) for d in dets]
    return index, dets, crops


def detect_video(path: str | Path, cfg: HogCfg = HogCfg(), *, max_frames: int | None = None, step: int = 1,
                 workers: int = 2) -> Iterator[tuple[int, list[Detection], list[np.ndarray]]]:
    """``(frame index, detections, RGB crops [h, w, 3] of those detections)`` for every processed frame,
    in frame order.

    Frames are spread over ``workers`` spawned processes, each running OpenCV on one thread: the results
    do not depend on ``workers`` or on the machine's load (OpenCV's own multi-threaded HOG was
    seen to return one extra window in one of several identical runs on busy cores).
    """
    from functools import partial

    work = partial(_detect_frame, cfg)
    frames = iter_frames(path, max_frames, step)
    if workers <= 1:
        cv2 = import_cv2()
        before = cv2.getNumThreads()
        try:
            yield from map(work, frames)
        finally:
            cv2.setNumThreads(before)
        return
    import multiprocessing as mp

    # spawn, never fork: a forked child inherits OpenCV's (and torch's) thread pools with whatever
    # locks their threads held at the fork, and can hang on its first cv2 call (seen in CI after
    # other tests had run OpenCV multi-threaded in the parent). Spawning costs one interpreter start
    # per worker, paid once per video.
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers) as pool:
        yield from pool.imap(work, frames, chunksize=2)
