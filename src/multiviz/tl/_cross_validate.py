"""``mv.tl.cross_validate``: leakage-free K-fold cross-validation of sBNN / sRRR."""

from __future__ import annotations

import mudata as md
import numpy as np
import pandas as pd
from sklearn.model_selection import KFold

from multiviz._validate import check_folds, check_level

from .._docs import PAIRED_EXAMPLE, doc_params
from .._validate import (
    InputError,
    check_bool,
    check_int,
    check_option,
    check_random_state,
    check_unique_names,
    check_writable,
)
from ._checks import check_model_kwargs, check_n_genes
from ._cv_checks import (
    baseline_kwargs,
    min_training_cells,
    safe_first_call,
    warn_if_linear_is_better,
    warn_if_no_better_than_mean,
)
from ._cv_scoring import FoldLog, score_folds, write_out_of_fold
from ._ensemble_fits import fit_sbnn_members, fit_srrr_member
from ._intervals import LEVEL
from ._out_of_fold import out_of_fold
from ._paired_data import fold_arrays, resolve_inputs


def cv_folds(n_obs: int, n_folds: int = 10, random_state: int = 0) -> np.ndarray:
    """Fold index of every cell: shuffled K-fold, identical for every method given the seed.

    Examples
    --------
    >>> import multiviz as mv
    >>> folds = mv.tl.cv_folds(1213, n_folds=10, random_state=0)  # fold index per cell
    >>> folds.shape
    (1213,)
    """
    random_state = check_random_state(random_state)
    n_folds = check_int(n_folds, "n_folds", minimum=2)
    if n_obs < n_folds:
        raise InputError(
            f"`n_folds`={n_folds} is more than the {n_obs} cells: each fold needs at least "
            f"one test cell. Lower `n_folds` to at most {n_obs}, or use more cells."
        )
    folds = np.empty(n_obs, dtype=int)
    for k, (_, test) in enumerate(
        KFold(n_folds, shuffle=True, random_state=random_state).split(np.arange(n_obs))
    ):
        folds[test] = k
    return folds


