"""Held-out cross-modal R² of a coupled-autoencoder fit (issue 22, item 1).

``mv.tl.coupled_autoencoder`` trains on ``train_size`` of the cells (0.9 by default, as the
other tools) and predicts each modality of the held-out cells from each other one. The R²
uses the training cells' mean of the target features, so the mean predictor scores about
0; a direction that does not beat it is said with a :class:`~multiviz.FitQualityWarning`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .. import _logging as logg
from .._warnings import FitQualityWarning
from ._coupled_checks import masked_r2, model_features
from ._intervals import LEVEL, conformal_halfwidth

#: Default ``train_size`` of ``mv.tl.coupled_autoencoder`` (the model class keeps 1.0).
TRAIN_SIZE = 0.9
#: Training cells the linear baseline is fitted on (a random subsample above this).
MAX_BASELINE_CELLS = 5000
#: Ridge penalties searched (generalised cross-validation on the training cells).
RIDGE_ALPHAS = np.logspace(-1, 4, 11)


def _frame(mdata, mod: str, layers: Mapping, names):
    """The model's features of ``mod`` as a DataFrame indexed by cell name."""
    import pandas as pd

    x, _ = model_features(mdata, mod, layers, names)
    return pd.DataFrame(x, index=mdata.mod[mod].obs_names)


def _ridge_r2(train, test, source, target, layers, names, mean, random_state) -> float | None:
    """Held-out R² of ridge regression ``source`` -> ``target`` fitted on the training cells.

    The linear baseline of a cross-modal prediction: all source features, penalty chosen by
    generalised cross-validation on the training cells measured in both modalities; NaN
    source values get the training mean, cells with a NaN target are left out of the fit.
    ``None`` with fewer than 10 such training cells.
    """
    from sklearn.linear_model import RidgeCV

    src_tr = _frame(train, source, layers, names[source])
    tgt_tr = _frame(train, target, layers, names[target])
    both = src_tr.index.intersection(tgt_tr.index)
    xs, yt = src_tr.loc[both].to_numpy(), tgt_tr.loc[both].to_numpy()
    keep = np.isfinite(yt).all(axis=1)
    xs, yt = xs[keep], yt[keep]
    if xs.shape[0] < 10:
        return None
    if xs.shape[0] > MAX_BASELINE_CELLS:
        rows = np.random.default_rng(random_state).choice(xs.shape[0], MAX_BASELINE_CELLS, False)
        xs, yt = xs[rows], yt[rows]
    col_mean = np.nanmean(xs, axis=0)
    fit = RidgeCV(alphas=RIDGE_ALPHAS).fit(np.where(np.isfinite(xs), xs, col_mean), yt)
    src_te = _frame(test, source, layers, names[source])
    tgt_te = _frame(test, target, layers, names[target])
    both = src_te.index.intersection(tgt_te.index)
    if both.size < 2:
        return None
    xs, x = src_te.loc[both].to_numpy(), tgt_te.loc[both].to_numpy()
    return masked_r2(x, fit.predict(np.where(np.isfinite(xs), xs, col_mean)), mean)


def cross_modal_heldout(
    model,
    mdata,
    modalities: Sequence[str],
    layers: Mapping,
    stack_rows: np.ndarray,
    train_size: float,
    random_state: int = 0,
) -> dict:
    """``{"source->target": R²}`` on the held-out cells that have both, and their counts.

    ``stack_rows`` maps the model's cells to rows of ``mdata``; ``train_size`` is the one
    the model was trained with (its split is drawn from the model's seed). Empty without a
    held-out split or without held-out cells measured in two modalities. Beside each R²,
    ``r2_heldout_cross_modal_linear`` holds the linear baseline's on the same cells
    (ridge regression from all source features, fitted on the same training cells),
    ``r2_heldout_cross_modal_per_feature`` (per direction and target feature; a feature
    constant over the held-out cells has none), and ``prediction_interval`` the split-conformal half-widths of a 90 % interval per
    direction and target feature (:mod:`multiviz.tl._intervals`; a direction with fewer
    held-out cells than the interval needs has none).
    """
    _, val, _ = model._split(train_size)
    if len(val) == 0:
        return {}
    held = np.zeros(mdata.n_obs, dtype=bool)
    held[stack_rows[val]] = True
    train, test = mdata[~held], mdata[held].copy()
    names = model._feature_names()
    r2, counts, linear, widths, per_feature = {}, {}, {}, {}, {}
    for target in modalities:
        x_train, _ = model_features(train, target, layers, names[target])
        mean = np.nanmean(x_train, axis=0)
        x, rows = model_features(test, target, layers, names[target])
        for source in modalities:
            if source == target:
                continue
            pred = np.asarray(model.predict(test, source=source, target=target), dtype=float)
            pred = pred[rows]
            cells = (np.isfinite(x) & np.isfinite(pred)).any(axis=1)
            score = masked_r2(x, pred, mean)
            if cells.sum() < 2 or score is None:
                continue
            r2[f"{source}->{target}"] = score
            counts[f"{source}->{target}"] = int(cells.sum())
            scores = [masked_r2(x[:, [j]], pred[:, [j]], mean[[j]]) for j in range(x.shape[1])]
            per_feature[f"{source}->{target}"] = {
                str(f): float(v) for f, v in zip(names[target], scores) if v is not None
            }
            halfwidth = conformal_halfwidth(np.where(np.isfinite(pred), x - pred, np.nan), LEVEL)
            if halfwidth is not None:
                widths[f"{source}->{target}"] = dict(zip(map(str, names[target]), halfwidth))
            base = _ridge_r2(train, test, source, target, layers, names, mean, random_state)
            if base is not None:
                linear[f"{source}->{target}"] = base
    if not r2:
        return {}
    return {
        "r2_heldout_cross_modal": r2,
        "n_heldout_cross_modal": counts,
        "r2_heldout_cross_modal_per_feature": per_feature,
        "r2_heldout_cross_modal_linear": linear,
        "heldout_cells": np.asarray(mdata.obs_names[held], dtype=object),
        **(
            {
                "prediction_interval": {
                    "level": LEVEL,
                    "method": "split conformal, held-out cells",
                    "halfwidth": widths,
                }
            }
            if widths
            else {}
        ),
    }


