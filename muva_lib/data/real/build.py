"""Building a small real re-ID set from a fixed-camera video: detect, track, split, write (Market layout).

Labels are pseudo-labels: one tracklet = one identity. A person whose track broke gets two ids,
and a track that jumped from one walker to another in an occlusion mixes two people; the manifest
keeps frame, box and tracklet of every crop so such cases can be inspected.

Split (a function of the video and :class:`RealCfg` only):

* ``split frame`` S: among processed frames between 40 % and 60 % of the clip, the one crossed
  by the fewest tracklets (ties: nearest the middle, then earlier). Tracklets ending before S
  are training identities, those starting at or after S are test identities, and the few
  crossing S are dropped, so no tracklet is in both, and a person seen in both halves of the
  clip is there only if tracking lost them around S.
* pseudo-cameras: the first half of every tracklet's boxes is camera 1, the second half camera 2
  (time segments of one real camera, so the same-camera rule of Market-style evaluation removes
  the trivially close frames of the query's own segment).
* test tracklets: ``query_per_id`` queries spread over the first ``segment`` share of the boxes
  (camera 1), ``gallery_per_id`` gallery crops over the last ``segment`` share (camera 2); the
  middle is skipped, so a query and its true matches are never adjacent frames. One more
  gallery crop per identity comes from camera 1 between its queries (ignored for its own
  queries by the same-camera rule, a hard distractor for everyone else's).
* training tracklets: every ``train_stride``-th box.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

from ...paths import real_vtest_root
from ..errors import DatasetError
from ..types import Item
from .track import TrackCfg, Tracklet, link
from .video import HogCfg, detect_video, find_video, import_cv2, video_info

__all__ = ["BUILDER_VERSION", "SUBSET_DIRS", "RealCfg", "build_real_set", "split_frame", "plan_crops",
           "ensure_real_vtest", "real_vtest_missing", "read_manifest", "real_items", "summary_lines"]

#: bump whenever the same video and config would give different files
BUILDER_VERSION = 1
SUBSET_DIRS = {"train": "bounding_box_train", "query": "query", "gallery": "bounding_box_test"}


@dataclass(frozen=True)
class RealCfg:
    """Everything the set depends on besides the video (recorded in ``meta.json``)."""

    hog: HogCfg = field(default_factory=HogCfg)
    track: TrackCfg = field(default_factory=TrackCfg)
    step: int = 2  # process every step-th frame (vtest.avi: 10 fps, so 5 processed frames a second)
    max_frames: int | None = None  # read only the first max_frames frames (None: the whole clip)
    crop_wh: tuple[int, int] = (128, 256)  # written crop size (W, H), as the synthetic domains
    jpeg_quality: int = 92
    train_stride: int = 1
    segment: float = 0.4
    query_per_id: int = 2
    gallery_per_id: int = 4
    same_camera_gallery: int = 1

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))


def split_frame(tracklets: Sequence[Tracklet], frames: Sequence[int]) -> int:
    """The processed frame between 40 % and 60 % of ``frames`` crossed by the fewest tracklets
    (``start < S <= end``); ties: nearest the middle, then earlier."""
    if not frames:
        raise DatasetError("no frames were read from the video")
    lo, hi = frames[int(0.4 * (len(frames) - 1))], frames[int(0.6 * (len(frames) - 1))]
    mid = (frames[0] + frames[-1]) / 2
    cands = [f for f in frames if lo <= f <= hi]
    return min(cands, key=lambda f: (sum(t.start < f <= t.end for t in tracklets), abs(f - mid), f))


def _spread(indices: Sequence[int], n: int) -> list[int]:
    """``n`` entries of ``indices`` evenly spread (all of them when fewer), first and last included."""
    if n <= 0 or not indices:
        return []
    if len(indices) <= n:
        return list(indices)
    return [indices[int(round(k * (len(indices) - 1) / max(n - 1, 1)))] for k in range(n)]


@dataclass(frozen=True)
class Crop:
    """One planned crop: subset, pid (1-based tracklet rank), camera (1 or 2), frame, box, score."""

    subset: str
    pid: int
    camera: int
    frame: int
    box: tuple[int, int, int, int]
    score: float

    @property
    def relpath(self) -> str:
        return f"{SUBSET_DIRS[self.subset]}/{self.pid:04d}_c{self.camera}_{self.frame:06d}_00.jpg"


def plan_crops(tracklets: Sequence[Tracklet], split: int, cfg: RealCfg) -> tuple[list[Crop], dict[str, int]]:
    """The crops to write (see the module docstring), sorted by relpath, and split counts."""
    crops: list[Crop] = []
    counts = {"train_tracklets": 0, "test_tracklets": 0, "crossing_dropped": 0}
    for pid, t in enumerate(tracklets, start=1):
        n = len(t)
        cam = [1 if k < n / 2 else 2 for k in range(n)]
        if t.end < split:
            counts["train_tracklets"] += 1
            picks = [("train", k) for k in range(0, n, cfg.train_stride)]
        elif t.start >= split:
            counts["test_tracklets"] += 1
            seg = max(1, int(cfg.segment * n))
            queries = _spread(list(range(seg)), cfg.query_per_id)
            between = [k for k in range(seg) if k not in queries]
            same = _spread(between[len(between) // 2:], cfg.same_camera_gallery)
            picks = ([("query", k) for k in queries] + [("gallery", k) for k in same]
                     + [("gallery", k) for k in _spread(list(range(n - seg, n)), cfg.gallery_per_id)])
        else:
            counts["crossing_dropped"] += 1
            continue
        crops += [Crop(sub, pid, camera=cam[k], frame=t.frames[k], box=t.boxes[k], score=t.scores[k])
                  for sub, k in picks]
    crops.sort(key=lambda c: c.relpath)
    return crops, counts


def _fingerprint(sha256: str, cfg: RealCfg) -> dict[str, Any]:
    return {"version": BUILDER_VERSION, "video_sha256": sha256, "config": cfg.to_dict()}


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def read_manifest(root: str | Path) -> list[dict[str, Any]]:
    """``manifest.jsonl`` of a built set: one record per crop, sorted by relpath."""
    path = Path(root) / "manifest.jsonl"
    if not path.is_file():
        raise DatasetError(f"{path} is missing: build the set with `python -m muva_lib real-crops`")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _write(tmp: Path, crops: Sequence[Crop], pixels: dict[tuple[int, tuple[int, ...]], np.ndarray],
           cfg: RealCfg) -> None:
    """Crops (resized to ``cfg.crop_wh``, JPEG) and the manifest into ``tmp``; ``pixels[(frame, box)]``
    holds the RGB pixels of every detection."""
    for sub in SUBSET_DIRS.values():
        (tmp / sub).mkdir(parents=True)
    for c in crops:
        Image.fromarray(pixels[(c.frame, c.box)]).resize(cfg.crop_wh, Image.BICUBIC).save(
            tmp / c.relpath, "JPEG", quality=cfg.jpeg_quality)
    lines = [json.dumps({"relpath": c.relpath, "subset": c.subset, "pid": c.pid, "tracklet": c.pid,
                         "camera": c.camera, "frame": c.frame, "box": list(c.box), "score": c.score})
             for c in crops]
    (tmp / "manifest.jsonl").write_text("".join(line + "\n" for line in lines))


def build_real_set(out: str | Path, video: str | Path | None = None, cfg: RealCfg = RealCfg(), *,
                   overwrite: bool = False, progress: bool = False, workers: int = 2) -> dict[str, Any]:
    """Build the set into ``out`` (Market layout, ``manifest.jsonl``, ``meta.json``); return the meta.

    Deterministic: the same video and ``cfg`` give byte-identical files, whatever ``workers``
    (detection processes, see :func:`~muva_lib.data.real.video.detect_video`). A folder already built
    from the same video and config is left as it is (``meta["status"] == "skipped"``); one built
    otherwise raises :class:`DatasetError` unless ``overwrite``. Written into a temporary sibling
    and renamed into place, so ``out`` is never half-written.
    """
    out = Path(out)
    path = find_video(video)
    info = video_info(path)
    want = _fingerprint(info.sha256, cfg)
    meta = _read_json(out / "meta.json")
    if meta is not None and all(meta.get(k) == v for k, v in want.items()):
        return {**meta, "status": "skipped"}
    if out.exists() and not overwrite:
        raise DatasetError(f"{out} holds a set built from another video or config; pick another --out "
                           "or pass --overwrite (overwrite=True) to rebuild it")
    cv2 = import_cv2()
    from tqdm.auto import tqdm

    total = info.frames if cfg.max_frames is None else min(info.frames, cfg.max_frames)
    per_frame: list[tuple[int, list]] = []
    pixels: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}  # (frame, box) -> RGB crop
    with tqdm(total=-(-total // cfg.step), desc="detect people", unit="frame", disable=not progress) as bar:
        for index, dets, crops in detect_video(path, cfg.hog, max_frames=cfg.max_frames, step=cfg.step,
                                                     workers=workers):
            per_frame.append((index, dets))
            pixels.update({(index, d.box): crop for d, crop in zip(dets, crops)})
            bar.update(1)
            bar.set_postfix(people=len(dets), refresh=False)
    tracklets, track_counts = link(per_frame, cfg.track, cfg.step)
    split = split_frame(tracklets, [i for i, _ in per_frame])
    crops, split_counts = plan_crops(tracklets, split, cfg)
    counts = {sub: {"images": sum(c.subset == sub for c in crops),
                    "ids": len({c.pid for c in crops if c.subset == sub})} for sub in SUBSET_DIRS}
    empty = [sub for sub, c in counts.items() if c["images"] == 0]
    if empty:
        raise DatasetError(f"{path.name}: the {', '.join(empty)} split would be empty ({len(tracklets)} tracklets "
                           f"from {len(per_frame)} processed frames); read more frames (--max-frames)")
    meta = {**want, "generator": "muva_lib.data.real", "dataset": out.name,
            "video": {k: v for k, v in asdict(info).items()}, "opencv": cv2.__version__,
            "frames_processed": len(per_frame), "detections": sum(len(d) for _, d in per_frame),
            "tracking": track_counts, "split_frame": split, "split": split_counts, "counts": counts,
            "labels": "pseudo-identities: one IoU tracklet = one id; noisy (broken tracks, identity switches)"}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _write(tmp, crops, pixels, cfg)
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        if out.exists():
            old = out.parent / f".{out.name}.old-{os.getpid()}"
            out.rename(old)
            tmp.rename(out)
            shutil.rmtree(old)
        else:
            tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {**meta, "status": "built"}


def real_vtest_missing(video: str | Path | None = None) -> str | None:
    """``None`` when the set can be built here, else why not with what to install (for skips)."""
    try:
        import_cv2()
        find_video(video)
    except (ImportError, DatasetError) as exc:
        return str(exc)
    return None


def ensure_real_vtest(max_frames: int | None = None, out: str | Path | None = None,
                      video: str | Path | None = None, progress: bool = False) -> Path:
    """The folder of the real set, built first when missing (default config; see :func:`muva_lib.paths.real_vtest_root`).

    Read it with ``read_dataset("real-vtest", root=folder)``; the protocols ``real-vtest`` and
    ``synth-a->real-vtest`` use ``ensure_real_vtest()``'s default folder.
    """
    folder = Path(out) if out is not None else real_vtest_root(max_frames)
    build_real_set(folder, video, RealCfg(max_frames=max_frames), progress=progress)
    return folder


def real_items(root: str | Path) -> list[Item]:
    """Every crop of a built set (train, query and gallery) as :class:`~muva_lib.data.types.Item`,
    sorted by relpath (what the grounding notebooks ground)."""
    from ..readers import read_dataset

    split = read_dataset("real-vtest", root=root)
    return sorted((*split.train, *split.query, *split.gallery), key=lambda it: it.relpath)


def summary_lines(meta: dict[str, Any]) -> list[str]:
    """What a build found, in words: video, detections, tracklets, split and crops per subset."""
    v, t, sp, c = meta["video"], meta["tracking"], meta["split"], meta["counts"]
    return [
        f"video {v['name']} ({v['frames']} frames, {v['width']}x{v['height']}, sha256 {v['sha256'][:12]}): "
        f"{meta['frames_processed']} frames processed",
        f"detections {meta['detections']}; tracks {t['tracks']} -> {t['kept']} tracklets kept "
        f"({t['too_short']} too short, {t['static']} static)",
        f"split at frame {meta['split_frame']}: {sp['train_tracklets']} training and {sp['test_tracklets']} test "
        f"identities ({sp['crossing_dropped']} tracklet(s) crossing the split dropped)",
        "crops: " + ", ".join(f"{sub} {c[sub]['images']} ({c[sub]['ids']} ids)"
                              for sub in ("train", "query", "gallery")),
    ]