@doc_params(paired_example=PAIRED_EXAMPLE)
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
    ensemble: bool = True,
    return_predictions: bool = False,
    linear_baseline: bool = True,
    interval: float | None = LEVEL,
    align_to: str | None = None,
    enable_progress_bar: bool | None = None,
    **kwargs,
) -> pd.DataFrame | tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """K-fold cross-validated :math:`R^2` (sBNN paper, eq. 3/4) without test-fold leakage.

    The folds are a shuffled :class:`~sklearn.model_selection.KFold` split seeded by
    ``random_state`` (:func:`cv_folds`), so every method sees identical folds and every
    cell is tested once (the paper used the same folds for all models). Inside each
    fold, everything is fitted on the training cells only: the median library size
    and ``log2`` normalisation (from ``layers["counts"]``), the z-scoring of genes and
    targets, the sRRR penalty path, the sBNN's k-means labels and pre-training
    hold-out. The sBNN trains the paper's fixed schedule (no checkpoint is chosen on
    the test fold). Test targets are centred/scaled with training statistics, as
    eq. (3) requires.

    With ``method="sbnn"`` the folds' networks train by default as one batched ensemble
    (``ensemble=True``: one stacked network, each member on its own fold's cells with its
    own k-means labels, z-scoring and 25 genes, the same schedule and seed as a
    sequential fit; genes the group lasso has zeroed are no longer computed — see
    :mod:`multiviz.models.sbnn._ensemble_plan`). ``ensemble=False`` trains the folds one
    after another with :func:`multiviz.tl.sbnn`'s fit. On M1 (1,213 cells, 1,000 genes)
    at one CPU thread a 10-fold sBNN-2 CV takes a few minutes with the ensemble, 10
    single fits without (see ``benchmarks/results/ensemble.json``).

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
        Run only these fold indices (distinct, in ``0 .. n_folds - 1``; the split is
        still the ``n_folds`` split).
    x, y, genes
        Modalities and gene restriction, as in :func:`multiviz.tl.sbnn`.
    random_state
        Seed of the split (and the default model seed).
    key_added
        Prefix of what is written (default ``f"cv_{method}"``).
    ensemble
        Train the sBNN folds as one batched ensemble (default) or sequentially.
    return_predictions
        Also return and write the out-of-fold predictions and latents (needs every fold).
    linear_baseline
        For ``method="sbnn"``: also fit the linear model a user already has, sRRR with
        ``rank`` = the bottleneck and the same number of genes, on the same folds and
        preprocessing (seconds, against minutes for the sBNN). Its held-out R² is column
        ``r2_linear`` of the ``"all"`` rows, and a warning says so when the sBNN does not
        beat it on average (e.g. 80 cells of M1: sBNN-2 ~0.05-0.20, sRRR-2 0.32).
    interval
        With ``return_predictions``: coverage of each cell's prediction interval (0.9),
        from the *other* cells' out-of-fold residuals (split conformal);
        ``None`` skips it.
    align_to
        With ``return_predictions``: ``obsm`` key of the latent every fold's latent is
        rotated onto (orthogonal Procrustes with centring), e.g. ``"X_sbnn"`` of a full
        :func:`multiviz.tl.sbnn` fit, which puts the axes of every run and seed into that
        fit's frame; ``None``: fold 0's latent.
    enable_progress_bar
        Fold (sequential) or epoch (ensemble) progress bar; ``None`` follows
        ``mv.settings.verbosity``.
    **kwargs
        Model parameters: for sBNN those of :func:`multiviz.tl.sbnn` (``bottleneck``,
        ``n_genes``, ``lasso``, ``pretrain``, schedule lengths, ``lr``, ``batch_size``, the
        training vocabulary), for sRRR ``rank``, ``n_genes`` or ``lam``, ``alpha``,
        ``relaxed``. Unknown names are an error.

    Returns
    -------
    Tidy DataFrame with one row per fold and feature plus a multivariate row
    (``feature == "all"``): ``method, params, fold, feature, r2, r2_train, n_genes,
    genes, seconds`` (process CPU seconds; for the ensemble its total divided by the
    folds), and ``r2_linear`` (see ``linear_baseline``; NaN on per-feature rows); also stored in ``mdata.uns[key_added]``. With ``return_predictions=True``,
    ``(df, predictions, latent)``, and written:

    - ``mdata[y].layers[f"{key_added}_pred"]``: each cell's prediction by the model that
      did not see it, in the units of ``mdata[y].layers["unscaled"]`` (raw feature
      values) when that layer exists, else of ``mdata[y].X``;
    - ``mdata[y].layers[f"{key_added}_pred_lower"]`` / ``[f"{key_added}_pred_upper"]``:
      the bounds of the ``interval`` prediction interval around that prediction (same
      units), and ``mdata.uns[f"{key_added}_prediction_interval"]``: ``level``,
      ``method``, ``n_calibration`` and per-feature ``halfwidth`` from all the cells'
      out-of-fold residuals (for new cells predicted by a full fit);
    - ``mdata.obsm[f"X_{key_added}"]``: each cell's latent under the model that did not
      see it, every fold's latent rotated onto the reference (``align_to``; orthogonal
      Procrustes over all cells), so that ``mv.pl``/``mu.pl.embedding(mdata, basis=...)``
      can draw it;
    - ``mdata.obsm[f"X_{key_added}_spread"]`` (per-axis standard deviation) and
      ``mdata.obs[f"{key_added}_latent_spread"]`` (root-mean-square distance): how far
      the folds' models, aligned to the reference, disagree on each cell's position
      (drawn by :func:`multiviz.pl.latent_spread`);
    - ``mdata.obs[f"{key_added}_fold"]``: the cell's test fold.

    Warns
    -----
    When the mean held-out R² over the folds is not above 0 (the mean predictor's
    score), a warning names the likely causes and fixes; the table is still written.

    Examples
    --------
    {paired_example}
    >>> cv = mv.tl.cross_validate(mdata, method="srrr", n_folds=10, rank=2, n_genes=25)
    >>> cv = mv.tl.cross_validate(mdata, method="sbnn", n_folds=10)  # batched ensemble, ~5 fits' time
    >>> cv.query("feature == 'all'").groupby("method")["r2"].agg(["mean", "std"])
    """
    check_option(method, ("sbnn", "srrr"), "method")
    n_folds = check_int(n_folds, "n_folds", minimum=2)
    random_state = check_random_state(random_state)
    ensemble = check_bool(ensemble, "ensemble")
    return_predictions = check_bool(return_predictions, "return_predictions")
    linear_baseline = check_bool(linear_baseline, "linear_baseline") and method == "sbnn"
    interval = check_level(interval)
    y, target, run, fold_of, n_train = _check_cv_data(
        mdata, method, n_folds, folds, x, y, genes, random_state, return_predictions, align_to,
        kwargs,
    )  # fmt: skip
    if method == "sbnn":
        kwargs.setdefault("random_state", random_state)
    params = ", ".join(f"{k}={v!r}" for k, v in sorted(kwargs.items()))
    key = key_added or f"cv_{method}"
    from ..train import fit_context, resolve_progress_bar

    progress = resolve_progress_bar(enable_progress_bar)
    what = f"{len(run)}-fold CV of " + (
        f"sBNN-{kwargs.get('bottleneck', 2)}" + (" (ensemble)" if ensemble else "")
        if method == "sbnn"
        else f"sRRR-{kwargs.get('rank', 2)}"
    )
    with fit_context(what):
        test_rows = np.arange(mdata.n_obs) if return_predictions else None
        arrays = [
            fold_arrays(
                mdata,
                np.flatnonzero(fold_of != k),
                np.flatnonzero(fold_of == k) if test_rows is None else test_rows,
                x=x,
                y=y,
                genes=genes,
            )
            for k in run
        ]
        log = FoldLog(method, run, fold_of, arrays, return_predictions)
        fits = _fit_folds(
            method, arrays, kwargs, ensemble=ensemble, progress=progress, on_fold_done=log.done
        )
        linear = (
            _fit_folds("srrr", arrays, baseline_kwargs(kwargs), ensemble=False, progress=False)
            if linear_baseline
            else [None] * len(fits)
        )
        scored = score_folds(
            run, arrays, fits, linear, fold_of, return_predictions, what, params, method, log
        )
        if return_predictions:
            reference = None if align_to is None else np.asarray(mdata.obsm[align_to])
            out = out_of_fold(
                mdata, target, fold_of, run, scored.preds, scored.latents, reference, interval
            )
    warn_if_no_better_than_mean(scored.table, method, n_train, kwargs)
    if linear_baseline:
        warn_if_linear_is_better(scored.table, n_train, kwargs)
    # ---- everything computed; now write
    mdata.uns[key] = scored.table
    if not return_predictions:
        return scored.table
    write_out_of_fold(mdata, target, key, out, fold_of)
    return scored.table, out.pred, out.latent


