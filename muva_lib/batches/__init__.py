"""Batches: what turns a protocol's items (and their masks) into training and test batches.

:mod:`~muva_lib.batches.transforms` (stage-2 augmentation with the joint image/mask flip),
:mod:`~muva_lib.batches.sampler` (P x K and shuffled batch samplers) and
:mod:`~muva_lib.batches.loaders` (image datasets, test / train transforms, loaders).
"""
