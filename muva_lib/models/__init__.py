"""Models: CLIP backbone (open_clip), AM-MSA image encoder, prompts, heads, the factory and checkpoints."""
from __future__ import annotations

from .ammsa import AMMSAEncoder, EncoderOutput, ResidualMaskPredictor
from .attention import bool_to_additive
from .checkpoint import CheckpointMismatchError, load_checkpoint, read_metadata, save_checkpoint
from .clip_backbone import WeightsNotFoundError, create_clip, resolve_weights
from .factory import ReidModel, ReidOutput, create_model, list_methods
from .heads import BNNeck, IdClassifier
from .prompts import PromptLearner, TextEncoder, build_templates

__all__ = [
    "AMMSAEncoder", "EncoderOutput", "ResidualMaskPredictor", "bool_to_additive", "CheckpointMismatchError",
    "load_checkpoint", "read_metadata", "save_checkpoint", "WeightsNotFoundError", "create_clip",
    "resolve_weights", "ReidModel", "ReidOutput", "create_model", "list_methods", "BNNeck", "IdClassifier",
    "PromptLearner", "TextEncoder", "build_templates",
]
