"""Where the sBNN's training inputs live: device tensors (small data) or streamed rows.

Patch-seq sized data (~10³ cells x 10³ genes) train fastest as dense tensors on the
training device: a minibatch is one ``index_select``. Atlas-sized data do not fit densely
(10⁶ cells x 2,000 genes is 8 GB of float32), so above :data:`STREAM_ABOVE` input values
the registered matrix stays on the host as it was registered (sparse CSR stays sparse; a
backed AnnData's rows are read from disk per minibatch) and each minibatch is sliced,
densified and moved to the device only when it is used. Both sources give the same rows in
the same order, so the same seed gives the same fit either way.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

STREAM_ABOVE = 50_000_000
"""Cells x genes above which ``SBNN.train(data_on_device=None)`` streams minibatches from
the host instead of keeping a dense copy on the device (50M float32 values = 200 MB, e.g.
25,000 cells x 2,000 genes; M1 Patch-seq, 1,213 x 1,000, stays far below)."""

CHUNK = 8192
"""Rows densified at once outside the minibatch loop (validation, final predictions)."""


def _as_tensor(rows, device) -> torch.Tensor:
    if sp.issparse(rows):
        rows = rows.toarray()
    arr = np.ascontiguousarray(np.asarray(rows, dtype=np.float32))
    return torch.from_numpy(arr).to(device, non_blocking=True)


class DeviceRows:
    """All rows (or the rows ``subset``) as one dense float32 tensor on the training device."""

    streamed = False

    def __init__(self, X, subset: np.ndarray | None = None):
        self.X = _as_tensor(X if subset is None else X[subset], "cpu")
        self.shape = tuple(self.X.shape)

    def to(self, device) -> None:
        """Move the tensor to ``device`` (once, when training starts)."""
        self.X = self.X.to(device)

    @property
    def device(self) -> torch.device:
        """Where the rows are."""
        return self.X.device

    def rows(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` (a long tensor) as a dense tensor on the device."""
        return self.X.index_select(0, idx.to(self.X.device))

    def keep_columns(self, keep: np.ndarray) -> None:
        """Keep only the columns ``keep`` (after pruning)."""
        keep_t = torch.as_tensor(keep, device=self.X.device)
        self.X = self.X.index_select(1, keep_t).contiguous()
        self.shape = tuple(self.X.shape)


class StreamedRows:
    """Rows kept on the host as registered; each request densifies only its rows.

    Parameters
    ----------
    X
        Cells x genes: scipy sparse (converted to CSR once, no densifying), a numpy array,
        or a backed AnnData's dataset (anything supporting ``X[rows]``).
    subset
        Sorted rows of ``X`` that are this source's rows (``None``: all); row ``i`` here is
        row ``subset[i]`` of ``X``, read only when a minibatch asks for it.
    """

    streamed = True

    def __init__(self, X, subset: np.ndarray | None = None):
        if sp.issparse(X) and not sp.isspmatrix_csr(X):
            X = sp.csr_matrix(X)
        self.X = X
        self._subset = subset
        self.shape = (X.shape[0] if subset is None else int(subset.size), X.shape[1])
        self._device = torch.device("cpu")
        self._cols: np.ndarray | None = None

    def to(self, device) -> None:
        """Minibatches will be moved to ``device`` (the data stay on the host)."""
        self._device = torch.device(device)

    @property
    def device(self) -> torch.device:
        """Where the minibatches go."""
        return self._device

    def _host_rows(self, idx: np.ndarray):
        if self._subset is not None:
            idx = self._subset[idx]
        # h5py datasets (backed AnnData) need increasing indices: read sorted, then reorder
        if isinstance(self.X, (np.ndarray, sp.spmatrix, sp.sparray)):
            out = self.X[idx]
        else:
            order = np.argsort(idx, kind="stable")
            out = self.X[idx[order]]
            out = out[np.argsort(order, kind="stable")]
        if self._cols is not None:
            out = out[:, self._cols]
        return out

    def rows(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` sliced on the host, densified, then moved to the device."""
        return _as_tensor(self._host_rows(idx.cpu().numpy()), self._device)

    def keep_columns(self, keep: np.ndarray) -> None:
        """Keep only the columns ``keep``: a sparse matrix is subset once (few genes)."""
        keep = np.asarray(keep)
        if sp.issparse(self.X) or isinstance(self.X, np.ndarray):
            self.X = self.X[:, keep]
        else:
            self._cols = keep if self._cols is None else self._cols[keep]
        self.shape = (self.shape[0], int(keep.size))


def make_rows(
    X, data_on_device: bool | None, subset: np.ndarray | None = None
) -> DeviceRows | StreamedRows:
    """The row source for the rows ``subset`` of ``X`` (all if ``None``).

    ``data_on_device=None`` picks by size (:data:`STREAM_ABOVE`).
    """
    n_rows = X.shape[0] if subset is None else int(subset.size)
    if data_on_device is None:
        data_on_device = n_rows * X.shape[1] <= STREAM_ABOVE
    return DeviceRows(X, subset) if data_on_device else StreamedRows(X, subset)


def forward_all(module, rows: DeviceRows | StreamedRows) -> tuple[np.ndarray, np.ndarray]:
    """Latent and predictions of every row, :data:`CHUNK` rows at a time.

    The outputs are written into arrays allocated once: keeping a list of per-chunk arrays
    interleaves small long-lived blocks with the chunks' freed activations and fragments
    the heap (measured: +650 MB of peak RSS on 300,000 cells).
    """
    dev = module.first.weight.device
    n = rows.shape[0]
    z_all = np.empty((n, module.n_latent), np.float32)
    pred_all = np.empty((n, module.head.out_features), np.float32)
    for start in range(0, n, CHUNK):
        stop = min(start + CHUNK, n)
        z, pred = module.forward_targets(
            module.select_input(rows.rows(torch.arange(start, stop)).to(dev))
        )
        z_all[start:stop] = z.float().cpu().numpy()
        pred_all[start:stop] = pred.float().cpu().numpy()
        del z, pred
    return z_all, pred_all


def phase_fits(plan, phases) -> list[tuple[int, int]]:
    """Stepwise (DDP): one Lightning fit per phase that trains, ``(epoch offset, steps)``."""
    bounds = np.cumsum([p.epochs for p in phases])
    return [
        (int(bounds[k] - p.epochs), plan.steps_per_epoch(k))
        for k, p in enumerate(phases)
        if p.epochs > 0
    ]


def fit_epochs(phases, offset: int, stepwise: bool) -> int:
    """Epochs of one Lightning fit: the whole schedule, or (stepwise) one phase."""
    if not stepwise:
        return max(int(sum(p.epochs for p in phases)), 1)
    bounds = np.cumsum([p.epochs for p in phases])
    k = int(np.searchsorted(bounds, offset, side="right"))
    return int(phases[k].epochs)
