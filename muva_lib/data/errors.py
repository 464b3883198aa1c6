"""Errors about dataset input and the hints their messages share (a leaf of ``data/``).

Readers, the synthetic generator and the real-set builder all raise :class:`DatasetError`; they
find it here without importing one another (the reader of the real set and its builder used to
import each other).
"""
from __future__ import annotations

__all__ = ["DatasetError", "UnreadableImageWarning", "VTEST_INSTALL_HINT"]


class DatasetError(RuntimeError):
    """Bad or missing dataset input; the message names the file or folder and what was expected."""


class UnreadableImageWarning(UserWarning):
    """Some images could not be read and were skipped (counted); ``data.strict=true`` makes it an error."""


#: Where OpenCV's pedestrian clip ``vtest.avi`` (the real set's source) comes from.
VTEST_INSTALL_HINT = ("install Debian's opencv-doc package (as root: apt-get install -y opencv-doc), which ships "
                      "/usr/share/doc/opencv-doc/examples/data/vtest.avi, or pass --video PATH / set MUVA_VTEST")
