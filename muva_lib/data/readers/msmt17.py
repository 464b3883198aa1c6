"""MSMT17 in either of its two layouts: the official list files or a Market-style re-export."""
from __future__ import annotations

import re
from pathlib import PurePosixPath

from ..types import Item
from .reader import (DatasetError, ImageCheck, Reader, Subsets, check_camera, market_style_items, match_name,
                   register)

__all__ = ["MSMT17", "MSMT17_NAME"]

#: Official MSMT17 file name ``PID_INDEX_CAM_DATETIME_FRAME_BOX.jpg``, e.g.
#: ``0000_000_01_0303morning_0015_0.jpg``: the camera is the third field (1..15).
MSMT17_NAME = re.compile(r"^(\d+)_(\d+)_(\d+)_")
_LISTS = ("list_train.txt", "list_val.txt", "list_query.txt", "list_gallery.txt")
_CAMS = (1, 15)


@register
class MSMT17(Reader):
    """MSMT17 (Wei et al., CVPR 2018): 1,041 training ids, 15 cameras.

    Either the official list-file layout (V1: ``train/``, ``test/``; V2: ``mask_train_v2/``,
    ``mask_test_v2/``) in ``data/raw/MSMT17/``::

        train/0000/0000_000_01_0303morning_0015_0.jpg
        test/0000/0000_000_01_0303morning_0036_0.jpg
        list_train.txt    lines "0000/0000_000_01_0303morning_0015_0.jpg 0" (path under train/, pid)
        list_val.txt      merged into training: 32,621 images in all
        list_query.txt    11,659 images (paths under test/)
        list_gallery.txt  82,161 images

    or a Market-style re-export::

        bounding_box_train/0000_c1_0000.jpg   query/...   bounding_box_test/...

    Cameras 1..15: the third ``_`` field of an official name, the number after ``c`` in a
    re-export. Test ids start at 0 and are real identities (no distractors). The layout found
    and the version (V1/V2, from the folder names) are recorded in ``Split.meta``.
    """

    name = "msmt17"
    folder = "MSMT17"
    url = "https://www.pkuvmc.com/dataset.html"
    distractor_pid = None

    def layout_found(self) -> str:
        """``"list"`` when ``list_train.txt`` exists, ``"market"`` for ``bounding_box_train/``."""
        if (self.root / "list_train.txt").is_file():
            return "list"
        if (self.root / "bounding_box_train").is_dir():
            return "market"
        self.require("list_train.txt")  # raises with the layout text
        raise AssertionError("unreachable")

    def required_paths(self) -> tuple[str, ...]:
        """The list-file layout's folders and lists, or the re-export's three folders when only those exist."""
        if (self.root / "bounding_box_train").is_dir() and not (self.root / "list_train.txt").is_file():
            return ("bounding_box_train", "query", "bounding_box_test")
        train_dir = "mask_train_v2" if (self.root / "mask_train_v2").is_dir() else "train"
        test_dir = "mask_test_v2" if (self.root / "mask_test_v2").is_dir() else "test"
        return (train_dir, test_dir, *_LISTS)

    def version(self) -> str:
        if (self.root / "mask_train_v2").is_dir() or "V2" in self.root.name.upper():
            return "V2"
        return "V1" if "V1" in self.root.name.upper() else "unknown"

    def collect(self, split_index: int = 0) -> Subsets:
        layout = self.layout_found()
        check = ImageCheck(self.name, self.strict)
        self.require(*self.required_paths())
        if layout == "list":
            train_dir, test_dir = self.required_paths()[:2]
            train = self._listed(train_dir, "list_train.txt", check) + self._listed(train_dir, "list_val.txt", check)
            query = self._listed(test_dir, "list_query.txt", check)
            gallery = self._listed(test_dir, "list_gallery.txt", check)
        else:
            args = dict(dataset=self.name, check=check, cam_range=_CAMS)
            train = market_style_items(self.root, "bounding_box_train", **args)
            query = market_style_items(self.root, "query", **args)
            gallery = market_style_items(self.root, "bounding_box_test", **args)
        check.finish()
        return Subsets(train, query, gallery, {"layout": layout, "version": self.version()})

    def _listed(self, image_dir: str, list_name: str, check: ImageCheck) -> list[Item]:
        """Items of one list file: ``RELPATH PID`` per line, RELPATH under ``image_dir``."""
        list_path = self.root / list_name
        out: list[Item] = []
        for lineno, line in enumerate(list_path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split()
            rel = PurePosixPath(fields[0]) if fields else PurePosixPath()
            if len(fields) != 2 or not fields[1].isdigit() or rel.is_absolute() or ".." in rel.parts:
                raise DatasetError(
                    f"{list_path}:{lineno}: malformed line {line.strip()!r}; expected "
                    f"'RELPATH PID' (a relative image path under {image_dir}/ and a non-negative integer)"
                )
            path = self.root / image_dir / rel
            m = match_name(path, MSMT17_NAME, "'PID_INDEX_CAM_...jpg' of MSMT17")
            cam = int(m.group(3))
            check_camera(path, cam, _CAMS, self.name)
            if not check.ok(path):
                continue
            out.append(Item(str(path), int(fields[1]), cam - 1, self.name, f"{image_dir}/{rel}"))
        return out
