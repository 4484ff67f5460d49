"""After a coupled-autoencoder fit: each arm must reconstruct better than the mean."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .. import _logging as logg
from .._warnings import FitQualityWarning

#: Cells scored (a random subsample above this): the check costs one decoder pass over them.
MAX_CHECK_CELLS = 5000


def model_features(mdata, mod: str, layers: Mapping, names) -> tuple[np.ndarray, np.ndarray]:
    """The model's features ``names`` of ``mod`` (its layer or ``.X``), as float64.

    Returns the values for ``mod``'s cells and those cells' rows in ``mdata``.
    """
    ad = mdata.mod[mod]
    data = ad.layers[layers[mod]] if layers.get(mod) else ad.X
    x = data[:, ad.var_names.get_indexer(names)]
    x = np.asarray(x.toarray() if hasattr(x, "toarray") else x, dtype=np.float64)
    return x, mdata.obs_names.get_indexer(ad.obs_names)


def masked_r2(x: np.ndarray, pred: np.ndarray, mean: np.ndarray) -> float | None:
    """R² of ``pred`` against ``x`` over the entries finite in both, baseline ``mean``.

    ``None`` when the baseline explains every such entry (no variance to score).
    """
    ok = np.isfinite(x) & np.isfinite(pred)
    denom = float((np.where(ok, x - mean, 0.0) ** 2).sum())
    if denom == 0.0:
        return None
    return 1.0 - float((np.where(ok, x - pred, 0.0) ** 2).sum()) / denom


def reconstruction_r2(
    model, mdata, modalities: Sequence[str], layers: Mapping, random_state: int = 0
) -> dict[str, float]:
    """Within-modality reconstruction R² of each arm on (up to 5,000 of) its cells.

    R² of ``model.predict(source=mod, target=mod)`` against the arm's input (its layer or
    ``.X``, the model's features, NaN entries left out), with each feature's mean over
    the scored cells as the baseline: the mean predictor scores 0.
    """
    rng = np.random.default_rng(random_state)
    cells = np.arange(mdata.n_obs)
    if cells.size > MAX_CHECK_CELLS:
        cells = np.sort(rng.choice(cells, MAX_CHECK_CELLS, replace=False))
    sub = mdata[cells].copy()
    names = model._feature_names()
    out = {}
    for mod in modalities:
        if sub.mod[mod].n_obs == 0:
            continue
        x, rows = model_features(sub, mod, layers, names[mod])
        pred = np.asarray(model.predict(sub, source=mod, target=mod), dtype=np.float64)[rows]
        ok = np.isfinite(x) & np.isfinite(pred)
        r2 = masked_r2(x, pred, np.nanmean(np.where(ok, x, np.nan), axis=0))
        if r2 is not None:
            out[mod] = r2
    return out


def warn_if_reconstruction_fails(r2: Mapping[str, float], n_steps: int, n_cells: int) -> bool:
    """Warn naming the arms whose reconstruction does not beat the mean; True if warned."""
    bad = {m: v for m, v in r2.items() if not v > 0.0}
    if not bad:
        return False
    logg.warning(
        "coupled autoencoder: the %s arm%s reconstruct%s no better than the per-feature mean "
        "(within-modality R² %s) after %d steps on %d cells. Likely causes: too few steps "
        "(raise `max_epochs`), too strong a coupling (`lam`), inputs not z-scored (run "
        "`mv.pp.prepare_paired`), or too few cells for the network.",
        ", ".join(bad),
        "s" if len(bad) > 1 else "",
        "" if len(bad) > 1 else "s",
        ", ".join(f"{v:.3f}" for v in bad.values()),
        n_steps,
        n_cells,
        category=FitQualityWarning,
    )
    return True
