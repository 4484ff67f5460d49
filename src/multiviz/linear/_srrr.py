r"""Sparse reduced-rank regression (sRRR) with a group-lasso / elastic-net penalty.

Model (Kobak et al. 2021; sBNN paper, eq. 1-2): :math:`\hat Y = X W V^\top` with
:math:`V^\top V = I`, fitted by minimising

.. math::
    \frac{1}{2n}\lVert Y - X W V^\top\rVert^2
    + \lambda\Big[\alpha \sum_i \lVert W_i\rVert_2 + \frac{1-\alpha}{2}\lVert W\rVert^2\Big]

by alternating a multi-response elastic-net step for :math:`W` (scikit-learn's
:class:`~sklearn.linear_model.MultiTaskElasticNet`, the same objective as glmnet's
``mgaussian`` family, on the targets :math:`YV`) with an orthogonal Procrustes step for
:math:`V` (SVD of :math:`Y^\top X W`). The "relaxed" variant refits the selected genes
with a ridge penalty of the same strength, solved in closed form.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import MultiTaskElasticNet

from .. import _logging as logg
from .._validate import check_varying_genes
from .._warnings import FitQualityWarning


@dataclass
class SRRRResult:
    """A fitted sRRR model on centred data (all arrays are plain numpy)."""

    W: np.ndarray
    """Encoder, ``(n_genes, rank)``; zero rows for genes that were not selected."""
    V: np.ndarray
    """Decoder with orthonormal columns, ``(n_features, rank)``."""
    lam: float
    alpha: float
    x_mean: np.ndarray
    y_mean: np.ndarray
    relaxed: bool
    n_iter: int
    loss: list[float] = field(default_factory=list)

    @property
    def selected(self) -> np.ndarray:
        """Boolean mask of genes with a non-zero encoder row."""
        return np.linalg.norm(self.W, axis=1) > 0

    def transform(self, X) -> np.ndarray:
        r"""Latent representation :math:`(X - \bar x) W`."""
        return (np.asarray(X, dtype=np.float64) - self.x_mean) @ self.W

    def predict(self, X) -> np.ndarray:
        r"""Predicted targets :math:`(X - \bar x) W V^\top + \bar y`."""
        return self.transform(X) @ self.V.T + self.y_mean


def _objective(X, Y, W, V, lam, alpha, XW=None) -> float:
    n = X.shape[0]
    resid = Y - (X @ W if XW is None else XW) @ V.T
    pen = alpha * np.linalg.norm(W, axis=1).sum() + 0.5 * (1 - alpha) * np.sum(W**2)
    return float(0.5 / n * np.sum(resid**2) + lam * pen)


def _procrustes(X, Y, W, XW=None) -> np.ndarray:
    U, _, Zt = np.linalg.svd(Y.T @ (X @ W if XW is None else XW), full_matrices=False)
    return U @ Zt


def _top_right_vectors(M: np.ndarray, rank: int) -> np.ndarray:
    """Top ``rank`` right singular vectors of a tall matrix, via the small Gram ``M'M``."""
    evals, evecs = np.linalg.eigh(M.T @ M)
    return evecs[:, np.argsort(-evals, kind="stable")[:rank]]


def _initial_v(X, Y, rank) -> np.ndarray:
    return _top_right_vectors(X.T @ Y, rank)


def _canonicalise(X, W, V) -> tuple[np.ndarray, np.ndarray]:
    """Order components by latent variance and fix signs (largest |V| entry positive)."""
    var = np.sum((X @ W) ** 2, axis=0)
    order = np.argsort(-var, kind="stable")
    W, V = W[:, order], V[:, order]
    idx = np.argmax(np.abs(V), axis=0)
    signs = np.sign(V[idx, np.arange(V.shape[1])])
    signs[signs == 0] = 1.0
    return W * signs, V * signs


def _ridge_rrr(X, Y, rank, lam) -> tuple[np.ndarray, np.ndarray]:
    """Closed-form ridge reduced-rank regression (the relaxation step).

    Minimises ``1/(2n)||Y - X W V'||^2 + lam/2 ||W||^2``: the ridge solution ``B`` is
    projected onto the top right singular vectors of the augmented fitted values
    ``[X B; sqrt(n lam) B]``.
    """
    n, k = X.shape
    c = n * lam
    B = np.linalg.solve(X.T @ X + c * np.eye(k), X.T @ Y)
    XB = X @ B
    # right singular vectors of [X B; sqrt(c) B] from its q x q Gram matrix
    evals, evecs = np.linalg.eigh(XB.T @ XB + c * (B.T @ B))
    V = evecs[:, np.argsort(-evals, kind="stable")[:rank]]
    if V.shape[1] < rank:  # fewer targets than rank cannot happen; guard anyway
        V = np.hstack([V, np.zeros((V.shape[0], rank - V.shape[1]))])
    return B @ V, V


