"""Minibatches gathered from the modalities' own matrices: no copy of the cells' data.

The coupled autoencoder sees the union of the modalities' cells (the "stack" cells). Each
modality stays where the user keeps it: a :class:`ModalityBlock` holds a *reference* to
its matrix (``.X`` or a layer: dense, sparse CSR/CSC, or an on-disk ``backed="r"``
dataset), the row of every stack cell in it (-1 where the cell lacks the modality) and,
for new cells, the columns of the training features. :class:`CoupledBatcher` gathers the
rows of one minibatch from every block, makes only them dense and builds the masks:
``presence`` (cell has the modality) and ``observed`` (present and not NaN). Memory is
that of the minibatch plus two small per-cell index arrays (rows, presence).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse

from ..._ondisk import take_rows

__all__ = ["CoupledBatcher", "ModalityBlock", "read_rows", "take_rows"]


def read_rows(matrix, rows: np.ndarray, cols: np.ndarray | None = None) -> np.ndarray:
    """``matrix[rows][:, cols]`` as a dense float32 array (NaN kept)."""
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        n_cols = matrix.shape[1] if cols is None else len(cols)
        return np.zeros((0, n_cols), dtype=np.float32)
    sub = take_rows(matrix, rows)
    if sparse.issparse(sub):
        sub = sub.astype(np.float32, copy=False).toarray()
    sub = np.asarray(sub, dtype=np.float32)
    if cols is not None:
        sub = sub[:, cols]
    return sub


@dataclass
class ModalityBlock:
    """One modality's input: a reference to its matrix and the stack cells' rows in it.

    Attributes
    ----------
    matrix
        The modality's ``.X`` or layer itself (never copied), or, for a stack with its own
        ``X`` (a saved model's data), that matrix.
    rows
        Row in ``matrix`` of each stack cell (-1: the cell lacks the modality); ``None``:
        the stack cells are the matrix rows, in order.
    cols
        Columns of ``matrix`` to read, in the model's feature order (``None``: all).
    start
        First column of this block in the model's input.
    """

    matrix: object
    rows: np.ndarray | None
    cols: np.ndarray | None
    start: int

    @property
    def n_vars(self) -> int:
        """Number of input features this block supplies."""
        return int(self.matrix.shape[1] if self.cols is None else len(self.cols))


class CoupledBatcher:
    """Dense minibatch tensors ``X``, ``observed``, ``presence`` gathered block by block.

    Parameters
    ----------
    blocks
        The input blocks, in the model's feature order (together ``n_vars`` columns).
    presence
        ``cells x modalities`` float32, 1 where a cell has a modality.
    n_vars
        Features per modality (the arms' input sizes).
    missing
        Optional ``cells x features`` sparse mask of missing values (a stack saved by an
        earlier version, where NaN values were stored as 0 plus this mask).
    """

    def __init__(
        self,
        blocks: Sequence[ModalityBlock],
        presence: np.ndarray,
        n_vars: Sequence[int],
        missing: sparse.csr_matrix | None = None,
    ):
        self.blocks = list(blocks)
        self.presence = np.asarray(presence, dtype=np.float32)
        self.n_vars = [int(n) for n in n_vars]
        self.arm_of_feature = np.repeat(np.arange(len(self.n_vars)), self.n_vars)
        self.n_features = int(sum(self.n_vars))
        self.n_obs = int(self.presence.shape[0])
        self.missing = missing if missing is not None and missing.nnz else None

    def present(self, block: ModalityBlock, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Positions in ``idx`` of the cells the block holds, and their rows in its matrix."""
        if block.rows is None:
            return np.arange(idx.size), idx
        r = block.rows[idx]
        here = np.flatnonzero(r >= 0)
        return here, r[here]

    def gather(self, idx: np.ndarray) -> dict[str, np.ndarray]:
        """The cells ``idx`` as dense float32 arrays (absent and NaN values are 0)."""
        idx = np.asarray(idx, dtype=np.int64)
        pres = self.presence[idx]
        observed = pres[:, self.arm_of_feature]
        X = np.zeros((idx.size, self.n_features), dtype=np.float32)
        for block in self.blocks:
            here, rows = self.present(block, idx)
            if here.size == 0:
                continue
            x = read_rows(block.matrix, rows, block.cols)
            cols = slice(block.start, block.start + x.shape[1])
            nan = np.isnan(x)
            if nan.any():
                x[nan] = 0.0
                obs = observed[here, cols]
                obs[nan] = 0.0
                observed[here, cols] = obs
            if here.size == idx.size:
                X[:, cols] = x
            else:
                X[here, cols] = x
        if self.missing is not None:
            observed = observed - self.missing[idx].toarray()
        return {"X": X, "observed": observed, "presence": np.ascontiguousarray(pres)}

    def batch(self, idx: np.ndarray, device=None) -> dict[str, torch.Tensor]:
        """The rows ``idx`` as dense float32 tensors (on ``device``)."""
        out = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in self.gather(idx).items()}
        if device is not None:
            out = {k: v.to(device) for k, v in out.items()}
        return out

    def arm_rows(
        self, arm: int, idx: np.ndarray
    ) -> tuple[np.ndarray, sparse.csr_matrix | np.ndarray]:
        """Cells of ``idx`` present in ``arm`` and their float32 values of that arm.

        Sparse blocks stay sparse (NaN kept, as stored); dense ones come back dense.
        Used for sums over many cells (the noise scale), chunk by chunk.
        """
        idx = np.asarray(idx, dtype=np.int64)
        keep = idx[self.presence[idx, arm] > 0.5]
        lo = int(sum(self.n_vars[:arm]))
        hi = lo + self.n_vars[arm]
        for block in self.blocks:
            if block.start <= lo and block.start + block.n_vars >= hi:
                _, rows = self.present(block, keep)
                cols = np.arange(lo - block.start, hi - block.start)
                if block.cols is not None:
                    cols = block.cols[cols]
                whole = block.cols is None and cols.size == block.matrix.shape[1]
                sub = take_rows(block.matrix, rows) if rows.size else None
                if sparse.issparse(sub):
                    sub = sparse.csr_matrix(sub)
                    if not whole:
                        sub = sub[:, cols]
                    return keep, sub.astype(np.float32, copy=False)
                return keep, read_rows(block.matrix, rows, None if whole else cols)
        raise ValueError(f"no input block covers arm {arm}")  # pragma: no cover

    def chunks(self, size: int = 65_536) -> Iterator[np.ndarray]:
        """Consecutive index chunks over all cells."""
        for start in range(0, self.n_obs, size):
            yield np.arange(start, min(start + size, self.n_obs))
