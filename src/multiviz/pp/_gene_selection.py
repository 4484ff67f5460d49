"""Gene selection by detection rate (Kobak & Berens 2019), as used by the sBNN paper."""

from __future__ import annotations

import numpy as np
from anndata import AnnData
from scipy import sparse

from .. import _logging as logg
from .._blocks import row_slices
from .._validate import (
    check_anndata,
    check_bool,
    check_counts,
    check_float,
    check_int,
    check_n_top,
    check_str,
    check_writable,
    get_layer,
)
from .._warnings import DataWarning


def _detection_statistics(
    counts, threshold: float, min_cells: int
) -> tuple[np.ndarray, np.ndarray]:
    """Non-detection rate and mean log2 count over detected cells, per gene.

    A count counts as detected when it exceeds ``threshold``. Genes detected in fewer than
    ``min_cells`` cells get NaN for both statistics and are never selected.
    """
    n_cells, n_genes = counts.shape
    n_detected, log_sum = np.zeros(n_genes), np.zeros(n_genes)
    if sparse.issparse(counts):
        counts = sparse.csr_matrix(counts)
        if not counts.has_canonical_format:  # duplicate entries: sum them, on a copy
            counts = counts.copy()
            counts.sum_duplicates()
    for rows in row_slices(n_cells):  # masks and float64 logs of one block of cells at a time
        if sparse.issparse(counts):
            lo, hi = counts.indptr[rows.start], counts.indptr[rows.stop]
            values, cols = counts.data[lo:hi], counts.indices[lo:hi]
            hit = values > threshold
            n_detected += np.bincount(cols[hit], minlength=n_genes)
            logs = np.log2(values[hit].astype(np.float64))
            log_sum += np.bincount(cols[hit], weights=logs, minlength=n_genes)
        else:
            block = np.asarray(counts[rows])
            hit = block > threshold
            n_detected += hit.sum(axis=0)
            with np.errstate(divide="ignore"):
                log_sum += np.where(hit, np.log2(np.where(hit, block, 1.0)), 0.0).sum(axis=0)
    zero_rate = 1.0 - n_detected / n_cells
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_log = log_sum / n_detected
    too_rare = (n_detected < min_cells) | (n_detected == 0)
    zero_rate[too_rare] = np.nan
    mean_log[too_rare] = np.nan
    return zero_rate, mean_log


def _select(zero_rate, mean_log, x_offset, decay, y_offset) -> np.ndarray:
    valid = ~np.isnan(zero_rate)
    selected = np.zeros(zero_rate.shape, dtype=bool)
    selected[valid] = zero_rate[valid] > np.exp(-decay * (mean_log[valid] - x_offset)) + y_offset
    return selected


def detection_gene_selection(
    adata: AnnData,
    n_top_genes: int = 1000,
    *,
    layer: str | None = None,
    threshold: float = 0,
    min_cells: int = 10,
    decay: float = 1.5,
    y_offset: float = 0.02,
    max_iter: int = 100,
    key_added: str = "highly_variable",
    inplace: bool = True,
):
    """Select genes whose non-detection rate is high for their expression level.

    For each gene, the fraction of cells in which it is not detected (count ≤
    ``threshold``) is compared with its mean log2 count over the cells that detect it; a
    gene is selected when ``zero_rate > exp(-decay * (mean_log2 - x0)) + y_offset``, and
    ``x0`` is found by bisection so that ``n_top_genes`` genes are selected (Kobak &
    Berens 2019, "The art of using t-SNE for single-cell transcriptomics"; used by the
    sBNN paper with ``threshold=30`` reads for Smart-seq2 Patch-seq data and 0 for UMI
    data). Genes detected in fewer than ``min_cells`` cells are never selected.

    Parameters
    ----------
    adata
        AnnData with raw counts in ``layer`` (``.X`` when None).
    n_top_genes
        Number of genes to select (default 1000, as in the sBNN paper).
    layer
        Layer holding raw counts.
    threshold
        A count above this is a detection (sBNN: 30 for read counts, 0 for UMIs).
    min_cells
        Genes detected in fewer cells are ignored (Kobak & Berens: 10).
    decay, y_offset
        Shape of the selection curve (Kobak & Berens: 1.5 and 0.02).
    max_iter
        Bisection steps.
    key_added
        ``var`` column for the boolean selection.
    inplace
        Write ``var[key_added]``, ``var["detection_zero_rate"]`` and
        ``var["detection_mean_log2"]``; otherwise return the mask.

    Returns
    -------
    The boolean mask if ``inplace=False``, else None. ``var["detection_zero_rate"]`` is
    the non-detection rate of every gene; ``var["detection_mean_log2"]`` is 0 for genes
    that no cell detects (the mean over no cells is undefined; they are never selected).

    Examples
    --------
    >>> import multiviz as mv
    >>> rna = mv.datasets.simulate_patchseq(n_cells=300, n_genes=200)["rna"].copy()
    >>> mv.pp.detection_gene_selection(rna, n_top_genes=50)
    >>> int(rna.var["highly_variable"].sum())
    50
    """
    check_anndata(adata)
    check_bool(inplace, "inplace")
    if inplace:
        check_writable(adata, "adata")
    check_str(layer, "layer", optional=True)
    check_str(key_added, "key_added")
    check_float(threshold, "threshold", low=0)
    check_int(min_cells, "min_cells", minimum=1)
    check_float(decay, "decay", low=0, low_open=True)
    check_float(y_offset, "y_offset", low=0, high=1, high_open=True)
    check_int(max_iter, "max_iter")
    counts = get_layer(adata, layer)
    check_counts(counts, f"adata.layers[{layer!r}]" if layer is not None else "adata.X")
    check_n_top(n_top_genes, adata.n_vars)
    zero_rate, mean_log = _detection_statistics(counts, threshold, min_cells)
    n_valid = int((~np.isnan(zero_rate)).sum())
    if n_top_genes == adata.n_vars:
        selected = np.ones(adata.n_vars, dtype=bool)
        logg.info("    n_top_genes equals the number of genes: all %d genes kept", adata.n_vars)
    else:
        if n_top_genes > n_valid:
            check_n_top(n_top_genes, n_valid, "n_top_genes (genes detected in >= min_cells cells)")
        low, high, x_offset = -10.0, 20.0, 5.0
        selected = _select(zero_rate, mean_log, x_offset, decay, y_offset)
        best = selected
        for _ in range(max_iter):
            n_selected = int(selected.sum())
            if abs(n_selected - n_top_genes) < abs(int(best.sum()) - n_top_genes):
                best = selected
            if n_selected == n_top_genes:
                break
            if n_selected < n_top_genes:
                high, x_offset = x_offset, (x_offset + low) / 2
            else:
                low, x_offset = x_offset, (x_offset + high) / 2
            selected = _select(zero_rate, mean_log, x_offset, decay, y_offset)
        if int(selected.sum()) != n_top_genes:
            selected = best
            logg.warning(
                "    detection-based selection reached %d genes, not exactly %d (ties)",
                int(selected.sum()),
                n_top_genes,
                category=DataWarning,
            )
    if not inplace:
        return selected
    # finite values only in the user's object: the real rate for every gene, and 0 as the
    # mean log count of genes detected nowhere (too-rare genes keep their real statistics)
    zero_rate_all, mean_log_all = _detection_statistics(counts, threshold, 0)
    adata.var[key_added] = selected
    adata.var["detection_zero_rate"] = np.nan_to_num(zero_rate_all, nan=1.0)
    adata.var["detection_mean_log2"] = np.nan_to_num(mean_log_all, nan=0.0)
    return None
