"""The visual grounding expert (VGE): backends, answer parsing, calibration, patch masks, the store.

Training code needs one call: :func:`part_masks_for` (items + ``VgeCfg`` + patch grid ->
``{dataset/relpath: bool [R, h*w]}``), and :func:`joint_hflip` for the flip augmentation.
"""
from ..geometry.boxes import Box, box_iou
from ..geometry.patch_grid import box_to_mask, boxes_to_masks, grid_for, hflip_box, joint_hflip
from .answers import Parsed, parse_answer
from .backends import BACKENDS, Answer, Backend, backend_from_cfg, get_backend, list_backends
from .calibrate import CalibCfg, CalibStats, calibrate_image, fit_stats, mean_iou
from .grounder import GroundReport, ground_items
from .part_masks import (MASK_SOURCES, Calibration, calibrate_store, part_masks_for, part_masks_with_health, raw_boxes,
                         store_masks)
from .box_store import GroundingStore, load_masks
from .prompts import GROUNDING_TEMPLATE, PART_PHRASES, grounding_prompt
from .report import Case, GroundingView, iou_table, store_iou

__all__ = [
    "BACKENDS", "Answer", "Backend", "backend_from_cfg", "get_backend", "list_backends", "Box", "box_iou",
    "CalibCfg", "CalibStats", "calibrate_image", "fit_stats", "mean_iou", "Parsed", "parse_answer",
    "MASK_SOURCES", "Calibration", "GroundReport", "calibrate_store", "ground_items", "iou_table", "store_iou",
    "Case", "GroundingView",
    "part_masks_for", "part_masks_with_health", "raw_boxes", "store_masks", "GROUNDING_TEMPLATE", "PART_PHRASES", "grounding_prompt",
    "box_to_mask", "boxes_to_masks", "grid_for", "hflip_box", "joint_hflip", "GroundingStore", "load_masks",
]
