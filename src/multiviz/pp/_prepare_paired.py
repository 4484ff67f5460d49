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
from .._warnings import DataWarning
from ._args import TECHNICAL_GENES
from ._checks import check_prepare_args
from ._gene_selection import detection_gene_selection
from ._paired_steps import (
    CheckedInputs,
    FittedValues,
    candidate_genes,
    kept_targets,
    log_paired_summary,
    paired_record,
    read_paired,
    write_paired,
)
from ._targets import transform_targets
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


def _fit_paired(
    checked: CheckedInputs, gene_selection: str, *, threshold, min_cells: int, subset: bool
) -> FittedValues:
    """Select genes, normalise and z-score both modalities (``mdata`` is not touched)."""
    counts_kept = checked.counts if checked.keep.all() else checked.counts[checked.keep]
    selected, thr = _select_genes(
        counts_kept, ~checked.excluded, checked.n_top, gene_selection, threshold, min_cells
    )
    selected_counts = counts_kept[:, selected]
    scale, target_sum = median_depth_scale(selected_counts.sum(axis=1))
    log2norm = log2_scaled(selected_counts if subset else counts_kept, scale)
    x_mean, x_std = fit_zscore(log2norm)
    x_scaled = apply_zscore(log2norm, x_mean, x_std)

    y_kept = checked.y_kept
    y_unscaled = transform_targets(y_kept, checked.transform, checked.log_mask)
    if checked.transform is None:
        y_mean, y_std = np.zeros(y_kept.shape[1]), np.ones(y_kept.shape[1])
    else:
        y_mean, y_std = fit_zscore(y_unscaled)
    y_scaled = apply_zscore(y_unscaled, y_mean, y_std)
    constant = list(checked.target.var_names[np.ptp(y_unscaled, axis=0) == 0])
    if constant:
        logg.warning(
            "    %d %s features are constant across cells (set to 0): %s",
            len(constant),
            checked.y,
            ", ".join(map(str, constant[:10])),
            category=DataWarning,
        )
    x_fit = (log2norm, x_mean, x_std, x_scaled)
    return FittedValues(selected, thr, target_sum, *x_fit, y_unscaled, y_mean, y_std, y_scaled)


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
    rna, y, target, counts, y_values = read_paired(mdata, x, y, layer, drop_nan)
    targets = kept_targets(target, y, y_values, target_transform, log_features)
    genes = candidate_genes(
        rna, x, n_top_genes, gene_selection, pattern, exclude_genes, exclude_ribosomal
    )
    checked = CheckedInputs(rna, y, target, counts, *targets, *genes)
    fitted = _fit_paired(
        checked, gene_selection, threshold=threshold, min_cells=min_cells, subset=subset
    )
    if copy:
        mdata = mdata.copy()
    dropped_cells = write_paired(mdata, x, checked, fitted, layer=layer, subset=subset)
    params = {
        "x": x,
        "y": y,
        "n_top_genes": int(n_top_genes),
        "gene_selection": gene_selection,
        "threshold": fitted.thr if fitted.thr is not None else "n/a",
        "layer": layer if layer is not None else "X",
        "target_transform": checked.transform if checked.transform is not None else "none",
        "log_features": log_features,
        "exclude_genes": pattern.pattern if pattern is not None else "none",
        "subset": subset,
        "min_cells": int(min_cells),
    }
    record = paired_record(params, checked, fitted, dropped_cells)
    mdata.uns["prepare_paired"] = record
    log_paired_summary(
        record,
        int(checked.keep.sum()),
        gene_selection,
        mdata.mod[x].n_vars,
        mdata.mod[y].n_vars,
        y,
        checked.transform,
    )
    return mdata if copy else None
