"""The sBNN paper's preprocessing recipe for paired data (RNA counts → targets)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import scanpy as sc
from mudata import MuData
from scipy import sparse

from .. import _logging as logg
from .._mudata import quiet_update
from .._validate import (
    InputError,
    check_counts,
    check_finite,
    check_min_obs,
    check_n_top,
    check_option,
    check_paired,
    get_modality,
    resolve_target,
)
from ._gene_selection import detection_gene_selection
from ._zscore import apply_zscore, fit_zscore

_READS_VS_UMIS = 1e5  # median library size above which counts are taken to be reads


def _auto_threshold(counts) -> float:
    """30 for read counts (Smart-seq2, median library > 1e5), 0 for UMI counts (sBNN)."""
    library = np.asarray(counts.sum(axis=1)).ravel()
    return 30.0 if np.median(library) > _READS_VS_UMIS else 0.0


def median_depth_scale(
    library: np.ndarray, rows: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """Per-cell factors that bring each library to the median library size (sBNN recipe).

    The median is taken over ``rows`` (e.g. the training cells of a fold), default all cells;
    cells with an empty library get a factor of 0.

    Returns
    -------
    The factors and the median library size.
    """
    library = np.asarray(library, dtype=np.float64).ravel()
    median = float(np.median(library if rows is None else library[rows]))
    return np.divide(median, library, out=np.zeros_like(library), where=library > 0), median


def log2_scaled(counts, scale: np.ndarray):
    """``log2(counts * scale[:, None] + 1)`` as float32; sparse input stays sparse."""
    if sparse.issparse(counts):
        out = sparse.csr_matrix(sparse.diags(scale) @ sparse.csr_matrix(counts, dtype=np.float64))
        out.data = np.log2(out.data + 1.0)
        return out.astype(np.float32)
    return np.log2(np.asarray(counts, dtype=np.float64) * scale[:, None] + 1.0).astype(np.float32)


def prepare_paired(
    mdata: MuData,
    x: str = "rna",
    y: str | None = None,
    *,
    n_top_genes: int = 1000,
    gene_selection: Literal[
        "detection", "seurat_v3", "seurat", "cell_ranger", "none"
    ] = "detection",
    threshold: float | Literal["auto"] = "auto",
    layer: str | None = None,
    log_features: Sequence[str] | None = None,
    drop_nan: bool = True,
    subset: bool = True,
    min_cells: int = 10,
    copy: bool = False,
) -> MuData | None:
    """Preprocess paired data with the sBNN paper's recipe.

    Steps (Bernaerts, Berens & Kobak 2022, Methods, "Data sources and preprocessing"):

    1. drop cells with NaN in any target feature (``drop_nan``; the count is logged);
    2. select ``n_top_genes`` genes — by default with the detection-rate heuristic of
       Kobak & Berens 2019 (:func:`multiviz.pp.detection_gene_selection`), or through
       :func:`scanpy.pp.highly_variable_genes` (``"seurat_v3"`` on counts, ``"seurat"`` /
       ``"cell_ranger"`` on log data), or keep all genes (``"none"``);
    3. divide each cell's counts by its library size over the selected genes and multiply
       by the median library size; ``log2(x + 1)``;
    4. z-score each gene and each target feature (after an optional natural log of
       ``log_features``).

    Nothing is lost: raw counts stay in ``layers["counts"]``, target values in
    ``layers["raw"]``, and the fitted centring/scaling in ``var`` so models can refit it
    inside cross-validation folds and apply it to new cells.

    Parameters
    ----------
    mdata
        MuData with raw counts in modality ``x`` and targets in ``y``, same cells.
    x
        Modality with raw RNA counts.
    y
        Target modality (electrophysiology or protein); default ``"ephys"``, else ``"protein"``.
    n_top_genes
        Genes to keep (sBNN: 1000).
    gene_selection
        Selection method, see above.
    threshold
        Detection threshold for ``"detection"``; ``"auto"`` is 30 for read counts
        (median library > 10⁵, Smart-seq2 as in the paper's M1 data) and 0 for UMI counts.
    layer
        Layer of ``x`` holding raw counts (``.X`` when None).
    log_features
        Target features to transform with the natural log before z-scoring (must be > 0).
    drop_nan
        Drop cells with NaN targets; if False, NaN targets raise an error.
    subset
        Subset ``x`` to the selected genes (the paper's setting). If False all genes are
        kept, normalised by the library size over the selected genes, and the selection
        is only flagged in ``var["highly_variable"]``.
    min_cells
        Minimum number of cells detecting a gene for ``"detection"`` (Kobak & Berens: 10).
    copy
        Return a processed copy instead of modifying ``mdata``.

    Returns
    -------
    The processed copy if ``copy=True``, else None. Writes

    - ``mdata[x].layers["counts"]``: raw counts (sparse stays sparse);
    - ``mdata[x].layers["log2norm"]``: log2 of median-depth-normalised counts;
    - ``mdata[x].X``: z-scored ``log2norm`` (dense float32);
    - ``mdata[x].var["highly_variable"]``, ``var["zscore_mean"]``, ``var["zscore_std"]``;
    - ``mdata[y].layers["raw"]``, ``layers["unscaled"]`` (after the log), ``X`` z-scored,
      ``var["zscore_mean"]``, ``var["zscore_std"]``, ``var["log_transformed"]``;
    - ``mdata.uns["prepare_paired"]``: parameters, dropped cells, median library size.
    """
    check_option(
        gene_selection,
        ["detection", "seurat_v3", "seurat", "cell_ranger", "none"],
        "gene_selection",
    )
    rna = get_modality(mdata, x, "x")
    y = resolve_target(mdata, y)
    if y == x:
        raise InputError(f"`x` and `y` must be different modalities; both are {x!r}.")
    target = get_modality(mdata, y, "y")
    check_paired(mdata, [x, y], ["`x`", "`y`"])
    counts = rna.layers[layer] if layer is not None else rna.X
    if layer is not None and layer not in rna.layers:
        raise InputError(
            f"`layer={layer!r}` is not a layer of {x!r}; available: {list(rna.layers)}."
        )
    check_counts(counts, f"mdata[{x!r}]" + (f".layers[{layer!r}]" if layer else ".X"))
    y_values = target.X.toarray() if sparse.issparse(target.X) else np.asarray(target.X)
    check_finite(y_values, f"mdata[{y!r}].X", allow_nan=drop_nan)
    y_values = np.array(y_values, dtype=np.float64)

    keep = ~np.isnan(y_values).any(axis=1)
    n_dropped = int((~keep).sum())
    check_min_obs(int(keep.sum()), 3, f"mdata (cells with complete `{y}` targets)")
    log_features = list(log_features or [])
    missing = [f for f in log_features if f not in target.var_names]
    if missing:
        raise InputError(
            f"`log_features` names features not in mdata[{y!r}].var_names: {missing}; "
            f"available: {list(target.var_names)}."
        )
    log_mask = target.var_names.isin(log_features)
    if log_mask.any() and (y_values[keep][:, log_mask] <= 0).any():
        raise InputError("`log_features` must be strictly positive to take their log.")
    if gene_selection != "none":
        check_n_top(n_top_genes, rna.n_vars)

    # -- compute everything before writing anything -------------------------------------------
    counts_kept = counts[keep] if n_dropped else counts
    if gene_selection == "detection":
        thr = _auto_threshold(counts_kept) if threshold == "auto" else float(threshold)
        probe = sc.AnnData(counts_kept)
        selected = detection_gene_selection(
            probe, n_top_genes, threshold=thr, min_cells=min_cells, inplace=False
        )
    elif gene_selection == "none":
        thr = None
        selected = np.ones(rna.n_vars, dtype=bool)
    else:
        thr = None
        probe = sc.AnnData(sparse.csr_matrix(counts_kept, dtype=np.float32))
        if gene_selection != "seurat_v3":
            sc.pp.normalize_total(probe)
            sc.pp.log1p(probe)
        sc.pp.highly_variable_genes(probe, n_top_genes=n_top_genes, flavor=gene_selection)
        selected = probe.var["highly_variable"].to_numpy()

    selected_counts = counts_kept[:, selected]
    scale, target_sum = median_depth_scale(selected_counts.sum(axis=1))
    genes_for_x = selected if subset else np.ones(rna.n_vars, dtype=bool)
    x_counts = counts_kept[:, genes_for_x]
    log2norm = log2_scaled(x_counts, scale)
    x_mean, x_std = fit_zscore(log2norm)
    x_scaled = apply_zscore(log2norm, x_mean, x_std)

    y_kept = y_values[keep]
    y_unscaled = y_kept.copy()
    y_unscaled[:, log_mask] = np.log(y_unscaled[:, log_mask])
    y_mean, y_std = fit_zscore(y_unscaled)
    y_scaled = apply_zscore(y_unscaled, y_mean, y_std)

    # -- write --------------------------------------------------------------------------------
    if copy:
        mdata = mdata.copy()
    out_rna, out_y = mdata.mod[x], mdata.mod[y]
    if n_dropped:
        dropped_cells = list(mdata.obs_names[~keep])
        for mod in mdata.mod.values():
            mod._inplace_subset_obs(mod.obs_names.isin(mdata.obs_names[keep]))
        with quiet_update():
            mdata.update()
    else:
        dropped_cells = []
    raw_counts = out_rna.layers[layer] if layer is not None else out_rna.X
    out_rna.var["highly_variable"] = selected
    if subset:
        out_rna._inplace_subset_var(selected)
        raw_counts = raw_counts[:, selected]
    out_rna.layers["counts"] = raw_counts
    out_rna.layers["log2norm"] = log2norm
    out_rna.X = x_scaled
    out_rna.var["zscore_mean"] = x_mean
    out_rna.var["zscore_std"] = x_std
    out_y.layers["raw"] = y_kept.astype(np.float32)
    out_y.layers["unscaled"] = y_unscaled.astype(np.float32)
    out_y.X = y_scaled
    out_y.var["log_transformed"] = log_mask
    out_y.var["zscore_mean"] = y_mean
    out_y.var["zscore_std"] = y_std
    with quiet_update():
        mdata.update()
    mdata.uns["prepare_paired"] = {
        "params": {
            "x": x,
            "y": y,
            "n_top_genes": int(n_top_genes),
            "gene_selection": gene_selection,
            "threshold": thr if thr is not None else "n/a",
            "layer": layer if layer is not None else "X",
            "log_features": log_features,
            "subset": subset,
            "min_cells": int(min_cells),
        },
        "n_cells_dropped": n_dropped,
        "dropped_cells": dropped_cells,
        "median_library_size": target_sum,
        "n_genes_selected": int(selected.sum()),
    }
    logg.info(
        "prepare_paired: kept %d cells (dropped %d with NaN targets), %d genes selected by %r, "
        "median library size %.4g, z-scored %d genes and %d %s features",
        int(keep.sum()),
        n_dropped,
        int(selected.sum()),
        gene_selection,
        target_sum,
        out_rna.n_vars,
        out_y.n_vars,
        y,
    )
    return mdata if copy else None
