"""Metrics (``mv.metrics``): pure functions on arrays. Names load on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "_consistency": [
            "celltype_consistency",
            "cross_modal_accuracy",
            "gmm_consistency",
            "kept_classes",
            "qda_accuracy",
        ],
        "_knn": ["knn_accuracy", "knn_purity"],
        "_r2": ["r2_per_feature", "r2_score"],
        "_stability": [
            "jaccard",
            "mean_pairwise_jaccard",
            "mean_pairwise_overlap",
            "selection_frequency",
        ],
    },
)

if TYPE_CHECKING:
    from ._consistency import (
        celltype_consistency,
        cross_modal_accuracy,
        gmm_consistency,
        kept_classes,
        qda_accuracy,
    )
    from ._knn import knn_accuracy, knn_purity
    from ._r2 import r2_per_feature, r2_score
    from ._stability import (
        jaccard,
        mean_pairwise_jaccard,
        mean_pairwise_overlap,
        selection_frequency,
    )
