"""Stability of selected gene sets across refits (seeds or cross-validation folds)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from itertools import combinations

import numpy as np
import pandas as pd


def jaccard(a: Iterable, b: Iterable) -> float:
    r"""Jaccard index :math:`|A \cap B| / |A \cup B|` of two sets (1.0 for two empty sets).

    Examples
    --------
    >>> import multiviz as mv
    >>> mv.metrics.jaccard(["Pvalb", "Sst"], ["Sst", "Vip"])
    0.3333333333333333
    """
    a, b = set(a), set(b)
    union = a | b
    if not union:
        return 1.0
    return len(a & b) / len(union)


def mean_pairwise_jaccard(sets: Sequence[Iterable]) -> float:
    """Mean Jaccard index over all unordered pairs of ``sets`` (NaN for fewer than two).

    Examples
    --------
    >>> import multiviz as mv
    >>> mv.metrics.mean_pairwise_jaccard([["Pvalb", "Sst"], ["Sst", "Vip"], ["Sst", "Pvalb"]])
    """
    sets = [set(s) for s in sets]
    pairs = list(combinations(range(len(sets)), 2))
    if not pairs:
        return float("nan")
    return float(np.mean([jaccard(sets[i], sets[j]) for i, j in pairs]))


def mean_pairwise_overlap(sets: Sequence[Iterable]) -> float:
    """Mean number of elements shared by a pair of sets (the sBNN paper's "13 genes in common").

    Examples
    --------
    >>> import multiviz as mv
    >>> mv.metrics.mean_pairwise_overlap([["Pvalb", "Sst"], ["Sst", "Vip"]])
    1.0
    """
    sets = [set(s) for s in sets]
    pairs = list(combinations(range(len(sets)), 2))
    if not pairs:
        return float("nan")
    return float(np.mean([len(sets[i] & sets[j]) for i, j in pairs]))


def selection_frequency(sets: Sequence[Iterable], universe: Sequence) -> pd.Series:
    """Fraction of ``sets`` that contain each element of ``universe``.

    Examples
    --------
    >>> import multiviz as mv
    >>> mv.metrics.selection_frequency([["Pvalb", "Sst"], ["Sst"]], ["Pvalb", "Sst", "Vip"])
    """
    counts = pd.Series(0.0, index=pd.Index(list(universe)))
    for s in sets:
        s = [g for g in s if g in counts.index]
        counts.loc[s] += 1.0
    return counts / max(len(sets), 1)
