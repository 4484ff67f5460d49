"""Rows of a matrix that may live on disk (a ``backed="r"`` AnnData's ``X``).

One place for what every model family needs from an on-disk matrix: telling it from an
in-memory one, and reading a set of its rows without loading the rest.
"""

from __future__ import annotations

import copy

import numpy as np
from scipy import sparse

__all__ = ["is_backed", "list_indexable", "take_rows"]


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


_LIST_INDEXABLE: dict[type, type] = {}


def _getitem_list_as_array(self, idx):
    """Index with a list of rows as with an integer array (read only those rows)."""
    if isinstance(idx, list):
        idx = np.asarray(idx, dtype=np.int64)
    elif isinstance(idx, tuple) and idx and isinstance(idx[0], list):
        idx = (np.asarray(idx[0], dtype=np.int64), *idx[1:])
    return super(type(self), self).__getitem__(idx)


def list_indexable(x):
    """``x``, or for an on-disk sparse matrix a view of it that reads a list of rows lazily.

    scvi-tools asks its data for each minibatch with a Python list of row numbers. anndata
    0.12 reads just those rows from an on-disk CSR/CSC matrix; anndata 0.13 reads the whole
    matrix into memory first (it reads only the rows for an integer *array*). The returned
    object is the same dataset (same file, nothing read) whose ``[list]`` is ``[array]``;
    ``x`` itself is not changed.
    """
    from anndata.abc import CSCDataset, CSRDataset

    if not isinstance(x, CSRDataset | CSCDataset):
        return x
    cls = type(x)
    if getattr(cls, "__getitem__", None) is _getitem_list_as_array:
        return x
    if cls not in _LIST_INDEXABLE:
        _LIST_INDEXABLE[cls] = type(cls.__name__, (cls,), {"__getitem__": _getitem_list_as_array})
    view = copy.copy(x)
    view.__class__ = _LIST_INDEXABLE[cls]
    return view