def _center(X, Y):
    X = np.asarray(X, dtype=np.float64)
    Y = np.asarray(Y, dtype=np.float64)
    x_mean, y_mean = X.mean(axis=0), Y.mean(axis=0)
    return np.asfortranarray(X - x_mean), Y - y_mean, x_mean, y_mean


def _alternate(Xc, Yc, rank, lam, alpha, *, V0=None, W0=None, max_iter=100, tol=1e-6):
    n, p = Xc.shape
    V = _initial_v(Xc, Yc, rank) if V0 is None else V0.copy()
    enet = MultiTaskElasticNet(
        alpha=lam, l1_ratio=alpha, fit_intercept=False, warm_start=True, max_iter=5000, tol=1e-4
    )
    enet.copy_X = False
    if W0 is not None:
        enet.coef_ = np.ascontiguousarray(W0.T)
    losses: list[float] = []
    W = np.zeros((p, rank)) if W0 is None else W0.copy()
    n_iter = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for n_iter in range(1, max_iter + 1):  # noqa: B007
            enet.fit(Xc, Yc @ V)
            W = enet.coef_.T.copy()
            if not np.any(W):
                losses.append(_objective(Xc, Yc, W, V, lam, alpha))
                break
            XW = Xc @ W
            V = _procrustes(Xc, Yc, W, XW)
            losses.append(_objective(Xc, Yc, W, V, lam, alpha, XW))
            if len(losses) > 1 and abs(losses[-2] - losses[-1]) <= tol * abs(losses[-2]):
                break
    return W, V, n_iter, losses


def srrr_fit(
    X,
    Y,
    *,
    rank: int = 2,
    lam: float,
    alpha: float = 1.0,
    relaxed: bool = True,
    max_iter: int = 100,
    tol: float = 1e-6,
    n_keep: int | None = None,
    _warm: tuple[np.ndarray, np.ndarray] | None = None,
) -> SRRRResult:
    r"""Fit sRRR at one penalty ``lam`` (sBNN paper, eq. 2; Kobak et al. 2021).

    Parameters
    ----------
    X, Y
        Predictors ``(n, p)`` and targets ``(n, q)``; centred internally.
    rank
        Bottleneck rank ``r`` (2 for sRRR-2; ``q`` for full rank, 16 on M1).
    lam
        Penalty strength :math:`\lambda`.
    alpha
        Elastic-net mixing; 1.0 is a pure group lasso (the paper's sRRR).
    relaxed
        Refit the selected genes with a ridge penalty of the same ``lam`` ("relaxed
        elastic net", paper Methods).
    max_iter, tol
        Alternation stops when the relative loss change is below ``tol`` (1e-6).
    n_keep
        If given and more genes are selected, keep the ``n_keep`` with the largest
        encoder row norms before relaxing (used to meet a gene budget exactly).

    Returns
    -------
    :class:`SRRRResult`.
    """
    Xc, Yc, x_mean, y_mean = _center(X, Y)
    V0, W0 = (None, None) if _warm is None else _warm
    W, V, n_iter, losses = _alternate(
        Xc, Yc, rank, lam, alpha, V0=V0, W0=W0, max_iter=max_iter, tol=tol
    )
    return _finish(Xc, Yc, W, V, rank, lam, alpha, relaxed, n_keep, x_mean, y_mean, n_iter, losses)


def _finish(Xc, Yc, W, V, rank, lam, alpha, relaxed, n_keep, x_mean, y_mean, n_iter, losses):
    norms = np.linalg.norm(W, axis=1)
    sel = np.flatnonzero(norms > 0)
    if n_keep is not None and sel.size > n_keep:
        sel = sel[np.argsort(-norms[sel], kind="stable")[:n_keep]]
        mask = np.zeros_like(norms, dtype=bool)
        mask[sel] = True
        W = np.where(mask[:, None], W, 0.0)
    sel = np.sort(sel)
    if sel.size == 0:
        logg.warning(
            "sRRR: no gene survived lam=%.4g; predictions are the training mean.",
            lam,
            category=FitQualityWarning,
        )
    elif relaxed:
        if sel.size < rank:
            logg.warning(
                "sRRR: only %d genes selected for rank %d; the relaxed refit has %d non-zero "
                "components (the rest of the latent is zero).",
                sel.size,
                rank,
                sel.size,
            )
        Ws, V = _ridge_rrr(Xc[:, sel], Yc, rank, lam)
        W = np.zeros_like(W)
        W[sel] = Ws
    elif n_keep is not None:
        V = _procrustes(Xc, Yc, W)
    W, V = _canonicalise(Xc, W, V)
    return SRRRResult(
        W=W,
        V=V,
        lam=float(lam),
        alpha=float(alpha),
        x_mean=x_mean,
        y_mean=y_mean,
        relaxed=bool(relaxed),
        n_iter=n_iter,
        loss=losses,
    )


