"""The reduced feature-wise input of siVAE, built from training cells only.

Paper Methods, "Reducing dimensionality of the input data for the feature-wise
encoder-decoder": the input of gene ``f`` is its profile over cells, ``X[:, f]``, whose
length grows with the number of cells. It is reduced to ``C_red`` values by PCA of Xᵀ
(without whitening) or by downsampling cells while keeping the cell-type ratios. The
reference code builds it from all cells, test cells included; here only training cells
are used.

The PCA is a randomised SVD (:func:`centred_pca_scores`) of the sparse or dense Xᵀ, centred
implicitly (issue 11: scikit-learn's ARPACK PCA used before took 58 s of CPU at 4,500
cells, about 20 SCVI epochs of those data; the build should cost at most 10 % of a fit).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import sparse
from sklearn.utils.extmath import svd_flip
from threadpoolctl import threadpool_limits

from multiviz import _logging as logg

from ._backed import row_sums, take_rows

#: At most this many training cells enter the PCA of Xᵀ (a stratified/random subsample above).
MAX_PCA_CELLS = 20_000
#: Extra random directions of the randomised PCA (Halko et al. 2011; scikit-learn's default).
PCA_OVERSAMPLES = 10
#: Power iterations of the randomised PCA (scikit-learn's ``n_iter="auto"`` for many components).
PCA_POWER_ITERATIONS = 4
#: Above this fraction of non-zeros a sparse Xᵀ is multiplied as dense row blocks (BLAS):
#: scipy's sparse products took 27.6 s of CPU on 4,000 x 2,000 counts with 72 % non-zeros.
DENSE_BLOCK_DENSITY = 0.1
#: Elements per dense row block (8 M float64 values, 64 MB).
DENSE_BLOCK_ELEMENTS = 8_000_000


def _log_normalise(x):
    """``log1p(x / library * 1e4)`` per cell; sparse stays sparse."""
    lib = np.asarray(x.sum(axis=1)).ravel().astype(np.float64)
    lib[lib == 0] = 1.0
    if sparse.issparse(x):
        out = sparse.diags(1e4 / lib) @ x.astype(np.float32)
        out = out.tocsr()
        out.data = np.log1p(out.data)
        return out
    return np.log1p(np.asarray(x, dtype=np.float32) * (1e4 / lib)[:, None])


def stratified_subsample(
    idx: np.ndarray, n: int, labels: np.ndarray | None, rng: np.random.Generator
) -> np.ndarray:
    """``n`` of ``idx`` keeping the label proportions (uniform without labels); sorted."""
    if n >= len(idx):
        return np.sort(idx)
    if labels is None:
        return np.sort(rng.choice(idx, size=n, replace=False))
    lab = labels[idx]
    cats, counts = np.unique(lab, return_counts=True)
    quota = np.floor(counts / counts.sum() * n).astype(int)
    rest = n - quota.sum()
    order = np.argsort(-(counts / counts.sum() * n - quota))
    quota[order[:rest]] += 1
    chosen = [
        rng.choice(idx[lab == c], size=q, replace=False) for c, q in zip(cats, quota) if q > 0
    ]
    return np.sort(np.concatenate(chosen))


def build_feature_input(
    x,
    train_idx: np.ndarray,
    *,
    kind: str,
    n_components: int,
    labels: np.ndarray | None = None,
    log_normalise: bool = False,
    random_state: int = 0,
) -> np.ndarray:
    """Genes x ``n_components`` float32 matrix for the feature-wise encoder.

    Parameters
    ----------
    x
        Cells x genes (dense or sparse; only training rows are read).
    train_idx
        Indices of the training cells.
    kind
        ``"pca"``, ``"downsample"`` or ``"full"``.
    n_components
        ``C_red``.
    labels
        Cell types for stratified downsampling.
    log_normalise
        Apply ``log1p(x / library * 1e4)`` first (count data).
    random_state
        Seed.
    """
    rng = np.random.default_rng(random_state)
    if kind == "pca":
        cells = stratified_subsample(train_idx, MAX_PCA_CELLS, labels, rng)
        if len(cells) < len(train_idx):
            logg.debug(f"    PCA of Xᵀ on {len(cells)} of {len(train_idx)} training cells")
    elif kind == "downsample":
        cells = stratified_subsample(train_idx, n_components, labels, rng)
    else:
        cells = np.sort(train_idx)
    xs = take_rows(x, cells)  # in blocks of cells when x is on disk (backed AnnData)
    if log_normalise:
        xs = _log_normalise(xs)
    if kind != "pca":
        xt = xs.T
        return np.asarray(xt.todense() if sparse.issparse(xt) else xt, dtype=np.float32)
    # BLAS threads follow torch's (``mv.settings.num_threads`` during fits)
    with threadpool_limits(limits=max(torch.get_num_threads(), 1)):
        scores = centred_pca_scores(xs.T, n_components, random_state=random_state)
    # one global rescaling (the first component gets unit SD over genes); no whitening
    scores /= max(float(scores[:, 0].std()), 1e-12)
    return scores.astype(np.float32)


def centred_pca_scores(
    a,
    n_components: int,
    *,
    n_oversamples: int = PCA_OVERSAMPLES,
    n_iter: int = PCA_POWER_ITERATIONS,
    random_state: int = 0,
) -> np.ndarray:
    """PCA scores of the rows of ``a`` by randomised SVD, centred implicitly.

    ``a`` (here genes x cells, i.e. Xᵀ) is centred by subtracting its column means inside
    every product (``A Q - 1 (mu Q)``), so a sparse ``a`` is never densified: memory is
    ``O(nnz + (rows + cols) * (n_components + n_oversamples))``. The range finder is
    Halko, Martinsson & Tropp (2011), Algorithm 4.4 (QR-normalised power iterations);
    signs follow scikit-learn's ``svd_flip`` (the largest loading of each component
    positive), so the result is deterministic given ``random_state``.

    Parameters
    ----------
    a
        Rows x columns, dense or ``scipy.sparse``.
    n_components
        Components kept (``<= min(a.shape)``).
    n_oversamples, n_iter
        Extra random directions and power iterations.
    random_state
        Seed of the Gaussian test matrix.

    Returns
    -------
    Rows x ``n_components`` scores ``U S`` (float64), as ``PCA(...).fit_transform(a)`` up to
    the sign of each component.
    """
    n_rows, n_cols = a.shape
    if sparse.issparse(a):
        a = sparse.csr_matrix(a, dtype=np.float64)
    else:
        a = np.asarray(a, dtype=np.float64)
    mu = np.asarray(a.mean(axis=0)).ravel()  # column means, (n_cols,)
    # a sparse matrix that is not very sparse multiplies faster as dense row blocks (BLAS);
    # each block is densified on its own, so memory stays O(block + nnz)
    blocks = None
    if sparse.issparse(a) and a.nnz > DENSE_BLOCK_DENSITY * n_rows * n_cols:
        step = max(DENSE_BLOCK_ELEMENTS // max(n_cols, 1), 1)
        blocks = [(i, min(i + step, n_rows)) for i in range(0, n_rows, step)]

    def right(q: np.ndarray) -> np.ndarray:  # (A - 1 mu^T) q
        if blocks is None:
            out = np.asarray(a @ q)
        else:
            out = np.vstack([a[i:j].toarray() @ q for i, j in blocks])
        return out - (mu @ q)[None, :]

    def left(y: np.ndarray) -> np.ndarray:  # (A - 1 mu^T)^T y
        if blocks is None:
            out = np.asarray(a.T @ y)
        else:
            out = sum(a[i:j].toarray().T @ y[i:j] for i, j in blocks)
        return out - np.outer(mu, y.sum(axis=0))

    k = int(n_components)
    n_random = min(k + int(n_oversamples), n_rows, n_cols)
    rng = np.random.default_rng(random_state)
    q, _ = np.linalg.qr(right(rng.standard_normal((n_cols, n_random))))
    for _ in range(int(n_iter)):
        q, _ = np.linalg.qr(left(q))
        q, _ = np.linalg.qr(right(q))
    b = left(q).T  # (n_random, n_cols) = Q^T (A - 1 mu^T)
    u_b, s, vt = np.linalg.svd(b, full_matrices=False)
    u = q @ u_b
    u, vt = svd_flip(u, vt, u_based_decision=False)
    return u[:, :k] * s[:k]


def library_log_stats(x, train_idx: np.ndarray) -> tuple[float, float]:
    """Mean and SD of log library sizes of training cells (prior of paper eq. 14)."""
    lib = row_sums(x)[np.sort(train_idx)]  # no row copy; read in blocks when x is on disk
    log_lib = np.log(np.clip(lib, 1e-8, None))
    std = float(log_lib.std()) if len(log_lib) > 1 else 1.0
    return float(log_lib.mean()), max(std, 1e-6)
