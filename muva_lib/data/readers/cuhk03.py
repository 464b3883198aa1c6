"""CUHK03-NP (the new 767/700 protocol), detected boxes (the DG default) and labeled boxes."""
from __future__ import annotations

from .market import MarketStyleReader
from .reader import register

__all__ = ["CUHK03NPDetected", "CUHK03NPLabeled"]


@register
class CUHK03NPDetected(MarketStyleReader):
    """CUHK03-NP, detected boxes (Zhong et al., CVPR 2017 split): 767 training ids, 2 cameras.

    Layout (``data/raw/cuhk03-np/``)::

        detected/bounding_box_train/0001_c1_1.png   7,365 images
        detected/query/0003_c1_1.png                1,400 images
        detected/bounding_box_test/0003_c2_1.png    5,332 images
        labeled/...                                 same tree (reader cuhk03np-labeled)

    File name: ``PID_cCAM_INDEX.png``; camera 1..2. The standard DG protocol uses ``detected``.
    """

    name = "cuhk03np"
    folder = "cuhk03-np"
    url = "https://github.com/zhunzhong07/person-re-ranking/tree/master/CUHK03-NP"
    cam_range = (1, 2)
    train_dir = "detected/bounding_box_train"
    query_dir = "detected/query"
    gallery_dir = "detected/bounding_box_test"


@register
class CUHK03NPLabeled(CUHK03NPDetected):
    """CUHK03-NP, hand-labelled boxes: 767 training ids, 2 cameras.

    Layout (``data/raw/cuhk03-np/``)::

        labeled/bounding_box_train/0001_c1_1.png    7,368 images
        labeled/query/0003_c1_1.png                 1,400 images
        labeled/bounding_box_test/0003_c2_1.png     5,328 images
        detected/...                                same tree (reader cuhk03np)

    File name: ``PID_cCAM_INDEX.png``; camera 1..2.
    """

    name = "cuhk03np-labeled"
    train_dir = "labeled/bounding_box_train"
    query_dir = "labeled/query"
    gallery_dir = "labeled/bounding_box_test"
