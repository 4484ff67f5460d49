"""What :func:`multiviz.tl.sbnn` stores in the user's MuData, written once everything is computed."""

from __future__ import annotations

import mudata as md
import numpy as np
import pandas as pd

from ._heldout import Split, train_scores
from ._intervals import bounds
from ._paired_data import PairedArrays


def write_sbnn(
    mdata: md.MuData,
    data: PairedArrays,
    model,
    latent: np.ndarray,
    pred: np.ndarray,
    pred_all: np.ndarray,
    genes_pred: pd.DataFrame | None,
    key_added: str,
    params: dict,
    scores: dict,
    split: Split,
) -> list[str]:
    """Write the latent, selected genes, predictions, intervals and ``uns[key_added]``.

    ``pred`` are the predictions of the scored features, ``pred_all`` those of every
    target feature (NaN for dropped ones). Returns the selected genes, largest first-layer row norm first.
    """
    rna, target = mdata.mod[data.x], mdata.mod[data.y]
    selected_local = model.module.gene_index.cpu().numpy()
    norms_local = model.weight_norms_
    norms = np.zeros(rna.n_vars)
    norms[np.flatnonzero(data.gene_mask)] = norms_local
    selected = np.zeros(rna.n_vars, dtype=bool)
    selected[np.flatnonzero(data.gene_mask)[selected_local]] = True
    order = np.argsort(-norms_local[selected_local], kind="stable")
    sel_names = [str(g) for g in np.asarray(data.gene_names)[selected_local][order]]
    mdata.obsm[f"X_{key_added}"] = latent
    rna.obsm[f"X_{key_added}"] = latent
    rna.var[f"{key_added}_selected"] = selected
    rna.var[f"{key_added}_weight_norm"] = norms
    target.layers[f"{key_added}_pred"] = pred_all
    record = model.prediction_interval_
    if record is not None:
        lower, upper = bounds(pred_all, record, target.var_names)
        target.layers[f"{key_added}_pred_lower"] = lower
        target.layers[f"{key_added}_pred_upper"] = upper
    if genes_pred is not None:
        genes_pred.index = rna.obs_names
        rna.obsm[f"{key_added}_genes_pred"] = genes_pred
    history = model.phase_history_.copy()
    val_ce = history.pop("val_cross_entropy") if "val_cross_entropy" in history else None
    mdata.uns[key_added] = {
        "params": {"x": data.x, "y": data.y, **params},
        "history": history,
        "pretrain_val_cross_entropy": (
            np.zeros(0) if val_ce is None else val_ce.dropna().to_numpy(dtype=np.float64)
        ),
        "features_dropped": np.asarray(
            [str(f) for f in target.var_names[~data.feature_mask]], dtype=object
        ),
        "selected_genes": np.asarray(sel_names, dtype=object),
        **train_scores(data, pred, split),
        **scores,
        **(
            {"heldout_cells": np.asarray(rna.obs_names[split.test], dtype=object)} if scores else {}
        ),
        **({} if record is None else {"prediction_interval": record}),
    }
    return sel_names
