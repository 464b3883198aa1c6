"""A small real re-ID set from OpenCV's pedestrian clip: HOG detection, IoU tracking, pseudo-identities."""
from .build import (BUILDER_VERSION, RealCfg, build_real_set, ensure_real_vtest, plan_crops,
                    read_manifest, real_items, real_vtest_missing, split_frame, summary_lines)
from .track import TrackCfg, Tracklet, link
from .video import INSTALL_HINT, HogCfg, Detection, detect_people, find_video, iter_frames, nms, video_info

__all__ = ["BUILDER_VERSION", "RealCfg", "build_real_set", "ensure_real_vtest", "plan_crops",
           "read_manifest", "real_items", "real_vtest_missing", "split_frame", "summary_lines", "TrackCfg",
           "Tracklet", "link", "INSTALL_HINT", "HogCfg", "Detection", "detect_people", "find_video", "iter_frames",
           "nms", "video_info"]
