"""Held-out numbers at every fit: a split of the cells, scores on the part never trained on.

``mv.tl.sbnn`` and ``mv.tl.srrr`` train on ``train_size`` of the cells (0.9 by default, as
scvi-tools' models and ``mv.tl.sivae`` do) and score the rest. The held-out R² is the sBNN
paper's eq. 3 with the training cells' mean (:func:`multiviz.metrics.r2_score`), so the
mean predictor scores about 0 and a fit that does not beat it says so. The sBNN is also
compared with its linear baseline, sRRR of rank ``bottleneck`` with the same gene budget,
fitted on the same training cells. The split is one draw: on small data its R² is noisy
(a few cells), which the log line and the warning say; ``mv.tl.cross_validate`` averages
10 folds.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import pandas as pd

from .. import _logging as logg
from .._validate import InputError, check_float
from .._warnings import FitQualityWarning
from ..metrics._r2 import r2_per_feature, r2_score
from ._intervals import coverage_slack, exact_calibration_count, split_conformal
from ._paired_data import PairedArrays

MIN_HELDOUT = 2
"""Fewest held-out cells for which a held-out R² is computed."""


class Split(NamedTuple):
    """Training and held-out cell indices (sorted); ``test`` is empty for ``train_size=1``."""

    train: np.ndarray
    test: np.ndarray


def calibration_count(nominal: int, level: float, n_max: int, train_size: float) -> int:
    """Held-out cells for a level-``level`` interval, moved from ``nominal`` if need be.

    The nearest count whose split-conformal coverage is exact
    (:func:`~multiviz.tl._intervals.exact_calibration_count`, at most ``n_max``), logged
    when it differs from ``nominal``.
    """
    n_test = exact_calibration_count(nominal, level, n_max)
    if n_test != nominal:
        slack = coverage_slack(nominal, level)
        before = (
            f"{nominal} give no {100 * level:g}% prediction interval"
            if math.isinf(slack)
            else f"with {nominal} the {100 * level:g}% interval would cover "
            f"{100 * (level + slack):.1f}% of new cells"
        )
        logg.info(
            "    holding out %d cells instead of %d (train_size=%g): %s, with %d it covers %.1f%%",
            n_test,
            nominal,
            train_size,
            before,
            n_test,
            100 * (level + coverage_slack(n_test, level)),
        )
    return n_test


def heldout_split(
    n_obs: int,
    train_size: float,
    random_state: int,
    *,
    min_train: int,
    level: float | None = None,
) -> Split:
    """Draw the held-out cells: ``round((1 - train_size) * n_obs)`` of them, uniformly.

    With a prediction-interval ``level``, that count moves to the nearest one whose
    split-conformal interval covers ``level`` of new cells within one percentage point
    (:func:`~multiviz.tl._intervals.exact_calibration_count`; logged): 16 held-out cells
    would give a 90 % interval covering 94 %, 6 none at all. Counts of about 100 and more
    are never moved.

    Raises an :class:`~multiviz.InputError` naming ``train_size`` when the training part
    would be smaller than ``min_train`` cells. Fewer than :data:`MIN_HELDOUT` held-out cells
    train on all cells (no held-out numbers; logged).
    """
    train_size = check_float(train_size, "train_size", low=0.0, high=1.0, low_open=True)
    n_test = int(round((1.0 - train_size) * n_obs))
    if level is not None and n_test >= MIN_HELDOUT:
        n_test = calibration_count(n_test, level, n_obs - min_train, train_size)
    if n_test < MIN_HELDOUT:
        if train_size < 1.0:
            logg.info(
                "    %d cells x (1 - train_size=%g) leaves fewer than %d held-out cells: "
                "training on all cells, no held-out R² (use mv.tl.cross_validate)",
                n_obs,
                train_size,
                MIN_HELDOUT,
            )
        return Split(np.arange(n_obs), np.zeros(0, dtype=np.int64))
    if n_obs - n_test < min_train:
        raise InputError(
            f"`train_size={train_size:g}` leaves {n_obs - n_test} of {n_obs} cells for training; "
            f"this fit needs at least {min_train}. Raise `train_size` (1.0 trains on every "
            "cell, without held-out numbers)."
        )
    rng = np.random.default_rng(random_state)
    test = np.sort(rng.choice(n_obs, size=n_test, replace=False))
    train = np.setdiff1d(np.arange(n_obs), test, assume_unique=True)
    return Split(train, test)


def training_part(data: PairedArrays, split: Split) -> PairedArrays:
    """The arrays of the training cells only (``data`` itself when nothing is held out)."""
    if split.test.size == 0:
        return data
    return dataclasses.replace(data, X=data.X[split.train], Y=data.Y[split.train])


def train_scores(data: PairedArrays, pred: np.ndarray, split: Split) -> dict:
    """``r2_train`` and ``r2_train_per_feature`` on the training cells (their own mean)."""
    y, p = data.Y[split.train], pred[split.train]
    mean = y.mean(axis=0)
    return {
        "r2_train": r2_score(y, p, train_mean=mean),
        "r2_train_per_feature": pd.Series(
            r2_per_feature(y, p, train_mean=mean), index=[str(f) for f in data.feature_names]
        ).to_dict(),
    }


def heldout_scores(data: PairedArrays, pred: np.ndarray, split: Split) -> dict:
    """``r2_heldout`` (overall and per feature) and ``n_heldout``; ``{}`` without a split."""
    if split.test.size == 0:
        return {}
    mean = data.Y[split.train].mean(axis=0)
    y, p = data.Y[split.test], pred[split.test]
    return {
        "n_heldout": int(split.test.size),
        "r2_heldout": r2_score(y, p, train_mean=mean),
        "r2_heldout_per_feature": pd.Series(
            r2_per_feature(y, p, train_mean=mean), index=[str(f) for f in data.feature_names]
        ).to_dict(),
    }


def warn_if_weak(model: str, scores: dict, n_train: int, *, fix: str) -> None:
    """Warn (:class:`~multiviz.FitQualityWarning`) when held-out R² <= 0 or below sRRR's."""
    if not scores:
        return
    r2, n = scores["r2_heldout"], scores["n_heldout"]
    if r2 <= 0.0:
        logg.warning(
            "%s does not beat the mean predictor on its %d held-out cells (held-out R² %.3f; "
            "%d training cells): the genes may not predict these targets, or the fit is "
            "over-fitted. %s",
            model,
            n,
            r2,
            n_train,
            fix,
            category=FitQualityWarning,
        )
        return
    linear = scores.get("r2_heldout_linear")
    if linear is not None and r2 < linear:
        logg.warning(
            "%s does not beat its linear baseline on the same %d held-out cells (held-out R² "
            "%.3f vs %.3f for sRRR of the same rank and gene budget, fitted on the same %d "
            "training cells). One split of few cells is noisy: compare on 10 folds with "
            "`mv.tl.cross_validate(mdata, method='sbnn')`, and prefer `mv.tl.srrr` if the "
            "sBNN is not better there.",
            model,
            n,
            r2,
            linear,
            n_train,
            category=FitQualityWarning,
        )


