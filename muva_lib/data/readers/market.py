"""Market-1501 and every dataset that shares its layout (Duke, Occluded-Duke, the synthetic domains)."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ..types import Split
from .base import ImageCheck, Reader, market_style_items, register

__all__ = ["MarketStyleReader", "Market1501", "SynthA", "SynthB", "SynthC"]


class MarketStyleReader(Reader):
    """Base for ``{bounding_box_train,query,bounding_box_test}/PID_cCAM...`` folders."""

    train_dir: ClassVar[str] = "bounding_box_train"
    query_dir: ClassVar[str] = "query"
    gallery_dir: ClassVar[str] = "bounding_box_test"
    cam_range: ClassVar[tuple[int, int] | None] = None

    def read(self, split_index: int = 0) -> Split:
        self.require(self.train_dir, self.query_dir, self.gallery_dir)
        check = ImageCheck(self.name, self.strict)
        args = dict(dataset=self.name, check=check, cam_range=self.cam_range)
        train = market_style_items(self.root, self.train_dir, keep_distractors=False, **args)
        query = market_style_items(self.root, self.query_dir, keep_distractors=False, **args)
        gallery = market_style_items(self.root, self.gallery_dir, keep_distractors=True, **args)
        check.finish()
        return self.finish(train, query, gallery, split_index)


@register
class Market1501(MarketStyleReader):
    """Market-1501 (Zheng et al., ICCV 2015): 751 training ids, 6 cameras.

    Layout (``data/raw/Market-1501-v15.09.15/``)::

        bounding_box_train/0002_c1s1_000451_03.jpg   12,936 images
        query/0001_c1s1_001051_00.jpg                 3,368 images
        bounding_box_test/0000_c1s1_000151_01.jpg    15,913 images (pid 0 distractors, -1 junk)

    File name: ``PID_cCsS_FRAME_BOX.jpg``; camera = the digit after ``c`` (1..6).
    """

    name = "market1501"
    folder = "Market-1501-v15.09.15"
    url = "https://zheng-lab-anu.github.io/Project/project_reid.html"
    cam_range = (1, 6)


class _SynthDomain(MarketStyleReader):
    """A domain of the synthetic benchmark (``python -m muva_lib synth``), Market-1501 layout.

    Layout (``data/synth/<domain>/``)::

        bounding_box_train/0001_c1s1_000000_00.jpg
        query/...   bounding_box_test/...
        gt/parts.jsonl    gt/parsing/<subset>/<name>.png    meta.json
    """

    def __init__(self, root: str | Path | None = None, strict: bool = False) -> None:
        from ...paths import synth_root

        super().__init__(root if root is not None else synth_root() / self.folder, strict)

    def require(self, *relative: str) -> None:
        if not self.root.is_dir():
            from .base import DatasetError

            raise DatasetError(
                f"{self.name}: the synthetic domain is not generated yet ({self.root} is missing). "
                f"Run: python -m muva_lib synth --out {self.root.parent}"
            )
        super().require(*relative)


@register
class SynthA(_SynthDomain):
    __doc__ = _SynthDomain.__doc__
    name = folder = "synth-a"


@register
class SynthB(_SynthDomain):
    __doc__ = _SynthDomain.__doc__
    name = folder = "synth-b"


@register
class SynthC(_SynthDomain):
    __doc__ = _SynthDomain.__doc__
    name = folder = "synth-c"
