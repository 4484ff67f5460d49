"""What ``mv.tl.cross_validate(..., return_predictions=True)`` writes per cell.

Each cell is predicted by the fold's model that did not train on it (in the target's
units), gets a conformal interval from the other cells' out-of-fold residuals
(:mod:`multiviz.tl._intervals`), and a position in the latent with its spread over the
folds' models (:mod:`multiviz.tl._latent_spread`).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from .._validate import InputError, check_fit_finite
from ._intervals import conformal_halfwidth, interval_record, out_of_fold_intervals
from ._latent_spread import align, member_spread


class OutOfFold(NamedTuple):
    """Each cell's out-of-fold prediction, interval bounds, aligned latent and its spread."""

    pred: pd.DataFrame
    lower: np.ndarray | None
    upper: np.ndarray | None
    interval: dict | None
    latent: np.ndarray
    spread_sd: np.ndarray
    spread: np.ndarray


def out_of_fold(mdata, target, fold_of, run, preds, latents, reference, level) -> OutOfFold:
    """Predictions (target units) and latents from each cell's test fold; intervals, spread."""
    from ..pp import fit_zscore

    unscaled = "unscaled" in target.layers
    raw = target.layers["unscaled"] if unscaled else target.X
    raw = np.asarray(raw.toarray() if hasattr(raw, "toarray") else raw, dtype=np.float64)
    pred = np.zeros(raw.shape, dtype=np.float64)
    ref = latents[run[0]].astype(np.float64) if reference is None else reference
    if ref.shape != latents[run[0]].shape:
        raise InputError(
            f"`align_to` holds a latent of shape {ref.shape}; the folds' latents are "
            f"{latents[run[0]].shape}. Pass the latent of the same model and bottleneck."
        )
    lat = np.zeros(ref.shape, dtype=np.float64)
    for k in run:
        test = fold_of == k
        mu, sd = fit_zscore(raw[fold_of != k])
        pred[test] = preds[k][test] * np.asarray(sd) + np.asarray(mu)
        lat[test] = align(latents[k].astype(np.float64), ref)[test]
    spread_sd, spread = member_spread([latents[k] for k in run], ref)
    check_fit_finite(
        [pred, lat, spread_sd],
        model="cross-validation",
        phase="out-of-fold predictions",
        hint="Lower the learning rate `lr`",
    )
    lower = upper = record = None
    if level is not None:
        residuals = raw - pred
        per_cell = out_of_fold_intervals(residuals, level)
        overall = conformal_halfwidth(residuals, level)
        if per_cell is not None and overall is not None:
            lower, upper = pred - per_cell, pred + per_cell
            record = interval_record(
                overall, target.var_names, level, raw.shape[0], "conformal, out-of-fold residuals"
            )
    frame = pd.DataFrame(pred, index=mdata.obs_names, columns=target.var_names)
    return OutOfFold(frame, lower, upper, record, lat, spread_sd, spread)
