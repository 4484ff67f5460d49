"""``mv.tl.srrr``: sparse reduced-rank regression with a gene budget."""

from __future__ import annotations

import mudata as md
import numpy as np
import pandas as pd

from multiviz._validate import check_level

from .. import _logging as logg
from .._docs import COPY, doc_params
from .._validate import (
    InputError,
    check_bool,
    check_fit_finite,
    check_float,
    check_int,
    check_min_obs,
    check_random_state,
    check_str,
    check_unique_names,
    check_writable,
)
from ..linear._srrr import srrr_budget, srrr_fit
from ._checks import check_n_genes, check_prepared
from ._heldout import (
    describe,
    heldout_split,
    score_heldout,
    train_scores,
    training_part,
)
from ._intervals import LEVEL, bounds
from ._paired_data import PairedArrays, full_arrays


def fit_srrr(
    data: PairedArrays,
    *,
    rank: int = 2,
    n_genes: int | None = 25,
    lam: float | None = None,
    alpha: float = 1.0,
    relaxed: bool = True,
):
    """Fit sRRR on arrays; returns ``(result, path DataFrame)``."""
    if lam is not None:
        res = srrr_fit(data.X, data.Y, rank=rank, lam=lam, alpha=alpha, relaxed=relaxed)
        path = pd.DataFrame(
            [
                {
                    "lam": lam,
                    "n_selected": int(res.selected.sum()),
                    "loss": res.loss[-1],
                    "n_iter": res.n_iter,
                }
            ]
        )
        return res, path
    return srrr_budget(data.X, data.Y, rank=rank, n_genes=n_genes, alpha=alpha, relaxed=relaxed)


def _check_scalars(rank, n_genes, lam, alpha, relaxed, key_added, copy) -> None:
    """Everything that can be checked before reading the data."""
    check_int(rank, "rank", minimum=1)
    if (n_genes is None) == (lam is None):
        raise InputError("Pass exactly one of `n_genes` (gene budget) and `lam` (fixed penalty).")
    if n_genes is not None:
        check_int(n_genes, "n_genes", minimum=1)
    if lam is not None:
        check_float(lam, "lam", low=0.0, low_open=True)
    check_float(alpha, "alpha", low=0.0, high=1.0, low_open=True)
    check_bool(relaxed, "relaxed")
    check_str(key_added, "key_added")
    check_bool(copy, "copy")


def _check_srrr_args(rank, n_genes, lam, alpha, data: PairedArrays) -> None:
    if rank > data.Y.shape[1]:
        raise InputError(
            f"`rank`={rank} exceeds the number of (varying) targets ({data.Y.shape[1]}); "
            "lower `rank`."
        )
    if n_genes is not None:
        check_n_genes(n_genes, data.X.shape[1])
    check_min_obs(data.X.shape[0], 3, "mdata", "cells")


