"""``mv.tl.cross_validate``: leakage-free K-fold cross-validation of sBNN / sRRR."""

from __future__ import annotations

import time

import mudata as md
import numpy as np
import pandas as pd
from sklearn.model_selection import KFold

from .. import _logging as logg
from .._validate import (
    InputError,
    check_min_obs,
    check_option,
    check_positive_int,
    check_random_state,
)
from ..metrics._r2 import r2_per_feature, r2_score
from ._paired_data import check_n_genes, fold_arrays, resolve_inputs


def cv_folds(n_obs: int, n_folds: int = 10, random_state: int = 0) -> np.ndarray:
    """Fold index of every cell: shuffled K-fold, identical for every method given the seed."""
    folds = np.empty(n_obs, dtype=int)
    for k, (_, test) in enumerate(
        KFold(n_folds, shuffle=True, random_state=random_state).split(np.arange(n_obs))
    ):
        folds[test] = k
    return folds


def _fit_predict(method, train, test, params):
    if method == "srrr":
        from ._srrr import fit_srrr

        kw = {"rank": 2, "n_genes": 25, "lam": None, "alpha": 1.0, "relaxed": True}
        kw.update(params)
        if kw["lam"] is not None:
            kw["n_genes"] = None
        res, _ = fit_srrr(train, **kw)
        sel = np.flatnonzero(res.selected)
        order = np.argsort(-np.linalg.norm(res.W[sel], axis=1), kind="stable")
        return res.predict(train.X), res.predict(test.X), list(train.gene_names[sel[order]])
    from ._sbnn import fit_sbnn, sbnn_forward

    kw = {"bottleneck": 2, "n_genes": 25, "lasso": 0.1, "pretrain": True, "random_state": 0}
    kw.update(params)
    model = fit_sbnn(train, **kw)
    _, pred_tr = sbnn_forward(model, train.X)
    _, pred_te = sbnn_forward(model, test.X)
    idx = model.module.gene_index.cpu().numpy()
    order = np.argsort(-model.weight_norms_[idx], kind="stable")
    return pred_tr, pred_te, list(train.gene_names[idx[order]])


def cross_validate(
    mdata: md.MuData,
    method: str = "sbnn",
    *,
    n_folds: int = 10,
    folds: list[int] | None = None,
    x: str = "rna",
    y: str | None = None,
    genes=None,
    random_state: int = 0,
    key_added: str | None = None,
    **kwargs,
) -> pd.DataFrame:
    """K-fold cross-validated :math:`R^2` (sBNN paper, eq. 3/4) without test-fold leakage.

    The folds are a shuffled :class:`~sklearn.model_selection.KFold` split seeded by
    ``random_state`` (:func:`cv_folds`), so every method sees identical folds and every
    cell is tested once (the paper used the same folds for all models). Inside each
    fold, everything is fitted on the training cells only: the median library size
    and ``log2`` normalisation (from ``layers["counts"]``), the z-scoring of genes and
    targets, the sRRR penalty path, the sBNN's k-means labels and pre-training
    hold-out. The sBNN trains fixed epochs (no checkpoint is chosen on the test fold).
    Test targets are centred/scaled with training statistics, as eq. (3) requires.

    Parameters
    ----------
    mdata
        Paired MuData after :func:`multiviz.pp.prepare_paired` (its ``counts`` /
        ``log2norm`` / ``unscaled`` layers are used to refit preprocessing per fold).
    method
        ``"sbnn"`` or ``"srrr"``.
    n_folds
        Number of folds (10 in the paper).
    folds
        Run only these fold indices (the split is still the ``n_folds`` split).
    x, y, genes
        Modalities and gene restriction, as in :func:`multiviz.tl.sbnn`.
    random_state
        Seed of the split (and the default model seed).
    key_added
        ``mdata.uns`` key of the result (default ``f"cv_{method}"``).
    **kwargs
        Model parameters: for sBNN those of :func:`multiviz.tl.sbnn` (``bottleneck``,
        ``n_genes``, ``lasso``, ``pretrain``, schedule lengths, ...), for sRRR ``rank``,
        ``n_genes`` or ``lam``, ``alpha``, ``relaxed``.

    Returns
    -------
    Tidy DataFrame with one row per fold and feature plus a multivariate row
    (``feature == "all"``): ``method, params, fold, feature, r2, r2_train, n_genes,
    genes, seconds``; also stored in ``mdata.uns[key_added]``.
    """
    check_option(method, ("sbnn", "srrr"), "method")
    check_positive_int(n_folds, "n_folds")
    random_state = check_random_state(random_state)
    if n_folds < 2:
        raise InputError("`n_folds` must be at least 2.")
    y, rna, target, mask = resolve_inputs(mdata, x, y, genes, None, None)
    n_obs = mdata.n_obs
    check_min_obs(n_obs, n_folds, "mdata", f"cells (one per fold, n_folds={n_folds})")
    if "n_genes" in kwargs and kwargs["n_genes"] is not None:
        check_n_genes(kwargs["n_genes"], int(mask.sum()))
    if method == "sbnn":
        kwargs.setdefault("random_state", random_state)
    fold_of = cv_folds(n_obs, n_folds, random_state)
    run = range(n_folds) if folds is None else list(folds)
    params = ", ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
    rows = []
    for k in run:
        train, test = np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k)
        tr, te = fold_arrays(mdata, train, test, x=x, y=y, genes=genes)
        t0 = time.perf_counter()
        pred_tr, pred_te, sel = _fit_predict(method, tr, te, dict(kwargs))
        seconds = time.perf_counter() - t0
        per = r2_per_feature(te.Y, pred_te)
        per_tr = r2_per_feature(tr.Y, pred_tr)
        common = {
            "method": method,
            "params": params,
            "fold": k,
            "n_genes": len(sel),
            "genes": ";".join(map(str, sel)),
            "seconds": seconds,
        }
        rows.append(
            {
                **common,
                "feature": "all",
                "r2": r2_score(te.Y, pred_te),
                "r2_train": r2_score(tr.Y, pred_tr),
            }
        )
        for f, r, rt in zip(te.feature_names, per, per_tr):
            rows.append({**common, "feature": str(f), "r2": float(r), "r2_train": float(rt)})
        logg.info(
            "    %s fold %d: test R² %.3f (%.1fs)", method, k, rows[-len(per) - 1]["r2"], seconds
        )
    df = pd.DataFrame(rows)
    mdata.uns[key_added or f"cv_{method}"] = df
    return df
