"""Evaluation: ranking metrics, distances, re-ranking and the chunked evaluator (features: :mod:`muva_lib.features`);
zero-shot checks of a vision-language model in :mod:`muva_lib.eval.zeroshot`."""
from ..features import extract_features
from .distance import pairwise_distance
from .evaluator import evaluate_features, evaluate_split
from .rank import evaluate_features_reference, evaluate_rank, evaluate_rank_reference
from .rerank import re_ranking
from .split_stats import average_results

__all__ = ["evaluate_rank", "evaluate_rank_reference", "evaluate_features_reference", "evaluate_features", "evaluate_split",
           "average_results", "extract_features", "re_ranking", "pairwise_distance"]
