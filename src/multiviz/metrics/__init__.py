"""Metrics (``mv.metrics``): pure functions on arrays."""

from ._consistency import cross_modal_accuracy, gmm_consistency, qda_accuracy
from ._knn import knn_accuracy, knn_purity
from ._r2 import r2_per_feature, r2_score
from ._stability import jaccard, mean_pairwise_jaccard, mean_pairwise_overlap, selection_frequency

__all__ = [
    "cross_modal_accuracy",
    "gmm_consistency",
    "jaccard",
    "knn_accuracy",
    "knn_purity",
    "mean_pairwise_jaccard",
    "mean_pairwise_overlap",
    "qda_accuracy",
    "r2_per_feature",
    "r2_score",
    "selection_frequency",
]
