"""Human parsing maps (pi-VL's input, like the VGE boxes are MUVA's): sources, grouping, store, per-patch labels.

Training code needs one call: :func:`parsing_labels_for` (items + ``ParsingCfg`` + a grid ->
``{dataset/relpath: uint8 [h*w]}`` part-class labels, 0 = background).
"""
from .classes import (DEFAULT_PART_CLASSES, GROUPINGS, LIP_CLASSES, PART_WORDS, POSE_GROUPING, SYNTH_GROUPING,
                      LIP_GROUPING, Grouping, parse_grouping, resolve_grouping)
from .labels import VOTES, foreground_labels, hflip_labels, majority_labels, vote_labels
from .map_store import ParsingStore, parsing_root
from .maps import ParsingError, grid_labels, parsing_labels_for, parsing_maps_for, resolve_source
from .sources import PARSING_SOURCES, HfSource, ParsingSource, PngSource, PoseSource, SyntheticSource, make_source

__all__ = [
    "LIP_CLASSES", "DEFAULT_PART_CLASSES", "PART_WORDS", "LIP_GROUPING", "SYNTH_GROUPING", "POSE_GROUPING", "GROUPINGS",
    "Grouping", "parse_grouping", "resolve_grouping", "majority_labels", "foreground_labels", "vote_labels", "VOTES",
    "hflip_labels", "PARSING_SOURCES", "ParsingSource", "SyntheticSource", "PngSource", "HfSource", "PoseSource",
    "make_source", "ParsingStore", "parsing_root", "ParsingError", "resolve_source", "parsing_maps_for",
    "parsing_labels_for", "grid_labels",
]
