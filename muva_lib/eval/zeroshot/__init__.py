"""Zero-shot checks of a vision-language model on a synthetic domain's unseen identities: pure metrics
(:mod:`.metrics`), the texts built from the ground-truth attributes (:mod:`.prompts`), the model side
(:mod:`.encoder`) and the run over a dataset (:mod:`.check`, ``python -m muva_lib zeroshot``)."""
from .check import SUMMARY_KEYS, TextPlan, ZeroShotCfg, plan_texts, reid_metrics, run_zeroshot, zeroshot_items
from .frozen import frozen_encoder_metrics
from .encoder import ZeroShotModel, encode_images, encode_texts, load_zeroshot_model
from .metrics import (attribute_accuracy, binding_accuracy, box_patch_coverage, chance_recall_at_k,
                      fixed_patch_pointing, mean_attribute_accuracy, pointing_accuracy, pointing_hits, t2i_retrieval)

__all__ = ["SUMMARY_KEYS", "TextPlan", "plan_texts", "ZeroShotCfg", "reid_metrics", "run_zeroshot", "zeroshot_items",
           "ZeroShotModel", "encode_images", "encode_texts", "load_zeroshot_model",
           "attribute_accuracy", "binding_accuracy", "box_patch_coverage", "mean_attribute_accuracy",
           "pointing_accuracy", "pointing_hits", "t2i_retrieval", "chance_recall_at_k",
           "fixed_patch_pointing", "frozen_encoder_metrics"]
