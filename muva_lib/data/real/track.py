"""Linking per-frame person boxes into tracklets by greedy IoU matching (pure, deterministic)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from .video import Detection, box_iou_matrix

__all__ = ["TrackCfg", "Tracklet", "link"]


@dataclass(frozen=True)
class TrackCfg:
    """IoU tracking thresholds (defaults for ``vtest.avi`` read every 2nd frame at 10 fps).

    A detection continues the track whose last box overlaps it most, if that IoU is at least
    ``iou_min``; a track not continued for more than ``max_gap`` processed frames ends. A finished
    track becomes a tracklet (a pseudo-identity) when it has at least ``min_len`` boxes and its box
    centre moved at least ``min_motion`` box heights overall (HOG fires on some static background
    structure; a person standing still for the whole clip is dropped too, which is rare here).
    When detections carry colour signatures, a match also needs a histogram intersection of at
    least ``min_similarity`` with the track's running signature (an exponential average with
    weight ``ema`` on the new box), and of at least ``min_anchor_similarity`` with the mean
    signature of its first ``anchor_len`` boxes: two walkers crossing then rarely swap tracks, and a
    box drifting from one person onto another in an occlusion ends the track instead.
    """

    iou_min: float = 0.3
    max_gap: int = 2
    min_len: int = 8
    min_motion: float = 0.5
    min_similarity: float = 0.5
    ema: float = 0.3
    min_anchor_similarity: float = 0.4
    anchor_len: int = 3


@dataclass
class Tracklet:
    """One track: processed frame indices and boxes (frame pixels), in time order."""

    frames: list[int] = field(default_factory=list)
    boxes: list[tuple[int, int, int, int]] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    signature: np.ndarray | None = field(default=None, repr=False)
    anchor: list[np.ndarray] = field(default_factory=list, repr=False)

    @property
    def start(self) -> int:
        return self.frames[0]

    @property
    def end(self) -> int:
        return self.frames[-1]

    def __len__(self) -> int:
        return len(self.frames)

    def motion(self) -> float:
        """Largest distance of a box centre from the first one, in median box heights."""
        b = np.asarray(self.boxes, dtype=np.float64)
        centres = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2], axis=1)
        height = float(np.median(b[:, 3] - b[:, 1]))
        return float(np.max(np.linalg.norm(centres - centres[0], axis=1)) / max(height, 1.0))


def _similarity(a: Sequence[np.ndarray | None], b: Sequence[np.ndarray | None]) -> np.ndarray:
    """Histogram intersection ``[len(a), len(b)]``; 1 where either side has no signature."""
    out = np.ones((len(a), len(b)))
    for i, x in enumerate(a):
        for j, y in enumerate(b):
            if x is not None and y is not None:
                out[i, j] = float(np.minimum(x, y).sum())
    return out


def link(frames: Sequence[tuple[int, Sequence[Detection]]], cfg: TrackCfg = TrackCfg(), step: int = 1
         ) -> tuple[list[Tracklet], dict[str, int]]:
    """Tracklets from ``[(frame index, detections)]`` in time order, sorted by (start, first box).

    Matching is greedy over all (track, detection) pairs by decreasing IoU, ties by track age
    then detection order, so it is deterministic. ``step`` is the spacing of processed frames
    (``max_gap`` counts processed frames). Also returns counts: tracks made, and those dropped
    as too short or static.
    """
    active: list[Tracklet] = []
    finished: list[Tracklet] = []
    for index, dets in frames:
        still = []
        for t in active:
            (still if index - t.end <= (cfg.max_gap + 1) * step else finished).append(t)
        active = still
        iou = box_iou_matrix([t.boxes[-1] for t in active], [d.box for d in dets])
        sim = _similarity([t.signature for t in active], [d.signature for d in dets])
        anchor = _similarity([np.mean(t.anchor, axis=0) if t.anchor else None for t in active],
                             [d.signature for d in dets])
        pairs = sorted(((-iou[i, j], i, j) for i in range(len(active)) for j in range(len(dets))
                        if iou[i, j] >= cfg.iou_min and sim[i, j] >= cfg.min_similarity
                        and anchor[i, j] >= cfg.min_anchor_similarity))
        used_t: set[int] = set()
        used_d: set[int] = set()
        for _, i, j in pairs:
            if i in used_t or j in used_d:
                continue
            used_t.add(i)
            used_d.add(j)
            active[i].frames.append(index)
            active[i].boxes.append(dets[j].box)
            active[i].scores.append(dets[j].score)
            if dets[j].signature is not None and active[i].signature is not None:
                active[i].signature = (1 - cfg.ema) * active[i].signature + cfg.ema * dets[j].signature
                if len(active[i].anchor) < cfg.anchor_len:
                    active[i].anchor.append(dets[j].signature)
        for j, d in enumerate(dets):
            if j not in used_d:
                active.append(Tracklet([index], [d.box], [d.score], d.signature,
                                       [] if d.signature is None else [d.signature]))
    finished += active
    short = [t for t in finished if len(t) < cfg.min_len]
    static = [t for t in finished if len(t) >= cfg.min_len and t.motion() < cfg.min_motion]
    kept = [t for t in finished if len(t) >= cfg.min_len and t.motion() >= cfg.min_motion]
    kept.sort(key=lambda t: (t.start, t.boxes[0]))
    return kept, {"tracks": len(finished), "too_short": len(short), "static": len(static), "kept": len(kept)}
