"""The reduced feature-wise input of siVAE, built from training cells only.

Paper Methods, "Reducing dimensionality of the input data for the feature-wise
encoder-decoder": the input of gene ``f`` is its profile over cells, ``X[:, f]``, whose
length grows with the number of cells. It is reduced to ``C_red`` values by PCA of Xᵀ
(without whitening) or by downsampling cells while keeping the cell-type ratios. The
reference code builds it from all cells, test cells included; here only training cells
are used.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.decomposition import PCA

from multiviz import _logging as logg

#: At most this many training cells enter the PCA of Xᵀ (a stratified/random subsample above).
MAX_PCA_CELLS = 20_000


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
    xs = x[cells]
    if log_normalise:
        xs = _log_normalise(xs)
    if kind != "pca":
        xt = xs.T
        return np.asarray(xt.todense() if sparse.issparse(xt) else xt, dtype=np.float32)
    xt = xs.T.tocsr() if sparse.issparse(xs) else np.asarray(xs, dtype=np.float64).T
    if sparse.issparse(xt):
        pca = PCA(n_components=n_components, svd_solver="arpack", random_state=random_state)
        xt = xt.astype(np.float64)
    else:
        pca = PCA(n_components=n_components, svd_solver="auto", random_state=random_state)
    scores = pca.fit_transform(xt)
    # one global rescaling (the first component gets unit SD over genes); no whitening
    scores /= max(float(scores[:, 0].std()), 1e-12)
    return scores.astype(np.float32)


def library_log_stats(x, train_idx: np.ndarray) -> tuple[float, float]:
    """Mean and SD of log library sizes of training cells (prior of paper eq. 14)."""
    lib = np.asarray(x.sum(axis=1)).ravel().astype(np.float64)[np.sort(train_idx)]  # no row copy
    log_lib = np.log(np.clip(lib, 1e-8, None))
    std = float(log_lib.std()) if len(log_lib) > 1 else 1.0
    return float(log_lib.mean()), max(std, 1e-6)
