"""Geometry every stage may use (a leaf: imports nothing else of the package).

:mod:`~muva_lib.geometry.boxes`: pixel boxes ``(x0, y0, x1, y1)``, IoU, union, (de)normalisation.
:mod:`~muva_lib.geometry.patch_grid`: the model's patch grid (:func:`grid_for`), boxes to ``[R, h*w]``
patch masks (centre-in-box) and the joint image/mask horizontal flip.
"""
from .boxes import Box, as_box, box_iou, box_union, denormalise, is_finite_box, normalise
from .patch_grid import box_to_mask, boxes_to_masks, grid_for, hflip_box, hflip_mask, joint_hflip, patch_centres

__all__ = ["Box", "as_box", "box_iou", "box_union", "denormalise", "is_finite_box", "normalise", "box_to_mask",
           "boxes_to_masks", "grid_for", "hflip_box", "hflip_mask", "joint_hflip", "patch_centres"]
