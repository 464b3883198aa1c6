"""Models: CLIP backbone (open_clip), AM-MSA image encoder, prompts, heads, the factory and checkpoints."""
from __future__ import annotations

from .ammsa import AMMSAEncoder, EncoderOutput, ResidualMaskPredictor
from .attention import bool_to_additive
from .clip_backbone import WeightsNotFoundError, create_clip, resolve_weights
from .factory import ReidModel, ReidOutput, create_model, list_methods
from .heads import BNNeck, IdClassifier
from .prompt_learner import PromptLearner, TextEncoder, build_templates
from .weights import CheckpointMismatchError, load_checkpoint, read_metadata, save_checkpoint

__all__ = [
    "AMMSAEncoder", "EncoderOutput", "ResidualMaskPredictor", "bool_to_additive", "CheckpointMismatchError",
    "load_checkpoint", "read_metadata", "save_checkpoint", "WeightsNotFoundError", "create_clip",
    "resolve_weights", "ReidModel", "ReidOutput", "create_model", "list_methods", "BNNeck", "IdClassifier",
    "PromptLearner", "TextEncoder", "build_templates",
]
