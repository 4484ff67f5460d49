"""Inputs of a trained :class:`SBNN` for cells it was not trained on.

A model trained through :func:`multiviz.tl.sbnn` carries ``model.preprocessing_``: the
training object's normalisation (median library size, the genes the library size was
summed over) and the z-scoring of every input gene (``var["zscore_mean"/"zscore_std"]``
written by :func:`multiviz.pp.prepare_paired`). New cells are normalised with those
*training* statistics, never their own, and genes are matched by name. Without that
record (a model set up by hand) the new object's ``.X`` is used as it is, matched by name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from mudata import MuData
from scipy import sparse

from ... import _logging as logg
from ..._validate import InputError, _values, get_modality
from ..._warnings import DataWarning


def _dense(M) -> np.ndarray:
    return M.toarray() if sparse.issparse(M) else np.asarray(M)


def _counts_of(rna, where: str):
    """Raw counts of a new modality: ``layers["counts"]``, else an integer ``.X``."""
    if "counts" in rna.layers:
        return rna.layers["counts"]
    vals = _values(rna.X)
    if vals.size and vals.min() >= 0 and np.array_equal(vals, np.round(vals)):
        return rna.X
    raise InputError(
        f"{where} needs raw counts to apply the training normalisation: a "
        "`layers['counts']` or integer counts in `.X` (as `mv.pp.prepare_paired` keeps them)."
    )


def new_cell_inputs(
    mdata: MuData, genes: pd.Index, preprocessing: dict | None, where: str
) -> np.ndarray:
    """Model inputs ``(n_cells, len(genes))`` for the cells of ``mdata``.

    Parameters
    ----------
    mdata
        New cells; the gene modality is ``preprocessing["x"]`` (default ``"rna"``).
    genes
        The model's input genes needed (e.g. the genes kept after pruning), by name.
    preprocessing
        ``model.preprocessing_`` (see the module docstring), or None.
    where
        Name of the calling function, for messages.
    """
    if not isinstance(mdata, MuData):
        raise InputError(
            f"{where} needs a MuData with the gene modality, got {type(mdata).__name__}."
        )
    prep = preprocessing or {}
    x = prep.get("x", "rna")
    rna = get_modality(mdata, x, "x")
    if not rna.var_names.is_unique:
        raise InputError(
            f"`mdata[{x!r}]` has duplicated var_names; run "
            f"`mdata[{x!r}].var_names_make_unique()` first."
        )
    genes = pd.Index([str(g) for g in genes])
    missing = genes.difference(rna.var_names)
    if len(missing):
        raise InputError(
            f"{len(missing)} of the {len(genes)} genes the model needs are missing from "
            f"`mdata[{x!r}].var_names`: {list(missing[:10])}. The model uses exactly these "
            "genes; add them (zeros if truly unmeasured) or retrain on the shared genes."
        )
    cols = rna.var_names.get_indexer(genes)
    if prep.get("x_mean") is None:
        return _dense(rna.X[:, cols]).astype(np.float32)
    from ...pp._prepare_paired import log2_scaled

    counts = _counts_of(rna, where)
    mean = pd.Series(prep["x_mean"], index=prep["genes"])[genes].to_numpy()
    std = pd.Series(prep["x_std"], index=prep["genes"])[genes].to_numpy()
    lib_genes = pd.Index(prep["library_genes"])
    present = rna.var_names.get_indexer(lib_genes)
    present = present[present >= 0]
    if present.size == 0:
        raise InputError(
            f"None of the {len(lib_genes)} genes the training library size was summed over is in "
            f"`mdata[{x!r}]`; the training normalisation cannot be applied."
        )
    if present.size < len(lib_genes):
        logg.warning(
            "%d of the %d library-size genes of the training data are missing from the new "
            "cells; their library sizes are summed over the %d present.",
            len(lib_genes) - present.size,
            len(lib_genes),
            present.size,
            category=DataWarning,
        )
    library = np.asarray(counts[:, present].sum(axis=1)).ravel()
    median = float(prep["median_library_size"])
    scale = np.divide(median, library, out=np.zeros(library.shape), where=library > 0)
    expr = _dense(log2_scaled(counts[:, cols], scale))
    return ((expr - mean) / std).astype(np.float32)


def internal_mudata(X, Y, genes, features) -> MuData:
    """The model's own MuData (``"rna"`` → ``"y"``) built from arrays."""
    import anndata as ad

    from ..._mudata import quiet_update

    rna = ad.AnnData(
        np.asarray(X, dtype=np.float32), var=pd.DataFrame(index=pd.Index(genes, dtype=str))
    )
    tgt = ad.AnnData(
        np.asarray(Y, dtype=np.float32), var=pd.DataFrame(index=pd.Index(features, dtype=str))
    )
    tgt.obs_names = rna.obs_names
    with quiet_update():
        return MuData({"rna": rna, "y": tgt})


def internal_from_user(mdata: MuData, preprocessing: dict) -> MuData:
    """The model's own MuData rebuilt from the user's (training) object, by name."""
    x, y = preprocessing["x"], preprocessing["y"]
    rna, target = get_modality(mdata, x, "x"), get_modality(mdata, y, "y")
    genes = pd.Index(preprocessing["genes"])
    feats = pd.Index(preprocessing["features_kept"])
    for idx, mod, name in ((genes, rna, x), (feats, target, y)):
        missing = idx.difference(mod.var_names)
        if len(missing):
            raise InputError(
                f"`adata[{name!r}]` lacks {len(missing)} of the model's variables: "
                f"{list(missing[:10])}. Load the model onto the object it was trained on."
            )
    X = _dense(rna.X[:, rna.var_names.get_indexer(genes)])
    Y = _dense(target.X[:, target.var_names.get_indexer(feats)])
    inner = internal_mudata(X, Y, genes, feats)
    for mod in inner.mod.values():
        mod.obs_names = rna.obs_names
    inner.update()
    return inner
