"""Per-column z-scoring whose fitted centring and scaling can be re-applied to new cells."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from .._blocks import row_slices
from .._validate import InputError, check_finite


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

    Examples
    --------
    >>> import numpy as np
    >>> import multiviz as mv
    >>> mean, std = mv.pp.fit_zscore(np.array([[1.0, 5.0], [3.0, 5.0]]))
    >>> mean, std  # a constant column gets SD 1
    (array([2., 5.]), array([1., 1.]))
    """
    if not (sparse.issparse(X) or hasattr(X, "__array__")):
        raise InputError(
            f"`X` must be a matrix (numpy array or scipy sparse), got {type(X).__name__}."
        )
    if np.ndim(X) != 2 or X.shape[0] == 0:
        raise InputError(
            f"`X` must be a non-empty cells × features matrix, got shape {np.shape(X)}."
        )
    check_finite(X, "X")
    if sparse.issparse(X):
        X = X.tocsr()
        total, total_sq = np.zeros(X.shape[1]), np.zeros(X.shape[1])
        for rows in row_slices(X.shape[0]):  # float64 copies of one block at a time
            block = sparse.csr_matrix(X[rows], dtype=np.float64)
            total += np.asarray(block.sum(axis=0)).ravel()
            total_sq += np.asarray(block.multiply(block).sum(axis=0)).ravel()
        mean = total / X.shape[0]
        var = np.maximum(total_sq / X.shape[0] - mean**2, 0.0)
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

    Returns
    -------
    The z-scored matrix.

    Examples
    --------
    >>> import numpy as np
    >>> import multiviz as mv
    >>> train, test = np.array([[1.0], [3.0]]), np.array([[4.0]])
    >>> mv.pp.apply_zscore(test, *mv.pp.fit_zscore(train))  # test cells, training statistics
    array([[2.]], dtype=float32)
    """
    mean = np.asarray(mean, dtype=np.float64).ravel()
    std = np.asarray(std, dtype=np.float64).ravel()
    n_features = np.shape(X)[1] if np.ndim(X) == 2 else -1
    if mean.shape != (n_features,) or std.shape != (n_features,):
        raise InputError(
            f"`mean` and `std` must have one value per column of `X` ({n_features}), got "
            f"{mean.size} and {std.size}; fit them with `mv.pp.fit_zscore` on the same genes."
        )
    if not (np.isfinite(mean).all() and np.isfinite(std).all()) or (std <= 0).any():
        raise InputError("`std` must be finite and > 0 and `mean` finite (from `fit_zscore`).")
    if sparse.issparse(X):
        X = X.tocsr()
    out = np.empty(np.shape(X), dtype=np.float32)
    for rows in row_slices(out.shape[0]):  # float64 arithmetic, one block of cells at a time
        block = X[rows].toarray() if sparse.issparse(X) else np.asarray(X[rows])
        out[rows] = (block - mean) / std
    return out
