"""Evaluation: ranking metrics, distances, re-ranking, feature extraction and the chunked evaluator."""
from .distance import pairwise_distance
from .evaluator import evaluate_features, evaluate_split
from .features import extract_features
from .rank import evaluate_features_reference, evaluate_rank, evaluate_rank_reference
from .rerank import re_ranking
from .split_stats import average_results

__all__ = ["evaluate_rank", "evaluate_rank_reference", "evaluate_features_reference", "evaluate_features", "evaluate_split",
           "average_results", "extract_features", "re_ranking", "pairwise_distance"]
