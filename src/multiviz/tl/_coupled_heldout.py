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

#: Default ``train_size`` of ``mv.tl.coupled_autoencoder`` (the model class keeps 1.0).
TRAIN_SIZE = 0.9


def _values(mdata, mod: str, layers: Mapping, names) -> tuple[np.ndarray, np.ndarray]:
    """The model's features of ``mod`` for its cells in ``mdata``, and those cells' rows."""
    ad = mdata.mod[mod]
    data = ad.layers[layers[mod]] if layers.get(mod) else ad.X
    x = data[:, ad.var_names.get_indexer(names)]
    x = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)
    return x, mdata.obs_names.get_indexer(ad.obs_names)


def cross_modal_heldout(
    model,
    mdata,
    modalities: Sequence[str],
    layers: Mapping,
    stack_rows: np.ndarray,
    train_size: float,
) -> dict:
    """``{"source->target": R²}`` on the held-out cells that have both, and their counts.

    ``stack_rows`` maps the model's cells to rows of ``mdata``; ``train_size`` is the one
    the model was trained with (its split is drawn from the model's seed). Empty without a
    held-out split or without held-out cells measured in two modalities.
    """
    _, val, _ = model._split(train_size)
    if len(val) == 0:
        return {}
    held = np.zeros(mdata.n_obs, dtype=bool)
    held[stack_rows[val]] = True
    train, test = mdata[~held], mdata[held].copy()
    names = model._feature_names()
    r2, counts = {}, {}
    for target in modalities:
        x_train, _ = _values(train, target, layers, names[target])
        mean = np.nanmean(x_train, axis=0)
        x, rows = _values(test, target, layers, names[target])
        for source in modalities:
            if source == target:
                continue
            pred = np.asarray(model.predict(test, source=source, target=target), dtype=float)
            pred = pred[rows]
            ok = np.isfinite(x) & np.isfinite(pred)
            cells = ok.any(axis=1)
            denom = float((np.where(ok, x - mean, 0.0) ** 2).sum())
            if cells.sum() < 2 or denom == 0.0:
                continue
            resid = float((np.where(ok, x - pred, 0.0) ** 2).sum())
            r2[f"{source}->{target}"] = 1.0 - resid / denom
            counts[f"{source}->{target}"] = int(cells.sum())
    if not r2:
        return {}
    return {
        "r2_heldout_cross_modal": r2,
        "n_heldout_cross_modal": counts,
        "heldout_cells": np.asarray(mdata.obs_names[held], dtype=object),
    }


def warn_if_cross_modal_fails(scores: Mapping) -> bool:
    """Warn naming the directions whose held-out R² does not beat the mean; True if warned."""
    r2 = scores.get("r2_heldout_cross_modal", {})
    bad = {k: v for k, v in r2.items() if not v > 0.0}
    if not bad:
        return False
    counts = scores["n_heldout_cross_modal"]
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


def describe(scores: Mapping) -> str:
    """``"held-out cross-modal R²: rna->ephys 0.41 (121 cells), ..."`` or ``""``."""
    r2 = scores.get("r2_heldout_cross_modal", {})
    counts = scores.get("n_heldout_cross_modal", {})
    if not r2:
        return ""
    parts = [f"{k} {v:.3f} ({counts[k]} cells)" for k, v in r2.items()]
    return "held-out cross-modal R²: " + ", ".join(parts)
