"""Market-1501 and every dataset that shares its layout (Duke, Occluded-Duke, the synthetic domains)."""
from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from .reader import ImageCheck, Reader, Subsets, market_style_items, register

__all__ = ["MarketStyleReader", "Market1501", "DukeMTMC", "OccludedDuke", "SynthA", "SynthB", "SynthC"]


class MarketStyleReader(Reader):
    """Base for ``{bounding_box_train,query,bounding_box_test}/PID_cCAM...`` folders."""

    train_dir: ClassVar[str] = "bounding_box_train"
    query_dir: ClassVar[str] = "query"
    gallery_dir: ClassVar[str] = "bounding_box_test"
    cam_range: ClassVar[tuple[int, int] | None] = None

    def required_paths(self) -> tuple[str, ...]:
        return (self.train_dir, self.query_dir, self.gallery_dir)

    def collect(self, split_index: int = 0) -> Subsets:
        self.require(*self.required_paths())
        check = ImageCheck(self.name, self.strict)
        args = dict(dataset=self.name, check=check, cam_range=self.cam_range)
        train = market_style_items(self.root, self.train_dir, keep_distractors=False, **args)
        query = market_style_items(self.root, self.query_dir, keep_distractors=False, **args)
        gallery = market_style_items(self.root, self.gallery_dir, keep_distractors=True, **args)
        check.finish()
        return Subsets(train, query, gallery)


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


@register
class DukeMTMC(MarketStyleReader):
    """DukeMTMC-reID (Zheng et al., ICCV 2017): 702 training ids, 8 cameras.

    Layout (``data/raw/DukeMTMC-reID/``)::

        bounding_box_train/0001_c2_f0046182.jpg   16,522 images
        query/0005_c2_f0046985.jpg                 2,228 images
        bounding_box_test/0002_c1_f0044158.jpg    17,661 images

    File name: ``PID_cCAM_fFRAME.jpg``; camera = the digit after ``c`` (1..8). The 408
    gallery-only distractor ids carry ordinary pids. Withdrawn by its authors in 2019: keep it
    optional in every protocol.
    """

    name = "dukemtmc"
    folder = "DukeMTMC-reID"
    url = "https://github.com/layumi/DukeMTMC-reID_evaluation"
    cam_range = (1, 8)


@register
class OccludedDuke(MarketStyleReader):
    """Occluded-DukeMTMC (Miao et al., ICCV 2019): Duke images re-split so queries are occluded.

    Layout (``data/raw/Occluded_Duke/``)::

        bounding_box_train/0001_c2_f0046182.jpg   15,618 images, 702 ids
        query/0005_c2_f0046985.jpg                 2,210 images
        bounding_box_test/0002_c1_f0044158.jpg    17,661 images

    File name as in DukeMTMC-reID (cameras 1..8). Built with the authors' script from a
    DukeMTMC-reID copy, which you must already have.
    """

    name = "occ_duke"
    folder = "Occluded_Duke"
    url = "https://github.com/lightas/Occluded-DukeMTMC-Dataset"
    cam_range = (1, 8)


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

    def obtain_hint(self) -> str:
        return f"generate it: python -m muva_lib synth --out {self.root.parent}"

    def require(self, *relative: str) -> None:
        if not self.root.is_dir():
            from .reader import DatasetError

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
