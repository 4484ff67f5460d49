"""Transforms of the target modality (ADT counts, ephys features) before z-scoring."""

from __future__ import annotations

import numpy as np

from .._validate import InputError

TARGET_TRANSFORMS = ("auto", "clr", "log1p", "zscore", None)
_PROTEIN_NAMES = ("protein", "proteins", "prot", "adt", "cite")


def clr(X: np.ndarray) -> np.ndarray:
    """Centred log-ratio of counts, per cell: ``log1p(x / g)``, ``g = exp(mean(log1p(x)))``.

    ``g`` is the geometric mean (with a pseudo-count of 1) of each cell's counts over the
    features, so the result is independent of a cell's total ADT depth; zeros are fine
    (an all-zero cell maps to 0). This is muon's ``mu.prot.pp.clr(adata, axis=1)``; muon's
    default ``axis=0`` centres each protein across cells instead, which ties every cell's
    value to the other cells and would leak test cells into cross-validation folds.

    Parameters
    ----------
    X
        Cells × features matrix of non-negative counts (dense).

    Returns
    -------
    The transformed matrix (float64, same shape).

    Examples
    --------
    >>> import numpy as np
    >>> from multiviz.pp._targets import clr
    >>> clr(np.array([[0.0, 3.0, 15.0]])).round(3)
    array([[0.   , 0.56 , 1.558]])
    """
    X = np.asarray(X, dtype=np.float64)
    log_geo_mean = np.log1p(X).mean(axis=1, keepdims=True)
    return np.log1p(X / np.exp(log_geo_mean))


def _are_counts(values: np.ndarray) -> bool:
    finite = values[np.isfinite(values)]
    return finite.size > 0 and bool(finite.min() >= 0) and bool(np.all(finite == np.round(finite)))


def resolve_target_transform(
    transform: str | None, y: str, values: np.ndarray, *, log_features: bool = False
) -> str | None:
    """The transform ``"auto"`` stands for: CLR for ADT counts, else the paper's z-scoring.

    ``"auto"`` is ``"clr"`` when the target modality is named like a protein modality
    (``protein``, ``prot``, ``adt``, ``cite``) and holds non-negative integer counts, and
    ``"zscore"`` otherwise (the sBNN paper's recipe for ephys features). Explicit
    ``log_features`` are a recipe of the user's own, so ``"auto"`` then means ``"zscore"``.
    """
    if transform not in TARGET_TRANSFORMS:
        raise InputError(
            f"`target_transform={transform!r}` is not supported; choose one of "
            f"{list(TARGET_TRANSFORMS)}."
        )
    if transform != "auto":
        if transform in ("clr", "log1p"):
            finite = values[np.isfinite(values)]
            if finite.size and finite.min() < 0:
                raise InputError(
                    f"`target_transform={transform!r}` needs non-negative counts, but "
                    f"mdata[{y!r}].X has negative values (min {finite.min():g}). Pass the raw "
                    "ADT counts, or `target_transform='zscore'` for data already normalised."
                )
        return transform
    if y.lower() in _PROTEIN_NAMES and _are_counts(values) and not log_features:
        return "clr"
    return "zscore"


def transform_targets(
    values: np.ndarray, transform: str | None, log_mask: np.ndarray
) -> np.ndarray:
    """Apply ``transform`` (after the natural log of the ``log_mask`` columns) to ``values``.

    Rows with NaN must be removed before; the result is what gets z-scored (or kept as is
    for ``None``) and is stored in ``layers["unscaled"]``.
    """
    out = np.array(values, dtype=np.float64)
    out[:, log_mask] = np.log(out[:, log_mask])
    if transform == "clr":
        return clr(out)
    if transform == "log1p":
        return np.log1p(out)
    return out