@doc_params(copy=COPY)
def srrr(
    mdata: md.MuData,
    *,
    x: str = "rna",
    y: str | None = None,
    rank: int = 2,
    n_genes: int | None = 25,
    lam: float | None = None,
    alpha: float = 1.0,
    relaxed: bool = True,
    genes=None,
    train_size: float = 0.9,
    interval: float | None = LEVEL,
    random_state: int = 0,
    key_added: str = "srrr",
    copy: bool = False,
):
    r"""Sparse reduced-rank regression (Kobak et al. 2021; sBNN paper, eq. 1-2).

    :math:`\hat Y = X W V^\top` with a group lasso on the rows of :math:`W` (one
    group per gene). With ``n_genes`` (default 25, the paper's budget) the penalty is
    found by bisection so that exactly ``n_genes`` genes are selected; with ``lam`` it
    is fixed. The relaxed variant (default, as in the paper) refits the selected genes
    with a ridge penalty of the same strength.

    Parameters
    ----------
    mdata
        Paired MuData (``.X`` of each modality, z-scored after ``prepare_paired``).
    x, y
        Gene and target modalities.
    rank
        Bottleneck rank: 2 (sRRR-2) or the number of targets (full rank, 16 on M1).
    n_genes, lam
        Gene budget or fixed penalty; pass exactly one (``n_genes=None`` with ``lam``).
    alpha
        Elastic-net mixing, 1.0 = pure group lasso (paper).
    relaxed
        Ridge refit on the selected genes ("relaxed elastic net", paper Methods).
    genes
        Restrict the input genes (boolean ``var`` column, mask or list of names).
    train_size
        Fraction of the cells the model is fitted on (0.9, as scvi-tools' models); the rest
        are held out and scored (``r2_heldout``, with the training mean), and a warning
        (:class:`~multiviz.FitQualityWarning`) says when the held-out R² does not beat the
        mean predictor. ``1.0`` fits every cell (no held-out numbers), as the paper's
        figures do.
    interval
        Coverage of the prediction intervals (0.9): split conformal from the held-out
        cells' residuals, with the held-out count set as :func:`multiviz.tl.sbnn` says;
        ``None`` skips them.
    random_state
        Seed of the held-out cells (the fit itself is deterministic).
    key_added
        Prefix of the keys written.
    {copy}

    Returns
    -------
    ``None`` (or the copy). Writes ``mdata.obsm[f"X_{key_added}"]`` (and in
    ``mdata[x].obsm``), ``mdata[x].var[f"{key_added}_selected"]``,
    ``mdata[x].varm[f"{key_added}_loadings"]`` (W, zero rows outside ``genes``),
    ``mdata[y].layers[f"{key_added}_pred"]`` (with ``_pred_lower``/``_pred_upper``, the
    ``interval`` bounds) and ``mdata.uns[key_added]`` (``V``, ``prediction_interval``,
    ``x_mean``, ``y_mean``, ``lam``, ``path``, ``params``, ``r2_train`` on the training
    cells; ``r2_heldout``, ``r2_heldout_per_feature``, ``n_heldout`` and ``heldout_cells``
    on the held-out ones, see ``train_size``; :func:`multiviz.tl.cross_validate` averages
    10 folds).

    New cells project with what is stored: z-score them with the reference's
    ``mdata[x].var["zscore_mean"/"zscore_std"]``, then
    ``latent = (X_new - uns[key_added]["x_mean"]) @ varm[f"{key_added}_loadings"]`` and
    ``pred = latent @ uns[key_added]["V"].T + uns[key_added]["y_mean"]`` (see
    :func:`multiviz.tl.project`). Constant target features are dropped with a warning
    (their R² is undefined) and predicted as their constant z-score, 0.

    Raises
    ------
    InputError
        Invalid arguments or unprocessed input (raw counts, targets not z-scored: run
        :func:`multiviz.pp.prepare_paired` first), before any work.
    FitError
        The fit produced non-finite values; nothing is written.

    Examples
    --------
    >>> mv.pp.prepare_paired(mdata, x="rna", y="ephys")
    >>> mv.tl.srrr(mdata, rank=2, n_genes=25)
    >>> mdata.uns["srrr"]["selected_genes"][:5]
    """
    data, random_state, interval = _check_srrr_inputs(
        mdata,
        x,
        y,
        genes,
        rank,
        n_genes,
        lam,
        alpha,
        relaxed,
        key_added,
        copy,
        random_state,
        interval,
    )
    split = heldout_split(data.X.shape[0], train_size, random_state, min_train=3, level=interval)
    fit = _fit_and_score(data, split, rank, n_genes, lam, alpha, relaxed, interval)
    params = {
        "x": data.x,
        "y": data.y,
        "rank": int(rank),
        "alpha": float(alpha),
        "relaxed": bool(relaxed),
        "n_genes": -1 if n_genes is None else int(n_genes),
        "train_size": float(train_size),
        "random_state": random_state,
    }
    if copy:
        mdata = mdata.copy()
    _write_srrr(mdata, data, split, fit, params, key_added)
    return mdata if copy else None


