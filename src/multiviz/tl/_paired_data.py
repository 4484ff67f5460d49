"""Shared input handling of ``mv.tl.sbnn`` / ``mv.tl.srrr`` / ``mv.tl.cross_validate``.

Everything here reads the user's MuData and returns new arrays; nothing is written.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from mudata import MuData
from scipy import sparse

from .. import _logging as logg
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
from .._warnings import DataWarning


@dataclass
class PairedArrays:
    """Dense model inputs for one fit (genes already restricted by ``genes``).

    ``feature_mask`` marks the target features kept (``None``: all); constant features
    are dropped by :func:`full_arrays` / :func:`fold_arrays` because their R² is undefined.
    """

    X: np.ndarray
    Y: np.ndarray
    gene_mask: np.ndarray
    gene_names: pd.Index
    feature_names: pd.Index
    x: str
    y: str
    feature_mask: np.ndarray | None = None

    def full_predictions(self, pred: np.ndarray) -> np.ndarray:
        """Predictions for every target feature of the modality.

        Dropped (constant) features are predicted exactly: they are 0 after z-scoring.
        """
        if self.feature_mask is None or self.feature_mask.all():
            return pred
        out = np.zeros((pred.shape[0], self.feature_mask.size), dtype=pred.dtype)
        out[:, self.feature_mask] = pred
        return out


def varying_features(Y: np.ndarray, names, y: str) -> np.ndarray:
    """Mask of target features that vary; warn naming the constant ones (R² undefined)."""
    Y = np.asarray(Y)
    keep = np.ptp(Y, axis=0) > 0 if Y.shape[0] else np.ones(Y.shape[1], bool)
    if not keep.any():
        raise InputError(
            f"Every feature of `mdata[{y!r}]` is constant over these cells: there is nothing "
            "to predict. Check the target modality `y`."
        )
    if not keep.all():
        dropped = [str(n) for n in np.asarray(names)[~keep]]
        logg.warning(
            "%d constant target feature(s) of %r dropped (their R² is undefined; they are "
            "predicted as their constant value): %s",
            len(dropped),
            y,
            ", ".join(dropped[:10]) + (" ..." if len(dropped) > 10 else ""),
            category=DataWarning,
        )
    return keep


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
    check_finite(X, f"mdata[{x!r}].{'X' if layer is None else f'layers[{layer!r}]'}")
    check_finite(
        Y,
        f"mdata[{y!r}].{'X' if y_layer is None else f'layers[{y_layer!r}]'}",
        names=target.var_names,
    )
    return y, rna, target, mask


def full_arrays(
    mdata: MuData, *, x="rna", y=None, genes=None, layer=None, y_layer=None
) -> PairedArrays:
    """The model inputs as stored (``X`` of each modality: z-scored after ``prepare_paired``)."""
    y, rna, target, mask = resolve_inputs(mdata, x, y, genes, layer, y_layer)
    M = get_layer(rna, layer)
    # select the genes first: only the kept genes are ever made dense
    X = _dense(M if mask.all() else M[:, np.flatnonzero(mask)]).astype(np.float32, copy=False)
    Y = _dense(get_layer(target, y_layer)).astype(np.float32, copy=False)
    keep = varying_features(Y, target.var_names, y)
    return PairedArrays(
        X, Y[:, keep], mask, rna.var_names[mask], target.var_names[keep], x, y, keep
    )


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
    keep = varying_features(targ[train], target.var_names, y)
    targ = targ[:, keep]
    xm, xs = fit_zscore(expr[train])
    ym, ys = fit_zscore(targ[train])
    names = (rna.var_names[mask], target.var_names[keep])
    tr = PairedArrays(
        apply_zscore(expr[train], xm, xs),
        apply_zscore(targ[train], ym, ys),
        mask,
        *names,
        x,
        y,
        keep,
    )
    te = PairedArrays(
        apply_zscore(expr[test], xm, xs), apply_zscore(targ[test], ym, ys), mask, *names, x, y, keep
    )
    return tr, te
