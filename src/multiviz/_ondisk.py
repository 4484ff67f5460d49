"""Rows of a matrix that may live on disk (a ``backed="r"`` AnnData's ``X``).

One place for what every model family needs from an on-disk matrix: telling it from an
in-memory one, and reading a set of its rows without loading the rest.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

__all__ = ["is_backed", "take_rows"]


def is_backed(x) -> bool:
    """Whether ``x`` is an on-disk matrix (anndata's backed sparse dataset or an h5py dataset)."""
    if sparse.issparse(x) or isinstance(x, np.ndarray):
        return False
    import h5py
    from anndata.abc import CSCDataset, CSRDataset

    return isinstance(x, CSRDataset | CSCDataset | h5py.Dataset)


def take_rows(x, rows: np.ndarray):
    """``x[rows]`` in memory (sparse stays sparse), rows in the given order.

    An in-memory matrix is indexed directly. An on-disk one reads only those rows, in
    increasing order as HDF5 requires, and puts them back in the requested order; memory is
    that of the result.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if not is_backed(x):
        return x[rows]
    if rows.size == 0:
        return x[0:0]
    order = np.argsort(rows, kind="stable")
    if np.array_equal(order, np.arange(rows.size)):
        return x[rows]
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size)
    return x[rows[order]][inverse]
