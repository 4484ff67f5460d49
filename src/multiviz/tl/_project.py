"""``mv.tl.project``: place new cells into a trained sBNN or sRRR latent."""

from __future__ import annotations

import mudata as md
import numpy as np
import pandas as pd

from .. import _logging as logg
from .._docs import COPY, doc_params
from .._validate import (
    InputError,
    check_bool,
    check_fit_finite,
    check_str,
    check_unique_names,
    check_writable,
)
from ._checks import check_new_cells
from ._intervals import bounds
from ._paired_data import PairedArrays


def paired_preprocessing(mdata: md.MuData, data: PairedArrays) -> dict:
    """What a model needs to treat new cells as its training cells were treated.

    Returns a dict of plain lists/arrays (it is saved with the model): the modality
    names, the model's input genes, their training z-scoring (``var["zscore_mean"/
    "zscore_std"]`` of :func:`multiviz.pp.prepare_paired`; None when absent), the genes
    the library size was summed over and the training median library size, and the
    target features (all of them, and those kept).
    """
    rna, target = mdata.mod[data.x], mdata.mod[data.y]
    genes = [str(g) for g in data.gene_names]
    prep: dict = {"x": data.x, "y": data.y, "genes": genes, "x_mean": None, "x_std": None}
    info = mdata.uns.get("prepare_paired", {})
    if {"zscore_mean", "zscore_std"} <= set(rna.var) and "median_library_size" in info:
        var = rna.var.loc[data.gene_names]
        prep["x_mean"] = var["zscore_mean"].to_numpy(np.float64)
        prep["x_std"] = var["zscore_std"].to_numpy(np.float64)
        hv = (
            rna.var["highly_variable"].to_numpy(bool)
            if "highly_variable" in rna.var
            else np.ones(rna.n_vars, bool)
        )
        prep["library_genes"] = [str(g) for g in rna.var_names[hv]]
        prep["median_library_size"] = float(info["median_library_size"])
    prep["features"] = [str(f) for f in target.var_names]
    prep["features_kept"] = [str(f) for f in data.feature_names]
    return prep


@doc_params(copy=COPY)
def project(
    mdata: md.MuData,
    model,
    *,
    key_added: str = "sbnn",
    copy: bool = False,
):
    """Map new cells into the latent of a trained sBNN and predict their targets.

    The new cells get the **training** preprocessing, not their own: their raw counts
    (``layers["counts"]`` or integer ``.X`` of the gene modality) are normalised to the
    training median library size over the training library genes, log2-transformed and
    z-scored with the training genes' means and SDs; genes are matched by name and only
    the genes the model kept are needed (a missing one is an error). Projecting the
    training cells reproduces ``obsm["X_sbnn"]`` exactly.

    For sRRR (linear), the fitted model lives in the reference object:
    ``latent = (X_new - uns["srrr"]["x_mean"]) @ varm["srrr_loadings"]`` and the
    predictions ``latent @ uns["srrr"]["V"].T + uns["srrr"]["y_mean"]``, with ``X_new``
    z-scored by the reference's ``var["zscore_mean"/"zscore_std"]``.

    Parameters
    ----------
    mdata
        New cells (a MuData with the model's gene modality, e.g. ``"rna"``); a target
        modality is not needed.
    model
        A trained :class:`~multiviz.models.SBNN`, e.g. from
        ``mv.tl.sbnn(ref, return_model=True)`` or ``mv.models.SBNN.load(path, adata=ref)``.
    key_added
        Writes ``mdata[x].obsm[f"X_{key_added}"]`` (the latent) and
        ``mdata[x].obsm[f"{key_added}_pred"]`` (a DataFrame of the predicted targets,
        z-scores of the training targets), ``[f"{key_added}_pred_lower"]`` and
        ``[f"{key_added}_pred_upper"]`` (the bounds of the model's conformal prediction
        interval, when :func:`multiviz.tl.sbnn` could calibrate one on its held-out
        cells: ``model.prediction_interval_``), and the same in ``mdata.obsm`` when the
        MuData's cells are those of the gene modality.
    {copy}

    Returns
    -------
    ``None`` or the copy.

    Examples
    --------
    >>> model = mv.tl.sbnn(reference, return_model=True)
    >>> mv.tl.project(query, model)
    >>> query.obsm["X_sbnn"].shape
    (n_query_cells, 2)
    """
    from ..models.sbnn import SBNN

    if not isinstance(model, SBNN):
        raise InputError(
            f"`model` must be a trained multiviz.models.SBNN, got {type(model).__name__}. "
            "For sRRR, see this function's docstring (the loadings in `varm` project)."
        )
    check_str(key_added, "key_added")
    check_bool(copy, "copy")
    if not isinstance(mdata, md.MuData):
        raise InputError(f"`mdata` must be a MuData, got {type(mdata).__name__}.")
    if not copy:
        check_writable(mdata, "mdata")
    check_unique_names(mdata, "mdata")
    check_new_cells(mdata, (model.preprocessing_ or {}).get("x", "rna"))
    latent = model.get_latent_representation(mdata)
    pred = model.predict(mdata)
    check_fit_finite(
        [latent, pred], model="sBNN", phase="projection", hint="Check the new cells' counts"
    )
    if copy:
        mdata = mdata.copy()
    rna = mdata.mod[(model.preprocessing_ or {}).get("x", "rna")]
    frames = {"pred": pd.DataFrame(pred.to_numpy(), index=rna.obs_names, columns=pred.columns)}
    record = getattr(model, "prediction_interval_", None)
    if record is not None:
        lower, upper = bounds(frames["pred"].to_numpy(), record, pred.columns)
        frames["pred_lower"] = pd.DataFrame(lower, index=rna.obs_names, columns=pred.columns)
        frames["pred_upper"] = pd.DataFrame(upper, index=rna.obs_names, columns=pred.columns)
    same_cells = mdata.n_obs == rna.n_obs and np.array_equal(mdata.obs_names, rna.obs_names)
    for where in (rna, mdata) if same_cells else (rna,):
        where.obsm[f"X_{key_added}"] = latent
        for name, frame in frames.items():
            where.obsm[f"{key_added}_{name}"] = frame
    logg.info("    projected %d cells into the sBNN latent (obsm['X_%s'])", mdata.n_obs, key_added)
    return mdata if copy else None
