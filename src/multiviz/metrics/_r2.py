"""Cross-validated :math:`R^2` as defined in the sBNN paper (Bernaerts et al., eq. 3 and 4)."""

from __future__ import annotations

import numpy as np


def _prepare(y_true, y_pred, train_mean) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true, dtype=np.float64)
    y_pred = np.asarray(y_pred, dtype=np.float64)
    if y_true.ndim == 1:
        y_true = y_true[:, None]
    if y_pred.ndim == 1:
        y_pred = y_pred[:, None]
    if y_true.shape != y_pred.shape:
        raise ValueError(
            f"`y_true` and `y_pred` must have the same shape; got {y_true.shape} and {y_pred.shape}."
        )
    if train_mean is not None:
        mean = np.asarray(train_mean, dtype=np.float64).reshape(1, -1)
        y_true = y_true - mean
        y_pred = y_pred - mean
    return y_true, y_pred


def r2_score(y_true, y_pred, *, train_mean=None) -> float:
    r"""Multivariate :math:`R^2` of the sBNN paper, eq. (3).

    .. math:: R^2 = 1 - \frac{\lVert Y - \hat Y\rVert^2}{\lVert Y\rVert^2}

    where :math:`Y` is centred by the **training-set** mean (not its own mean), so a
    model that predicts the training mean scores exactly 0 only if the test mean
    equals the training mean.

    Parameters
    ----------
    y_true
        Observed targets, ``(n_obs, n_features)``.
    y_pred
        Predictions, same shape.
    train_mean
        Training-set mean per feature, subtracted from both arrays. ``None``: the
        arrays are already centred by the training mean (e.g. z-scored with
        training-fold statistics, as in :func:`multiviz.tl.cross_validate`).

    Returns
    -------
    The scalar :math:`R^2`.

    Examples
    --------
    >>> import numpy as np
    >>> import multiviz as mv
    >>> y = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]])
    >>> mv.metrics.r2_score(y, y)
    1.0
    """
    y_true, y_pred = _prepare(y_true, y_pred, train_mean)
    denom = float(np.sum(y_true**2))
    if denom == 0.0:
        return float("nan")
    return float(1.0 - np.sum((y_true - y_pred) ** 2) / denom)


def r2_per_feature(y_true, y_pred, *, train_mean=None) -> np.ndarray:
    r"""Per-feature :math:`R^2` of the sBNN paper, eq. (4).

    Same definition as :func:`r2_score`, one value per column.

    Returns
    -------
    Array of shape ``(n_features,)``.

    Examples
    --------
    >>> import numpy as np
    >>> import multiviz as mv
    >>> y = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0]])
    >>> mv.metrics.r2_per_feature(y, y)
    array([1., 1.])
    """
    y_true, y_pred = _prepare(y_true, y_pred, train_mean)
    denom = np.sum(y_true**2, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 1.0 - np.sum((y_true - y_pred) ** 2, axis=0) / denom
    out[denom == 0] = np.nan
    return out
