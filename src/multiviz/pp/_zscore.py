"""Per-column z-scoring whose fitted centring and scaling can be re-applied to new cells."""

from __future__ import annotations

import numpy as np
from scipy import sparse


def fit_zscore(X) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations (``ddof=0``) of ``X``.

    Columns with zero variance get a standard deviation of 1, so they map to 0 rather
    than NaN. Works on dense or sparse matrices without densifying the sparse one.

    Parameters
    ----------
    X
        Cells × features matrix (dense array or scipy sparse matrix).

    Returns
    -------
    ``(mean, std)``, two float64 arrays of length ``n_features``.
    """
    if sparse.issparse(X):
        X = sparse.csr_matrix(X, dtype=np.float64)
        mean = np.asarray(X.mean(axis=0)).ravel()
        mean_sq = np.asarray(X.multiply(X).mean(axis=0)).ravel()
        var = np.maximum(mean_sq - mean**2, 0.0)
    else:
        X = np.asarray(X, dtype=np.float64)
        mean = X.mean(axis=0)
        var = X.var(axis=0)
    std = np.sqrt(var)
    std[std == 0] = 1.0
    return mean, std


def apply_zscore(X, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """``(X - mean) / std`` as a dense float32 array (centring makes sparse data dense).

    Parameters
    ----------
    X
        Cells × features matrix (dense or sparse).
    mean, std
        Column statistics from :func:`fit_zscore`, usually fitted on training cells only.
    """
    dense = X.toarray() if sparse.issparse(X) else np.asarray(X)
    return ((dense - mean) / std).astype(np.float32)
