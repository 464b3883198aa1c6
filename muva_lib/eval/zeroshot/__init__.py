"""Zero-shot checks of a vision-language model on a synthetic domain's unseen identities: pure metrics
(:mod:`.metrics`), the texts built from the ground-truth attributes (:mod:`.prompts`), the model side
(:mod:`.encoder`), the run over a dataset (:mod:`.check`, ``python -m muva_lib zeroshot``; :func:`probe` keeps its
features for figures), typed text -> best images (:mod:`.search`) and re-ID with a frozen encoder (:mod:`.frozen`)."""
from .frozen import frozen_encoder_metrics
from .check import (SUMMARY_KEYS, TextPlan, ZeroShotCfg, ZeroShotProbe, plan_texts, probe, reid_metrics, run_zeroshot,
                    summarise, zeroshot_items)
from .encoder import ZeroShotModel, encode_images, encode_texts, load_zeroshot_model
from .metrics import (attribute_accuracy, binding_accuracy, box_patch_coverage, chance_recall_at_k,
                      fixed_patch_pointing, mean_attribute_accuracy, pointing_accuracy, pointing_hits, t2i_retrieval)
from .search import TextHits, top_images, top_k

__all__ = ["SUMMARY_KEYS", "TextPlan", "plan_texts", "ZeroShotCfg", "reid_metrics", "run_zeroshot", "zeroshot_items",
           "ZeroShotProbe", "probe", "summarise", "TextHits", "top_images", "top_k",
           "ZeroShotModel", "encode_images", "encode_texts", "load_zeroshot_model",
           "attribute_accuracy", "binding_accuracy", "box_patch_coverage", "mean_attribute_accuracy",
           "pointing_accuracy", "pointing_hits", "t2i_retrieval", "chance_recall_at_k",
           "fixed_patch_pointing", "frozen_encoder_metrics"]