def _check_srrr_inputs(
    mdata: md.MuData,
    x: str,
    y: str | None,
    genes,
    rank: int,
    n_genes: int | None,
    lam: float | None,
    alpha: float,
    relaxed: bool,
    key_added: str,
    copy: bool,
    random_state: int,
    interval: float | None,
) -> tuple[PairedArrays, int, float | None]:
    """Validate arguments and data; the paired arrays, the seed and the interval level."""
    _check_scalars(rank, n_genes, lam, alpha, relaxed, key_added, copy)
    if not copy:
        check_writable(mdata, "mdata")
    check_unique_names(mdata, "mdata")
    check_prepared(mdata, x, y)
    data = full_arrays(mdata, x=x, y=y, genes=genes)
    _check_srrr_args(rank, n_genes, lam, alpha, data)
    random_state = check_random_state(random_state)
    interval = check_level(interval)
    return data, random_state, interval


def _fit_and_score(
    data: PairedArrays,
    split,
    rank: int,
    n_genes: int | None,
    lam: float | None,
    alpha: float,
    relaxed: bool,
    interval: float | None,
) -> dict:
    """Fit on the training cells; latent, predictions, held-out scores and interval record."""
    from ..train import fit_context

    with fit_context(f"sRRR-{rank}"):
        res, path = fit_srrr(
            training_part(data, split),
            rank=rank,
            n_genes=n_genes,
            lam=lam,
            alpha=alpha,
            relaxed=relaxed,
        )
        latent = res.transform(data.X)
        pred = res.predict(data.X)
        check_fit_finite(
            [latent, pred, res.W, res.V],
            model=f"sRRR-{rank}",
            phase="the penalty path",
            hint="Check the inputs for extreme values",
        )
        scores, record = score_heldout(
            data,
            pred,
            split,
            model=f"sRRR-{rank}",
            interval=interval,
            fix="Try fewer genes (`n_genes`) or a lower `rank`; check the targets.",
        )
    return {
        "res": res,
        "path": path,
        "latent": latent,
        "pred": pred,
        "scores": scores,
        "record": record,
    }


def _write_srrr(
    mdata: md.MuData, data: PairedArrays, split, fit: dict, params: dict, key_added: str
) -> None:
    """Write latent, loadings, predictions (with bounds) and ``uns[key_added]``; log a summary."""
    res, pred, scores, record = fit["res"], fit["pred"], fit["scores"], fit["record"]
    rank = params["rank"]
    pred_all = data.full_predictions(pred).astype(np.float32)
    rna, target = mdata.mod[data.x], mdata.mod[data.y]
    idx = np.flatnonzero(data.gene_mask)
    W = np.zeros((rna.n_vars, rank))
    W[idx] = res.W
    selected = np.linalg.norm(W, axis=1) > 0
    mdata.obsm[f"X_{key_added}"] = fit["latent"]
    rna.obsm[f"X_{key_added}"] = fit["latent"]
    rna.var[f"{key_added}_selected"] = selected
    rna.varm[f"{key_added}_loadings"] = W
    target.layers[f"{key_added}_pred"] = pred_all
    if record is not None:
        lower, upper = bounds(pred_all, record, target.var_names)
        target.layers[f"{key_added}_pred_lower"] = lower
        target.layers[f"{key_added}_pred_upper"] = upper
    x_mean = np.zeros(rna.n_vars)
    x_mean[idx] = res.x_mean
    y_mean = np.zeros(target.n_vars)
    y_mean[data.feature_mask] = res.y_mean
    V = np.zeros((target.n_vars, rank))
    V[data.feature_mask] = res.V
    order = np.argsort(-np.linalg.norm(W[selected], axis=1), kind="stable")
    mdata.uns[key_added] = {
        "params": params,
        "V": V,
        "x_mean": x_mean,
        "y_mean": y_mean,
        "features_dropped": np.asarray(
            [str(f) for f in target.var_names[~data.feature_mask]], dtype=object
        ),
        "lam": res.lam,
        "path": fit["path"],
        "selected_genes": np.asarray(
            [str(g) for g in rna.var_names[selected][order]], dtype=object
        ),
        **train_scores(data, pred, split),
        **scores,
        **(
            {"heldout_cells": np.asarray(rna.obs_names[split.test], dtype=object)} if scores else {}
        ),
        **({} if record is None else {"prediction_interval": record}),
    }
    logg.info(
        "    sRRR-%d: lam %.4g, %d genes, %strain R² %.3f",
        rank,
        res.lam,
        selected.sum(),
        describe(scores),
        mdata.uns[key_added]["r2_train"],
    )
