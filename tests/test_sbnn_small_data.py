"""sBNN pre-training on small data: the k-means K keeps the paper's cells per class."""

from __future__ import annotations

import logging

import numpy as np

from multiviz.models.sbnn._schedule import (
    MIN_CLUSTER_SIZE,
    N_CLUSTERS,
    REFERENCE_CELLS,
    pretrain_labels,
    size_scaled_clusters,
)


def test_default_k_keeps_the_papers_cells_per_class():
    assert size_scaled_clusters(REFERENCE_CELLS) == N_CLUSTERS  # M1's folds: the paper's K
    assert size_scaled_clusters(50_000) == N_CLUSTERS
    assert [size_scaled_clusters(n) for n in (20, 72, 180, 270)] == [2, 2, 3, 5]
    for n in (72, 180, 270, 600, 1092):  # ~55 cells per class, as 1,092 / 20
        assert 27 <= n / size_scaled_clusters(n) <= 82


def test_small_data_classes_are_planted_groups_not_fragments(caplog):
    """72 cells in 2 planted groups: K = 2 finds them; the paper's fixed K = 20 fragments
    them into classes too small to keep (the fallback warning)."""
    rng = np.random.default_rng(0)
    group = np.repeat([0, 1], 36)
    centres = rng.normal(scale=4.0, size=(2, 5))
    Y = centres[group] + rng.normal(size=(72, 5))
    with caplog.at_level(logging.WARNING, logger="multiviz"):
        labels = pretrain_labels(Y, random_state=0, n_init=50)
    assert not [r for r in caplog.records if "k-means clusters" in r.getMessage()]
    assert (labels >= 0).all()
    sizes = np.bincount(labels)
    assert len(sizes) == 2 and sizes.min() >= MIN_CLUSTER_SIZE
    # every planted group lies in one class, and the two classes are the two groups
    for g in (0, 1):
        assert len(np.unique(labels[group == g])) == 1
    assert labels[group == 0][0] != labels[group == 1][0]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="multiviz"):
        fixed = pretrain_labels(Y, n_clusters=N_CLUSTERS, random_state=0, n_init=50)
    assert [r for r in caplog.records if "k-means clusters" in r.getMessage()]
    assert np.bincount(fixed[fixed >= 0]).max() < MIN_CLUSTER_SIZE