def warn_if_cross_modal_fails(scores: Mapping) -> bool:
    """Warn naming the directions that do not beat the mean or the linear baseline.

    Two warnings at most (:class:`~multiviz.FitQualityWarning`): directions whose held-out
    R² is <= 0, and directions below ridge regression on the same cells. True if warned.
    """
    r2 = scores.get("r2_heldout_cross_modal", {})
    counts = scores.get("n_heldout_cross_modal", {})
    linear = scores.get("r2_heldout_cross_modal_linear", {})
    below = {k: v for k, v in r2.items() if v > 0.0 and k in linear and v < linear[k]}
    if below:
        logg.warning(
            "coupled autoencoder: the cross-modal prediction %s does not beat its linear "
            "baseline on the held-out cells (R² %s for ridge regression from all source "
            "features, fitted on the same training cells). For predicting values, use the "
            "linear model (or `mv.tl.cca`); the coupled latents can still serve for "
            "visualisation and label transfer.",
            ", ".join(below),
            ", ".join(f"{r2[k]:.3f} vs {linear[k]:.3f} on {counts[k]} cells" for k in below),
            category=FitQualityWarning,
        )
    bad = {k: v for k, v in r2.items() if not v > 0.0}
    if not bad:
        return bool(below)
    logg.warning(
        "coupled autoencoder: the cross-modal prediction %s does not beat the mean predictor "
        "on the held-out cells (R² %s). The coupled latents may not carry what one modality "
        "says about the other: try a stronger coupling (`lam`), more steps (`max_epochs`) or "
        "a linear baseline (`mv.tl.cca`), and check the latents before reading predictions.",
        ", ".join(bad),
        ", ".join(f"{v:.3f} on {counts[k]} cells" for k, v in bad.items()),
        category=FitQualityWarning,
    )
    return True


def warn_for_features_below_mean(scores: Mapping, directions=None) -> dict:
    """Warn naming the target features a direction predicts worse than their mean.

    Held-out R² <= 0 per feature (``r2_heldout_cross_modal_per_feature``), for every
    direction or those in ``directions``. Returns ``{direction: [features]}`` warned about.
    """
    per_feature = scores.get("r2_heldout_cross_modal_per_feature", {})
    counts = scores.get("n_heldout_cross_modal", {})
    bad = {
        d: {f: v for f, v in values.items() if not v > 0.0}
        for d, values in per_feature.items()
        if directions is None or d in directions
    }
    bad = {d: v for d, v in bad.items() if v}
    for direction, features in bad.items():
        shown = sorted(features.items(), key=lambda item: item[1])
        logg.warning(
            "coupled autoencoder: %d of %d features are predicted worse than their mean by %s "
            "on the %d held-out cells (R² %s). Do not read these predictions; a linear model "
            "(`mv.tl.cca`) or more coupling (`lam`) may do better.",
            len(features),
            len(per_feature[direction]),
            direction,
            counts.get(direction, 0),
            ", ".join(f"{f} {v:.2f}" for f, v in shown[:10]) + (", ..." if len(shown) > 10 else ""),
            category=FitQualityWarning,
        )
    return {d: sorted(v) for d, v in bad.items()}


def describe(scores: Mapping) -> str:
    """``"held-out cross-modal R²: rna->ephys 0.41 (121 cells), ..."`` or ``""``."""
    r2 = scores.get("r2_heldout_cross_modal", {})
    counts = scores.get("n_heldout_cross_modal", {})
    if not r2:
        return ""
    linear = scores.get("r2_heldout_cross_modal_linear", {})
    parts = [
        f"{k} {v:.3f} ({counts[k]} cells"
        + (f"; ridge {linear[k]:.3f}" if k in linear else "")
        + ")"
        for k, v in r2.items()
    ]
    return "held-out cross-modal R²: " + ", ".join(parts)
