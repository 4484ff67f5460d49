"""Conformal prediction intervals from residuals of cells a model never trained on.

Every fit with a held-out split (``train_size < 1``, the default of ``mv.tl.sbnn``,
``mv.tl.srrr`` and ``mv.tl.coupled_autoencoder``) has residuals of cells it did not see.
Their absolute values are conformity scores: the half-width of a level-``1 - alpha``
interval for a feature is the ``ceil((n + 1)(1 - alpha))``-th smallest of the ``n``
held-out absolute residuals (split conformal prediction; Vovk et al. 2005, Lei et al. 2018).
For a new cell exchangeable with the training cells, ``pred ± halfwidth`` covers the true
value with probability at least ``1 - alpha`` and, without ties, at most
``1 - alpha + 1 / (n + 1)``, whatever the model and the noise. The guarantee is marginal
(over cells), not per cell; cells unlike the training data (another batch, another
tissue) are not covered by it.

``mv.tl.cross_validate`` scores every cell out of fold; :func:`out_of_fold_intervals`
gives each cell the interval computed from the other cells' out-of-fold residuals.
"""

from __future__ import annotations

import math

import numpy as np

from .. import _logging as logg

#: Default coverage of the intervals written at every fit.
LEVEL = 0.9


def min_calibration_cells(level: float) -> int:
    """Fewest held-out cells for which a finite level-``level`` interval exists."""
    return math.ceil(level / (1.0 - level) - 1e-9)


MAX_SLACK = 0.01
"""Largest over-coverage a fit's calibration count may leave: with ``n`` held-out cells the
split-conformal interval covers ``ceil((n + 1) level) / (n + 1)`` of new cells, which is
``level`` exactly only where ``(n + 1) level`` is a whole number (16 cells at 90 %: 94.1 %)."""


def coverage_slack(n: int, level: float) -> float:
    """Expected over-coverage of a level-``level`` split-conformal interval from ``n`` cells.

    ``ceil((n + 1) level) / (n + 1) - level``; infinite when ``n`` is too few for a finite
    interval.
    """
    rank = math.ceil((n + 1) * level - 1e-9)
    return math.inf if rank > n else rank / (n + 1) - level


def exact_calibration_count(n: int, level: float, n_max: int) -> int:
    """The held-out count nearest ``n`` whose interval covers ``level`` to :data:`MAX_SLACK`.

    Within ``max(3, n // 4)`` cells of ``n`` and at most ``n_max`` (``n`` itself if no
    such count exists, or if ``n`` already exceeds ``n_max``): a nudge to the count the user
    asked for through ``train_size``, never a different split.

    On small data the discreteness of the conformal rank, not the model, sets the coverage:
    160 cells with ``train_size=0.9`` hold out 16, whose 90 % interval is the largest
    residual and covers 94.1 % of new cells; 19 held-out cells give 90.0 %. Ties go to the
    larger count. From about 100 held-out cells every count is within the slack.

    Examples
    --------
    >>> exact_calibration_count(16, 0.9, 100), exact_calibration_count(6, 0.9, 100)
    (19, 9)
    >>> exact_calibration_count(121, 0.9, 1000), exact_calibration_count(4, 0.9, 100)
    (121, 4)
    """
    if coverage_slack(n, level) <= MAX_SLACK or n > n_max:
        return n
    for step in range(1, max(3, n // 4) + 1):
        for cand in (n + step, n - step):
            if 1 <= cand <= n_max and coverage_slack(cand, level) <= MAX_SLACK:
                return cand
    return n


def conformal_halfwidth(residuals: np.ndarray, level: float) -> np.ndarray | None:
    """Per-feature half-widths from the residuals of cells the model did not train on.

    ``residuals`` is ``(n_cells, n_features)``; NaN entries (a feature not measured in a
    cell) are left out of that feature's scores. ``None`` when some feature has fewer than
    :func:`min_calibration_cells` scores (the interval would be unbounded).
    """
    scores = np.abs(np.asarray(residuals, dtype=np.float64))
    out = np.empty(scores.shape[1])
    for j in range(scores.shape[1]):
        col = np.sort(scores[np.isfinite(scores[:, j]), j])
        rank = math.ceil((col.size + 1) * level - 1e-9)
        if rank > col.size:
            return None
        out[j] = col[rank - 1]
    return out


def out_of_fold_intervals(residuals: np.ndarray, level: float) -> np.ndarray | None:
    """Each cell's half-widths from the out-of-fold residuals of the *other* cells.

    Cell ``i`` gets the ``ceil(n (1 - alpha))``-th smallest of the ``n - 1`` other cells'
    absolute residuals (leave-one-out of the calibration set), so its own residual never
    widens or narrows its interval. ``(n_cells, n_features)``, or ``None`` with too few cells.
    """
    scores = np.abs(np.asarray(residuals, dtype=np.float64))
    n = scores.shape[0]
    rank = math.ceil(n * level - 1e-9)  # among the n - 1 others
    if rank > n - 1:
        return None
    order = np.sort(scores, axis=0)
    kth, next_ = order[rank - 1], order[rank]
    # removing a score at or below the kth order statistic shifts the kth up by one
    return np.where(scores <= kth, next_, kth)


def interval_record(
    halfwidth: np.ndarray, names, level: float, n_calibration: int, method: str
) -> dict:
    """What ``uns[key]["prediction_interval"]`` holds."""
    return {
        "level": float(level),
        "method": method,
        "n_calibration": int(n_calibration),
        "halfwidth": {str(f): float(h) for f, h in zip(names, halfwidth)},
    }


def split_conformal(
    y_heldout: np.ndarray, pred_heldout: np.ndarray, names, level: float | None, model: str
) -> dict | None:
    """The interval record from a fit's held-out cells, or ``None`` (logged) without enough."""
    if level is None or y_heldout.shape[0] == 0:
        return None
    halfwidth = conformal_halfwidth(y_heldout - pred_heldout, level)
    if halfwidth is None:
        logg.info(
            "    %s: %d held-out cells are too few for a %g%% prediction interval (needs %d); "
            "none written. Lower `train_size` or the level (`interval`).",
            model,
            y_heldout.shape[0],
            100 * level,
            min_calibration_cells(level),
        )
        return None
    return interval_record(
        halfwidth, names, level, y_heldout.shape[0], "split conformal, held-out cells"
    )


def bounds(pred: np.ndarray, record: dict, names) -> tuple[np.ndarray, np.ndarray]:
    """``(lower, upper)`` for predictions whose columns are ``names``.

    Features absent from the record (constant targets, predicted exactly) get width 0.
    """
    width = np.array([record["halfwidth"].get(str(f), 0.0) for f in names], dtype=pred.dtype)
    return pred - width, pred + width
