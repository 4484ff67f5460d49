"""Shared input handling of ``mv.tl.sbnn`` / ``mv.tl.srrr`` / ``mv.tl.cross_validate``.

Everything here reads the user's MuData and returns new arrays; nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from mudata import MuData
from scipy import sparse

from .._validate import (
    InputError,
    check_finite,
    check_mudata,
    check_paired,
    get_layer,
    get_modality,
    resolve_target,
    resolve_var_mask,
)


@dataclass
class PairedArrays:
    """Dense model inputs for one fit (genes already restricted by ``genes``)."""

    X: np.ndarray
    Y: np.ndarray
    gene_mask: np.ndarray
    gene_names: pd.Index
    feature_names: pd.Index
    x: str
    y: str


def _dense(M) -> np.ndarray:
    return M.toarray() if sparse.issparse(M) else np.asarray(M)


def resolve_inputs(mdata, x: str, y: str | None, genes, layer: str | None, y_layer: str | None):
    """Validate modalities, pairing and the gene mask; return ``(y, rna, target, mask)``."""
    check_mudata(mdata)
    rna = get_modality(mdata, x, "x")
    y = resolve_target(mdata, y, "y")
    target = mdata.mod[y]
    check_paired(mdata, [x, y], ["`x`", "`y`"])
    mask = resolve_var_mask(rna, genes, "genes")
    X = get_layer(rna, layer, "layer")
    Y = get_layer(target, y_layer, "y_layer")
    check_finite(X, f"mdata[{x!r}] ({'X' if layer is None else layer})")
    check_finite(
        Y,
        f"mdata[{y!r}] ({'X' if y_layer is None else y_layer}); NaN targets must be "
        "dropped first, e.g. with `mv.pp.prepare_paired(drop_nan=True)`",
    )
    return y, rna, target, mask


def full_arrays(
    mdata: MuData, *, x="rna", y=None, genes=None, layer=None, y_layer=None
) -> PairedArrays:
    """The model inputs as stored (``X`` of each modality: z-scored after ``prepare_paired``)."""
    y, rna, target, mask = resolve_inputs(mdata, x, y, genes, layer, y_layer)
    X = _dense(get_layer(rna, layer))[:, mask].astype(np.float32)
    Y = _dense(get_layer(target, y_layer)).astype(np.float32)
    return PairedArrays(X, Y, mask, rna.var_names[mask], target.var_names, x, y)


def fold_arrays(mdata: MuData, train: np.ndarray, test: np.ndarray, *, x="rna", y=None, genes=None):
    """Training/test arrays with all preprocessing statistics fitted on ``train`` only.

    Gene expression: if ``layers["counts"]`` exists, library-size normalisation uses the
    training cells' median library size (over the modality's genes, or the
    ``highly_variable`` ones), then ``log2(x + 1)``; otherwise ``layers["log2norm"]``,
    otherwise ``X``. Each gene and each target is then z-scored with training-fold
    means and SDs (targets from ``layers["unscaled"]`` when present), so the test fold
    never informs a fitted quantity.
    """
    from ..pp import apply_zscore, fit_zscore
    from ..pp._prepare_paired import log2_scaled, median_depth_scale

    y, rna, target, mask = resolve_inputs(mdata, x, y, genes, None, None)
    if "counts" in rna.layers:
        counts = rna.layers["counts"]
        lib_genes = (
            rna.var["highly_variable"].to_numpy(bool)
            if "highly_variable" in rna.var
            else np.ones(rna.n_vars, bool)
        )
        scale, _ = median_depth_scale(counts[:, lib_genes].sum(axis=1), rows=train)
        expr = log2_scaled(counts[:, mask], scale)
    elif "log2norm" in rna.layers:
        expr = rna.layers["log2norm"][:, mask]
    else:
        expr = rna.X[:, mask]
    expr = _dense(expr)
    targ = _dense(target.layers["unscaled"] if "unscaled" in target.layers else target.X)
    xm, xs = fit_zscore(expr[train])
    ym, ys = fit_zscore(targ[train])
    names = (rna.var_names[mask], target.var_names)
    tr = PairedArrays(
        apply_zscore(expr[train], xm, xs), apply_zscore(targ[train], ym, ys), mask, *names, x, y
    )
    te = PairedArrays(
        apply_zscore(expr[test], xm, xs), apply_zscore(targ[test], ym, ys), mask, *names, x, y
    )
    return tr, te


def check_n_genes(n_genes: int, n_available: int) -> None:
    """``n_genes`` must not exceed the genes available to the model."""
    if isinstance(n_genes, bool) or not isinstance(n_genes, int | np.integer) or n_genes < 1:
        raise InputError(f"`n_genes` must be a positive integer, got {n_genes!r}.")
    if n_genes > n_available:
        raise InputError(
            f"`n_genes`={n_genes} exceeds the {n_available} genes available to the model; "
            "lower `n_genes` or widen `genes`."
        )