def lambda_max(X, Y, rank: int, alpha: float = 1.0) -> float:
    """Smallest ``lam`` at which the first W step selects no gene (V at its SVD start)."""
    Xc, Yc, _, _ = _center(X, Y)
    V = _initial_v(Xc, Yc, rank)
    grad = Xc.T @ (Yc @ V) / Xc.shape[0]
    return float(np.linalg.norm(grad, axis=1).max() / max(alpha, 1e-3))


def srrr_budget(
    X,
    Y,
    *,
    rank: int = 2,
    n_genes: int = 25,
    alpha: float = 1.0,
    relaxed: bool = True,
    max_evals: int = 60,
    path_ratio: float = 0.8,
    max_iter: int = 100,
    tol: float = 1e-6,
) -> tuple[SRRRResult, pd.DataFrame]:
    r"""Fit sRRR with the penalty that selects ``n_genes`` genes (the paper's 25-gene sRRR).

    Like glmnet, the penalty descends from :func:`lambda_max` by ``path_ratio`` per
    step with warm starts until at least ``n_genes`` genes are selected, then a
    bisection on :math:`\log\lambda` between the last two penalties looks for one
    selecting exactly ``n_genes``. If none does, the largest evaluated penalty that
    selects more genes is kept and its ``n_genes`` largest encoder rows are retained.

    Returns
    -------
    The fitted :class:`SRRRResult` and the evaluated path (``lam``, ``n_selected``,
    ``loss``, ``n_iter``) as a DataFrame.
    """
    Xc, Yc, x_mean, y_mean = _center(X, Y)
    if n_genes > Xc.shape[1]:
        raise ValueError(f"`n_genes`={n_genes} exceeds the number of genes ({Xc.shape[1]}).")
    check_varying_genes(Xc, n_genes)
    lmax = lambda_max(X, Y, rank, alpha)
    rows: list[dict] = []
    best_over: tuple | None = None  # largest lam whose fit selects more than n_genes
    exact: tuple | None = None
    warm = None
    under_log = np.log(lmax)  # a penalty known to select fewer than n_genes

    def evaluate(lam, warm):
        W, V, n_iter, losses = _alternate(
            Xc,
            Yc,
            rank,
            lam,
            alpha,
            V0=warm[0] if warm else None,
            W0=warm[1] if warm else None,
            max_iter=max_iter,
            tol=tol,
        )
        count = int(np.sum(np.linalg.norm(W, axis=1) > 0))
        rows.append({"lam": lam, "n_selected": count, "loss": losses[-1], "n_iter": n_iter})
        return (lam, W, V, n_iter, losses), count

    # 1) glmnet-style descending path with warm starts until the budget is reached
    log_lam = np.log(lmax)
    for _ in range(max_evals):
        log_lam += np.log(path_ratio)
        fit, count = evaluate(float(np.exp(log_lam)), warm)
        if count == n_genes:
            exact = fit
            break
        if count > n_genes:
            best_over = fit
            break
        under_log = log_lam
        warm = (fit[2], fit[1]) if count > 0 else None
    # 2) bisection on log(lam) between the last two penalties of the path
    if exact is None and best_over is not None:
        lo, hi = np.log(best_over[0]), under_log
        for _ in range(max_evals - len(rows)):
            mid = 0.5 * (lo + hi)
            fit, count = evaluate(float(np.exp(mid)), warm)
            if count == n_genes:
                exact = fit
                break
            if count > n_genes:
                best_over, lo = fit, mid
            else:
                hi = mid
                warm = (fit[2], fit[1]) if count > 0 else warm
            if hi - lo < 1e-4:
                break
    chosen = exact or best_over
    if chosen is None:
        raise RuntimeError("sRRR: no penalty selected enough genes; check the inputs.")
    lam, W, V, n_iter, losses = chosen
    logg.debug("sRRR: lam=%.4g after %d penalties", lam, len(rows))
    res = _finish(Xc, Yc, W, V, rank, lam, alpha, relaxed, n_genes, x_mean, y_mean, n_iter, losses)
    return res, pd.DataFrame(rows)
