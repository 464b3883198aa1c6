"""CUHK02: five camera pairs, used whole as a source of the classical multi-source protocol."""
from __future__ import annotations

import re

from ..types import Item
from .reader import ImageCheck, Reader, Subsets, list_images, match_name, register

__all__ = ["CUHK02", "CUHK02_NAME"]

CUHK02_NAME = re.compile(r"^(\d+)_")
#: Pids of pair Pk are offset by k * PAIR_OFFSET, since every pair numbers its ids from 1.
PAIR_OFFSET = 10000


@register
class CUHK02(Reader):
    """CUHK02 (Li and Wang, CVPR 2013): 1,816 ids, 7,264 images, five camera pairs.

    Layout (``data/raw/cuhk02/``)::

        Dataset/P1/cam1/0001_1.png   pair P1: 971 ids, two images per id and camera
        Dataset/P1/cam2/0001_3.png
        Dataset/P2/{cam1,cam2}/...   P2: 306 ids, P3: 107, P4: 193, P5: 239
        ...
        Dataset/P5/{cam1,cam2}/...

    File name: ``PID_INDEX.png``: pid = the text before the first ``_``. Ids restart in each
    pair, so the pid of pair Pk is ``10000 * k + PID`` (P2's id 1 is 20001). Camera ids count the
    folders: P1/cam1 = 0, P1/cam2 = 1, ..., P5/cam2 = 9. Split: train = P1..P4, query =
    P5/cam1, gallery = P5/cam2. ``read_all()`` returns all five pairs (classical protocol).
    """

    name = "cuhk02"
    folder = "cuhk02"
    url = "https://www.ee.cuhk.edu.hk/~xgwang/CUHK_identification.html"
    distractor_pid = None
    pairs = ("P1", "P2", "P3", "P4", "P5")
    required = tuple(f"Dataset/{p}/{cam}" for p in pairs for cam in ("cam1", "cam2"))

    def collect(self, split_index: int = 0) -> Subsets:
        self.require(*self.required)
        check = ImageCheck(self.name, self.strict)
        views: list[list[Item]] = []
        for camid, folder in enumerate(self.required):
            offset = PAIR_OFFSET * (camid // 2 + 1)
            views.append([])
            for path in list_images(self.root / folder):
                pid = int(match_name(path, CUHK02_NAME, "'PID_INDEX.png' of CUHK02").group(1))
                if check.ok(path):
                    views[-1].append(Item(str(path), offset + pid, camid, self.name,
                                          path.relative_to(self.root).as_posix()))
        check.finish()
        train = [it for view in views[:-2] for it in view]
        return Subsets(train, views[-2], views[-1])