def _check_cv_data(
    mdata, method, n_folds, folds, x, y, genes, random_state, return_predictions, align_to, kwargs
) -> tuple:
    """Container, fold and size checks.

    Returns the target's resolved name and modality, the folds run, every cell's fold and
    the smallest training fold's size.
    """
    if align_to is not None and align_to not in mdata.obsm:
        raise InputError(
            f"`align_to={align_to!r}` is not in `mdata.obsm` ({sorted(mdata.obsm)}); pass the "
            "key of a full fit's latent (e.g. 'X_sbnn' after `mv.tl.sbnn`), or None."
        )
    check_model_kwargs(method, kwargs, "cross_validate")
    from .._validate import check_accelerator

    check_accelerator(kwargs.get("accelerator", "auto"))
    y, _, target, mask = resolve_inputs(mdata, x, y, genes, None, None)
    check_writable(mdata, "mdata")
    check_unique_names(mdata, "mdata")
    safe_first_call(mdata, x, y)
    run = check_folds(folds, n_folds)
    if return_predictions and len(run) != n_folds:
        raise InputError(
            f"`return_predictions=True` needs every fold (each cell predicted once); got "
            f"`folds={folds!r}`. Leave `folds` at None."
        )
    n_obs = mdata.n_obs
    if n_obs < n_folds:
        raise InputError(
            f"`mdata` has {n_obs} cells, fewer than `n_folds`={n_folds}; at least {n_folds} "
            "cells are needed (one per fold). Lower `n_folds`."
        )
    if kwargs.get("n_genes") is not None:
        check_n_genes(kwargs["n_genes"], int(mask.sum()))
    fold_of = cv_folds(n_obs, n_folds, random_state)
    n_train = n_obs - int(np.bincount(fold_of, minlength=n_folds).max())
    minimum, why = min_training_cells(method, kwargs)
    if n_train < minimum:
        raise InputError(
            f"{n_folds}-fold cross-validation leaves {n_train} training cells in the smallest "
            f"training fold; {method} needs at least {minimum} ({why}). Use more cells or "
            "fewer folds."
        )
    return y, target, run, fold_of, n_train


def _fit_folds(method, arrays, kwargs, *, ensemble, progress, on_fold_done=None):
    if method == "srrr":
        return [fit_srrr_member(tr, kwargs) for tr, _ in arrays]
    trains = [tr for tr, _ in arrays]
    seeds = [kwargs["random_state"]] * len(trains)
    params = {k: v for k, v in kwargs.items() if k != "random_state"}
    if ensemble:
        return fit_sbnn_members(trains, seeds, params, ensemble=True, progress=progress)
    from tqdm.auto import tqdm

    with tqdm(total=len(trains), disable=not progress, desc="folds", unit="fold") as bar:

        def done(i: int, fit) -> None:
            bar.update(1)
            if on_fold_done is not None:
                on_fold_done(i, fit)

        return fit_sbnn_members(
            trains, seeds, params, ensemble=False, progress=False, on_member_done=done
        )
