"""Build a small real re-ID set from OpenCV's pedestrian clip vtest.avi (Market-1501 layout, pseudo-labels).

People are found with OpenCV's HOG people detector, linked across frames into tracklets (IoU +
colour), and each tracklet becomes one pseudo-identity: expect noisy labels (broken tracks give
one person two ids; a track can jump between two walkers who cross). Training and test ids come
from disjoint time windows; the two halves in time of each tracklet act as cameras 1 and 2.
The same video and options give byte-identical files; a folder already built with them is skipped.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_arguments", "run"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--video", type=Path, default=None,
                        help="the video (default: $MUVA_VTEST, else Debian opencv-doc's "
                             "/usr/share/doc/opencv-doc/examples/data/vtest.avi)")
    parser.add_argument("--out", type=Path, default=None,
                        help="output folder (default: data/real-vtest, or data/real-vtest-f<N> with --max-frames N)")
    parser.add_argument("--max-frames", type=int, default=None, help="read only the first N frames (quick builds)")
    parser.add_argument("--step", type=int, default=2, help="process every step-th frame (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="detection processes (the files do not depend on it)")
    parser.add_argument("--overwrite", action="store_true", help="rebuild a folder made from another video or config")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..data.errors import DatasetError
    from ..data.real.build import RealCfg, build_real_set, summary_lines
    from ..paths import real_vtest_root

    out = args.out if args.out is not None else real_vtest_root(args.max_frames)
    try:
        if args.max_frames is not None and args.max_frames < 1 or args.step < 1:
            raise ValueError("--max-frames and --step must be at least 1")
        meta = build_real_set(out, args.video, RealCfg(step=args.step, max_frames=args.max_frames),
                              overwrite=args.overwrite, progress=not args.quiet, workers=args.workers)
    except (DatasetError, ImportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if meta["status"] == "skipped":
        print(f"{out}: already built from this video with these options, skipped")
    print("\n".join(summary_lines(meta)))
    print(f"pseudo-labels (one tracklet = one id): noisy. Read with read_dataset('real-vtest', root='{out}')")
    return 0
