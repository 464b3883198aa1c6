"""The real pedestrian set built from OpenCV's vtest.avi (pseudo-labelled by tracking), Market-1501 layout."""
from __future__ import annotations

from pathlib import Path

from ...paths import real_vtest_root
from ..errors import VTEST_INSTALL_HINT, DatasetError
from .market import MarketStyleReader
from .reader import register

__all__ = ["RealVtest"]


@register
class RealVtest(MarketStyleReader):
    """Real crops of real people from OpenCV's ``vtest.avi`` (one fixed camera, 795 frames).

    Built by ``python -m muva_lib real-crops`` (HOG people detector, IoU + colour tracking). The
    identities are **pseudo-labels**: one tracklet = one id, so a person whose track broke has two
    ids and a track that jumped between two walkers mixes them. Cameras 1 and 2 are the first and
    second half in time of each tracklet, not two real cameras. Training and test ids come from
    disjoint time windows of the clip.

    Layout (``data/real-vtest/``; ``data/real-vtest-f<N>/`` for the first N frames)::

        bounding_box_train/0001_c1_000004_00.jpg   PID_cCAM_FRAME_00.jpg, 128 x 256 crops
        query/...   bounding_box_test/...
        manifest.jsonl    subset, pid, tracklet, camera, frame, box and HOG score per crop
        meta.json         video SHA-256, builder config, counts

    A folder other than ``real-vtest`` is read as dataset ``real-vtest-<suffix>`` (its name), so
    grounding stores and masks of two builds never share keys.
    """

    name = folder = "real-vtest"
    cam_range = (1, 2)

    def __init__(self, root: str | Path | None = None, strict: bool = False) -> None:
        super().__init__(root if root is not None else real_vtest_root(), strict)
        stem = self.root.name
        if stem != "real-vtest":
            self.name = stem if stem.startswith("real-vtest") else f"real-vtest-{stem}"  # type: ignore[misc]

    def obtain_hint(self) -> str:
        return f"build it: python -m muva_lib real-crops --out {self.root}"

    def require(self, *relative: str) -> None:
        if not self.root.is_dir():
            raise DatasetError(
                f"{self.name}: the real set is not built yet ({self.root} is missing). "
                f"Run: python -m muva_lib real-crops --out {self.root} (it needs vtest.avi: {VTEST_INSTALL_HINT})")
        super().require(*relative)