def describe(scores: dict) -> str:
    """``"held-out R² 0.381 (121 cells), "`` for the log line, or ``""``."""
    if not scores:
        return ""
    text = f"held-out R² {scores['r2_heldout']:.3f} ({scores['n_heldout']} cells"
    if "r2_heldout_linear" in scores:
        text += f"; sRRR {scores['r2_heldout_linear']:.3f}"
    return text + "), "


def score_heldout(
    data: PairedArrays,
    pred: np.ndarray,
    split: Split,
    *,
    model: str,
    interval: float | None,
    fix: str,
    linear: Callable[[], float] | None = None,
) -> tuple[dict, dict | None]:
    """A fit's held-out numbers, its prediction interval, and the warning if it is weak.

    ``pred`` holds every cell's predictions; ``model`` names the fit (``"sBNN-2"``; the part
    before ``-`` names the interval). ``linear`` gives the linear baseline's held-out R² on
    the same split (``r2_heldout_linear``, which the warning compares with), called only
    when there are held-out cells. Returns the scores (:func:`heldout_scores`) and the
    interval record (:func:`~multiviz.tl._intervals.split_conformal`, or ``None``).
    """
    scores = heldout_scores(data, pred, split)
    if scores and linear is not None:
        scores["r2_heldout_linear"] = linear()
    record = split_conformal(
        data.Y[split.test], pred[split.test], data.feature_names, interval, model.split("-")[0]
    )
    warn_if_weak(model, scores, split.train.size, fix=fix)
    return scores, record
