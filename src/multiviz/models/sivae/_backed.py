"""Whole-matrix passes of siVAE that also work on a backed (on-disk) ``.h5ad``.

scvi-tools' data loaders read minibatches from a backed AnnData by themselves; what siVAE
reads outside them (the input check, library sizes, the cells of the feature-wise input)
goes through these helpers, which read an on-disk matrix in row blocks of
:data:`ROW_CHUNK` cells, so memory stays bounded by the block, never by the cells.
In-memory matrices (dense or ``scipy.sparse``) take the usual vectorised path.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
from scipy import sparse

from multiviz._validate import check_counts, check_finite

#: Cells per block read from an on-disk matrix (2,000 genes at 7 % non-zeros: ~1 MB).
ROW_CHUNK = 10_000


def is_backed(x) -> bool:
    """Whether ``x`` is an on-disk matrix (anndata's backed sparse dataset or an h5py dataset)."""
    if sparse.issparse(x) or isinstance(x, np.ndarray):
        return False
    import h5py
    from anndata.abc import CSCDataset, CSRDataset

    return isinstance(x, CSRDataset | CSCDataset | h5py.Dataset)


def row_blocks(x, rows: int = ROW_CHUNK) -> Iterator[tuple[int, object]]:
    """``(start, block)`` over consecutive row blocks of ``x``, each in memory."""
    n = x.shape[0]
    for start in range(0, n, rows):
        block = x[start : min(start + rows, n)]
        yield start, (block.tocsr() if sparse.issparse(block) else np.asarray(block))


def check_registered(x, likelihood: str, arg: str = "the registered layer") -> None:
    """Counts for ``"nb"``, finite values otherwise; block by block when ``x`` is on disk."""
    check = check_counts if likelihood == "nb" else check_finite
    if not is_backed(x):
        check(x, arg)
        return
    for _, block in row_blocks(x):
        check(block, arg)


def row_sums(x) -> np.ndarray:
    """Per-cell sums (library sizes) as float64, read in blocks when ``x`` is on disk."""
    if not is_backed(x):
        return np.asarray(x.sum(axis=1)).ravel().astype(np.float64)
    out = np.empty(x.shape[0], np.float64)
    for start, block in row_blocks(x):
        out[start : start + block.shape[0]] = np.asarray(block.sum(axis=1)).ravel()
    return out


def take_rows(x, idx: np.ndarray):
    """Rows ``idx`` (sorted, unique) of ``x`` in memory; on-disk matrices are read in blocks.

    Only the selected rows are kept: memory is that of the result plus one block.
    """
    idx = np.asarray(idx)
    if not is_backed(x):
        return x[idx]
    parts = []
    for start, block in row_blocks(x):
        sel = idx[(idx >= start) & (idx < start + block.shape[0])] - start
        if len(sel):
            parts.append(block[sel])
    if not parts:
        return x[0:0]
    return sparse.vstack(parts, format="csr") if sparse.issparse(parts[0]) else np.vstack(parts)
