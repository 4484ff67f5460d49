"""The sBNN paper's preprocessing recipe for paired data (RNA counts → targets)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
from anndata import AnnData
from mudata import MuData
from scipy import sparse

from .. import _logging as logg
from .._blocks import row_slices
from .._mudata import quiet_update
from .._validate import (
    InputError,
    check_counts,
    check_finite,
    check_min_obs,
    check_n_top,
    check_paired,
    get_layer,
    get_modality,
    resolve_target,
)
from .._warnings import DataWarning
from ._args import TECHNICAL_GENES, all_excluded_error, check_prepare_args, excluded_mask
from ._gene_selection import detection_gene_selection
from ._targets import (
    check_log_features,
    check_some_varying,
    resolve_target_transform,
    transform_targets,
)
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
        counts = sparse.csr_matrix(counts)
        data, indptr = np.empty(counts.nnz, dtype=np.float32), counts.indptr
        for rows in row_slices(counts.shape[0]):  # float64 temporaries of one block of cells
            lo, hi = indptr[rows.start], indptr[rows.stop]
            row_scale = np.repeat(scale[rows], np.diff(indptr[rows.start : rows.stop + 1]))
            data[lo:hi] = np.log2(counts.data[lo:hi].astype(np.float64) * row_scale + 1.0)
        return sparse.csr_matrix((data, counts.indices.copy(), indptr.copy()), shape=counts.shape)
    return np.log2(np.asarray(counts, dtype=np.float64) * scale[:, None] + 1.0).astype(np.float32)


def _select_genes(
    counts, candidates: np.ndarray, n_top: int, method: str, threshold, min_cells: int
) -> tuple[np.ndarray, float | None]:
    """Boolean mask over all genes: ``n_top`` genes chosen among ``candidates`` by ``method``."""
    selected = np.zeros(candidates.size, dtype=bool)
    if method == "none":
        return candidates.copy(), None
    sub = counts if candidates.all() else counts[:, candidates]
    if method == "detection":
        thr = _auto_threshold(counts) if threshold == "auto" else float(threshold)
        chosen = detection_gene_selection(
            AnnData(sub), n_top, threshold=thr, min_cells=min_cells, inplace=False
        )
    else:
        import scanpy as sc  # only for scanpy's own flavours; keeps `mv.pp` light to import

        thr = None
        probe = AnnData(sparse.csr_matrix(sub, dtype=np.float32))
        if method != "seurat_v3":
            sc.pp.normalize_total(probe)
            sc.pp.log1p(probe)
        sc.pp.highly_variable_genes(probe, n_top_genes=n_top, flavor=method)
        chosen = probe.var["highly_variable"].to_numpy()
    selected[np.flatnonzero(candidates)[chosen]] = True
    return selected, thr


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
    target_transform: Literal["auto", "clr", "log1p", "zscore"] | None = "auto",
    log_features: Sequence[str] | None = None,
    exclude_genes: str | None = TECHNICAL_GENES,
    exclude_ribosomal: bool = False,
    drop_nan: bool = True,
    subset: bool = True,
    min_cells: int = 10,
    copy: bool = False,
) -> MuData | None:
    """Preprocess paired data with the sBNN paper's recipe (CLR for ADT counts).

    Steps (Bernaerts, Berens & Kobak 2022, Methods, "Data sources and preprocessing"):

    1. drop cells with NaN in any target feature (``drop_nan``; the count is logged);
    2. drop technical genes from the predictors: names matching ``exclude_genes``
       (default: mitochondrial ``MT-``/``mt-`` genes, ``ERCC-`` spike-ins and ribosomal
       RNA genes such as ``RNA28S5``/``Rn45s``), plus
       ribosomal protein genes if ``exclude_ribosomal``; their names are logged and kept
       in ``uns["prepare_paired"]["excluded_genes"]``;
    3. select ``n_top_genes`` of the remaining genes — by default with the detection-rate
       heuristic of Kobak & Berens 2019 (:func:`multiviz.pp.detection_gene_selection`),
       or through :func:`scanpy.pp.highly_variable_genes` (``"seurat_v3"`` on counts,
       ``"seurat"`` / ``"cell_ranger"`` on log data), or keep them all (``"none"``);
    4. divide each cell's counts by its library size over the selected genes and multiply
       by the median library size; ``log2(x + 1)``; z-score each gene;
    5. transform the targets (``target_transform``, see below) and z-score each feature.

    Nothing is lost: raw counts stay in ``layers["counts"]``, target values in
    ``layers["raw"]``, and the fitted centring/scaling in ``var`` so models can refit it
    inside cross-validation folds and apply it to new cells.

    Parameters
    ----------
    mdata
        MuData with raw counts in modality ``x`` and targets in ``y``, same cells. Views
        (``mdata[:300]``) are refused unless ``copy=True``; backed objects are refused.
    x
        Modality with raw RNA counts.
    y
        Target modality (electrophysiology or protein); default ``"ephys"``, else ``"protein"``.
    n_top_genes
        Genes to keep (sBNN: 1000). If fewer genes remain after the exclusion of technical
        genes, all remaining genes are kept and a warning says so.
    gene_selection
        Selection method, see above.
    threshold
        Detection threshold for ``"detection"``; ``"auto"`` is 30 for read counts
        (median library > 10⁵, Smart-seq2 as in the paper's M1 data) and 0 for UMI counts.
    layer
        Layer of ``x`` holding raw counts (``.X`` when None).
    target_transform
        Transform of the targets before the z-scoring:

        - ``"clr"``: centred log-ratio per cell, ``log1p(x / g)`` with ``g`` the cell's
          geometric mean over the features (muon's ``mu.prot.pp.clr(adata, axis=1)``;
          zeros are fine). The scverse convention for ADT counts.
        - ``"log1p"``: natural ``log(1 + x)`` of every feature.
        - ``"zscore"``: none, raw values are z-scored. The sBNN paper's choice for its
          ephys features *and* for the CBMC CITE-seq ADT counts.
        - ``None``: targets are neither transformed nor z-scored (already normalised data).
        - ``"auto"`` (default): ``"clr"`` when ``y`` is a protein modality (``protein``,
          ``prot``, ``adt``, ``cite``) holding counts, else ``"zscore"`` (the paper's recipe
          for ephys; also when ``log_features`` are given). On the PBMC CITE-seq fixtures
          CLR gave a higher cross-validated R² than raw z-scoring (sRRR-2, 10 folds:
          0.39 vs 0.25 and 0.36 vs 0.24; ``benchmarks/results/first_hour_pbmc.json``).
    log_features
        Target features to transform with the natural log before z-scoring (must be > 0;
        only with ``target_transform="zscore"`` or None).
    exclude_genes
        Regular expression; genes whose name matches are never predictors (removed with
        ``subset=True``, never flagged ``highly_variable`` otherwise). Default
        :data:`multiviz.pp._args.TECHNICAL_GENES` (``MT-``/``mt-``, ``ERCC-`` and rRNA
        genes ``RNA28S5``, ``RNA18S5``, ``RNA45SN*``, ``RNA5-8S*``, mouse ``Rn45s`` …); None
        keeps every gene (the paper's recipe on M1).
    exclude_ribosomal
        Also exclude ribosomal protein genes (``RPL``/``RPS``, ``Rpl``/``Rps``).
    drop_nan
        Drop cells with NaN targets; if False, NaN targets raise an error.
    subset
        Subset ``x`` to the selected genes (the paper's setting). If False all genes are
        kept, normalised by the library size over the selected genes, and the selection
        is only flagged in ``var["highly_variable"]``.
    min_cells
        Minimum number of cells detecting a gene for ``"detection"`` (Kobak & Berens: 10).
    copy
        Return a processed copy instead of modifying ``mdata`` (works on views too).

    Returns
    -------
    The processed copy if ``copy=True``, else None. Writes

    - ``mdata[x].layers["counts"]``: raw counts (sparse stays sparse);
    - ``mdata[x].layers["log2norm"]``: log2 of median-depth-normalised counts;
    - ``mdata[x].X``: z-scored ``log2norm`` (dense float32);
    - ``mdata[x].var["highly_variable"]``, ``var["zscore_mean"]``, ``var["zscore_std"]``;
    - ``mdata[y].layers["raw"]``, ``layers["unscaled"]`` (after the transform), ``X``
      z-scored, ``var["zscore_mean"]``, ``var["zscore_std"]``, ``var["log_transformed"]``;
    - ``mdata.uns["prepare_paired"]``: parameters (the resolved ``target_transform``
      included), dropped cells, excluded genes, median library size.

    Raises
    ------
    InputError
        For any argument or data it cannot use (nothing is modified).

    Examples
    --------
    CITE-seq (RNA → proteins): ADT counts get the CLR, technical genes are left out.

    >>> import multiviz as mv
    >>> mdata = mv.datasets.pbmc10k_cite_200()  # 200 real cells shipped with multiviz
    >>> mv.pp.prepare_paired(mdata, y="protein", n_top_genes=500)
    >>> mdata.uns["prepare_paired"]["params"]["target_transform"]
    'clr'
    >>> any(g.startswith("MT-") for g in mdata["rna"].var_names)
    False

    Patch-seq (RNA → ephys), the paper's recipe exactly:

    >>> mdata = mv.datasets.simulate_patchseq(n_cells=300, n_genes=200)
    >>> mv.pp.prepare_paired(mdata, n_top_genes=100)
    >>> mdata["rna"].shape, mdata.uns["prepare_paired"]["params"]["target_transform"]
    ((300, 100), 'zscore')
    """
    log_features, pattern = check_prepare_args(
        mdata,
        x=x,
        y=y,
        n_top_genes=n_top_genes,
        gene_selection=gene_selection,
        threshold=threshold,
        layer=layer,
        target_transform=target_transform,
        log_features=log_features,
        exclude_genes=exclude_genes,
        exclude_ribosomal=exclude_ribosomal,
        drop_nan=drop_nan,
        subset=subset,
        min_cells=min_cells,
        copy=copy,
    )
    rna = get_modality(mdata, x, "x")
    y = resolve_target(mdata, y)
    if y == x:
        raise InputError(f"`x` and `y` must be different modalities; both are {x!r}.")
    target = get_modality(mdata, y, "y")
    check_paired(mdata, [x, y], ["`x`", "`y`"])
    counts = get_layer(rna, layer)
    check_counts(counts, f"mdata[{x!r}]" + (f".layers[{layer!r}]" if layer else ".X"))
    y_values = target.X.toarray() if sparse.issparse(target.X) else np.asarray(target.X)
    check_finite(y_values, f"mdata[{y!r}].X", allow_nan=drop_nan, names=target.var_names)
    y_values = np.array(y_values, dtype=np.float64)

    keep = ~np.isnan(y_values).any(axis=1)
    n_dropped = int((~keep).sum())
    check_min_obs(int(keep.sum()), 3, f"mdata (cells with complete `{y}` targets)")
    y_kept = y_values[keep]
    check_some_varying(y_kept, y)
    transform = resolve_target_transform(
        target_transform, y, y_kept, log_features=bool(log_features)
    )
    log_mask = check_log_features(target, y, y_kept, log_features, transform)
    if gene_selection != "none":
        check_n_top(n_top_genes, rna.n_vars)
    excluded = excluded_mask(rna, pattern)
    candidates = ~excluded
    if not candidates.any():
        raise all_excluded_error(rna, x, exclude_genes, exclude_ribosomal)
    n_top = int(n_top_genes)
    if gene_selection != "none" and n_top > int(candidates.sum()):
        logg.warning(
            "    n_top_genes=%d, but only %d genes remain after excluding %d technical genes: "
            "keeping all %d",
            n_top,
            int(candidates.sum()),
            int(excluded.sum()),
            int(candidates.sum()),
            category=DataWarning,
        )
        n_top = int(candidates.sum())

    # -- compute everything before writing anything -------------------------------------------
    counts_kept = counts[keep] if n_dropped else counts
    selected, thr = _select_genes(
        counts_kept, candidates, n_top, gene_selection, threshold, min_cells
    )
    selected_counts = counts_kept[:, selected]
    scale, target_sum = median_depth_scale(selected_counts.sum(axis=1))
    log2norm = log2_scaled(selected_counts if subset else counts_kept, scale)
    x_mean, x_std = fit_zscore(log2norm)
    x_scaled = apply_zscore(log2norm, x_mean, x_std)

    y_unscaled = transform_targets(y_kept, transform, log_mask)
    if transform is None:
        y_mean, y_std = np.zeros(y_kept.shape[1]), np.ones(y_kept.shape[1])
    else:
        y_mean, y_std = fit_zscore(y_unscaled)
    y_scaled = apply_zscore(y_unscaled, y_mean, y_std)
    constant = list(target.var_names[np.ptp(y_unscaled, axis=0) == 0])
    if constant:
        logg.warning(
            "    %d %s features are constant across cells (set to 0): %s",
            len(constant),
            y,
            ", ".join(map(str, constant[:10])),
            category=DataWarning,
        )
    excluded_names = [str(g) for g in rna.var_names[excluded]]

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
            "target_transform": transform if transform is not None else "none",
            "log_features": log_features,
            "exclude_genes": pattern.pattern if pattern is not None else "none",
            "subset": subset,
            "min_cells": int(min_cells),
        },
        "n_cells_dropped": n_dropped,
        "dropped_cells": dropped_cells,
        "n_genes_excluded": len(excluded_names),
        "excluded_genes": excluded_names,
        "median_library_size": target_sum,
        "n_genes_selected": int(selected.sum()),
    }
    logg.info(
        "prepare_paired: kept %d cells (dropped %d with NaN targets), excluded %d technical "
        "genes%s, %d genes selected by %r, median library size %.4g, z-scored %d genes; "
        "%d %s features: %s",
        int(keep.sum()),
        n_dropped,
        len(excluded_names),
        f" ({', '.join(excluded_names[:6])}{', ...' if len(excluded_names) > 6 else ''})"
        if excluded_names
        else "",
        int(selected.sum()),
        gene_selection,
        target_sum,
        out_rna.n_vars,
        out_y.n_vars,
        y,
        {"clr": "CLR per cell, z-scored", "log1p": "log1p, z-scored", "zscore": "z-scored"}.get(
            transform, "left as they are"
        ),
    )
    return mdata if copy else None
