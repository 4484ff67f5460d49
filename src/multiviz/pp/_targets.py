"""Transforms of the target modality (ADT counts, ephys features) before z-scoring."""

from __future__ import annotations

import numpy as np
from anndata import AnnData

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


def check_log_features(
    target: AnnData, y: str, y_kept: np.ndarray, log_features: list[str], transform: str | None
) -> np.ndarray:
    """Mask of the ``log_features`` columns, after checking they exist and are > 0."""
    missing = [f for f in log_features if f not in target.var_names]
    if missing:
        raise InputError(
            f"`log_features` names features not in mdata[{y!r}].var_names: {missing}; "
            f"available: {list(target.var_names)}."
        )
    log_mask = np.asarray(target.var_names.isin(log_features))
    if log_mask.any() and transform in ("clr", "log1p"):
        raise InputError(
            f"`log_features` takes the log of single features, but `target_transform={transform!r}` "
            "already log-transforms every feature. Pass `log_features` only with "
            "`target_transform='zscore'` (the sBNN recipe for ephys) or None."
        )
    bad = [
        f"{f!r} ({int((y_kept[:, j] <= 0).sum())} values <= 0)"
        for j, f in enumerate(target.var_names)
        if log_mask[j] and (y_kept[:, j] <= 0).any()
    ]
    if bad:
        raise InputError(
            f"`log_features` must be strictly positive to take their log: {', '.join(bad)}. "
            "For counts with zeros use `target_transform='log1p'` (all features) or "
            "`target_transform='clr'` (ADT counts) instead of adding a pseudo-count by hand."
        )
    return log_mask


def check_some_varying(values: np.ndarray, y: str) -> None:
    """Refuse targets in which every feature is constant: there is nothing to predict."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[0] < 2 or values.shape[1] == 0:
        return
    with np.errstate(invalid="ignore"):
        spread = np.nanmax(values, axis=0) - np.nanmin(values, axis=0)
    if not (spread > 0).any():
        raise InputError(
            f"Every target feature of mdata[{y!r}] is constant over the {values.shape[0]} "
            f"cells ({values.shape[1]} features): there is nothing to predict. Check that `y` "
            "names the right modality and that its values were filled in (not a placeholder)."
        )
