"""Up-front checks of ``cross_validate`` / ``selection_stability`` (nothing is written)."""

from __future__ import annotations

import numpy as np

# mv.tl.sbnn's minimum number of (training) cells: pre-training holds out 40 % of the
# cells and clusters the rest into K = 20 k-means clusters (paper Methods), so fewer
# than 40 cells cannot be pre-trained; without pre-training a batch needs 2 cells.
_SBNN_MIN_PRETRAIN, _SBNN_MIN_PLAIN = 40, 2


def min_training_cells(method: str, kwargs: dict) -> tuple[int, str]:
    """The fewest training cells one fit accepts, the same as :func:`multiviz.tl.sbnn`."""
    if method == "srrr":
        return 3, "sRRR needs a few cells to fit a penalty path"
    try:  # the single-model function's own constant, where it defines one
        from . import _sbnn

        minimum = _sbnn.min_cells(bool(kwargs.get("pretrain", True)))  # type: ignore[attr-defined]
        return int(minimum), "the same minimum as `mv.tl.sbnn`"
    except (AttributeError, TypeError):
        pass
    if kwargs.get("pretrain", True):
        return _SBNN_MIN_PRETRAIN, "k-means pre-training with a 40 % hold-out, as `mv.tl.sbnn`"
    return _SBNN_MIN_PLAIN, "as `mv.tl.sbnn` without pre-training"


def safe_first_call(mdata, x: str, y: str) -> None:
    """The single-model check for unprepared input (raw counts, un-z-scored targets)."""
    try:
        from ._checks import check_prepared
    except ImportError:
        return
    check_prepared(mdata, x, y)


def warn_if_no_better_than_mean(df, method: str, n_train: int, kwargs: dict) -> bool:
    """Warn when the held-out R² does not beat the mean predictor (R² 0); True if warned.

    ``df`` is :func:`multiviz.tl.cross_validate`'s table; the score is the mean over folds
    of the all-features R² on the test cells (the mean predictor uses the training
    means, so it scores slightly below 0 on held-out cells).
    """
    from .. import _logging as logg
    from .._warnings import FitQualityWarning

    r2 = df.loc[df["feature"] == "all", "r2"].to_numpy(dtype=float)
    if r2.size == 0 or float(np.mean(r2)) > 0.0:
        return False
    if method == "srrr":
        fix = (
            "too strong a penalty (`lam`) or too many genes for the cells (`n_genes`); "
            "try a smaller `n_genes` or `rank`"
        )
    else:
        fix = (
            "too few cells for the network, too few optimisation steps, or too strong a "
            "group lasso (`lasso`); try `pretrain=False`, a smaller `lasso`, or the linear "
            "`method='srrr'`"
        )
    logg.warning(
        "%s does not beat the mean predictor on held-out cells: mean test R² %.3f over %d "
        "folds (the mean predictor scores ~0), with %d training cells per fold. The genes "
        "may not predict these targets, or the fit failed. Likely causes: %s.",
        method if method == "srrr" else f"sBNN-{kwargs.get('bottleneck', 2)}",
        float(np.mean(r2)),
        r2.size,
        n_train,
        fix,
        category=FitQualityWarning,
    )
    return True


def baseline_kwargs(kwargs: dict) -> dict:
    """sRRR arguments of the linear baseline of an sBNN: rank = bottleneck, same genes."""
    from ..models.sbnn._schedule import N_GENES

    return {"rank": int(kwargs.get("bottleneck", 2)), "n_genes": kwargs.get("n_genes", N_GENES)}


def lin_pred(fit, test, in_fold) -> np.ndarray:
    """The linear baseline's predictions of the fold's test cells."""
    return fit.forward(test.X)[1][in_fold]


def warn_if_linear_is_better(df, n_train: int, kwargs: dict) -> bool:
    """Warn when the sBNN's mean held-out R² is below its sRRR baseline's; True if warned."""
    from .. import _logging as logg
    from .._warnings import FitQualityWarning

    rows = df[df["feature"] == "all"]
    if "r2_linear" not in rows:
        return False
    r2, lin = rows["r2"].to_numpy(dtype=float), rows["r2_linear"].to_numpy(dtype=float)
    if float(np.mean(r2)) >= float(np.mean(lin)):
        return False
    base = baseline_kwargs(kwargs)
    logg.warning(
        "sBNN-%d does not beat the linear baseline on held-out cells: mean test R² %.3f "
        "against %.3f for sRRR rank %d with the same %s genes on the same folds (better in "
        "%d of %d folds), with %d training cells per fold. Report the linear model "
        "(`mv.tl.srrr(mdata, rank=%d, n_genes=%s)`): the non-linear model is not supported by "
        "these data at this size.",
        base["rank"],
        float(np.mean(r2)),
        float(np.mean(lin)),
        base["rank"],
        base["n_genes"],
        int(np.sum(r2 > lin)),
        r2.size,
        n_train,
        base["rank"],
        base["n_genes"],
        category=FitQualityWarning,
    )
    return True


def scorable_features(y_test: np.ndarray, names, fold: int) -> np.ndarray:
    """Mask of target features whose held-out R² means something in this fold.

    A feature constant over the fold's test cells (but not the training cells) has an R²
    whose denominator is only the distance of that constant from the training mean: any
    prediction error scores it far below 0 (e.g. -8.8), which would dominate the mean
    over features. Such features get a :class:`FitQualityWarning` naming them and the
    fold; :func:`multiviz.tl.cross_validate` reports their R² as NaN and leaves them out
    of the fold's ``"all"`` row. A test fold of one cell is scored as it is.
    """
    from .. import _logging as logg
    from .._warnings import FitQualityWarning

    y_test = np.asarray(y_test)
    if y_test.shape[0] < 2:
        return np.ones(y_test.shape[1], dtype=bool)
    ok = np.ptp(y_test, axis=0) > 0
    if not ok.all():
        bad = [str(n) for n in np.asarray(names)[~ok]]
        logg.warning(
            "cross_validate: %d target feature(s) are constant over the test cells of fold %d, "
            "so their held-out R² is undefined: %s. Their R² in that fold is NaN and they are "
            "left out of the fold's 'all' row. Use fewer folds (more test cells per fold) or "
            "drop features that are nearly constant.",
            len(bad),
            fold,
            ", ".join(bad[:10]) + (" ..." if len(bad) > 10 else ""),
            category=FitQualityWarning,
        )
    return ok
