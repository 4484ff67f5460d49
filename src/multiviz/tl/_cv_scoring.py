"""Scoring and writing of :func:`multiviz.tl.cross_validate`: per-fold R² and what is stored."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .. import _logging as logg
from .._validate import check_fit_finite
from ..metrics._r2 import r2_per_feature, r2_score
from ._cv_checks import lin_pred, scorable_features


class FoldLog:
    """Logs each fold's test R² once, as its fit finishes (or, trained together, when scored)."""

    def __init__(self, method: str, run, fold_of, arrays, return_predictions: bool):
        self.method, self.run, self.fold_of = method, run, fold_of
        self.arrays, self.return_predictions = arrays, return_predictions
        self.start, self.logged = time.monotonic(), set()

    def log(self, i: int, r2: float) -> None:
        """Log fold ``run[i]``'s test R²."""
        from ..train import format_elapsed

        logg.info(
            "    %s fold %d (%d of %d): test R² %.3f, %s elapsed",
            self.method,
            self.run[i],
            i + 1,
            len(self.run),
            r2,
            format_elapsed(time.monotonic() - self.start),
        )
        self.logged.add(self.run[i])

    def done(self, i: int, fit) -> None:
        """Sequential sBNN: score fold ``run[i]`` as soon as it is trained."""
        k, (_, te) = self.run[i], self.arrays[i]
        in_fold = (self.fold_of == k) if self.return_predictions else slice(None)
        self.log(i, r2_score(te.Y[in_fold], fit.forward(te.X)[1][in_fold]))


@dataclass
class ScoredFolds:
    """The R² table (``uns``), and each fold's test predictions and latents by fold."""

    table: pd.DataFrame
    preds: dict
    latents: dict


def score_folds(
    run, arrays, fits, linear, fold_of, return_predictions, what, params, method, log: FoldLog
) -> ScoredFolds:
    """Test and training R² of every fold, overall and per feature.

    A feature constant in a test fold scores NaN there; the linear baseline's test R² sits
    beside the overall one.
    """
    rows, preds, latents = [], {}, {}
    for i, (k, (tr, te), fit, lin) in enumerate(zip(run, arrays, fits, linear)):
        lat_te, pred_te = fit.forward(te.X)
        _, pred_tr = fit.forward(tr.X)
        in_fold = (fold_of == k) if return_predictions else slice(None)
        y_te, p_te = te.Y[in_fold], pred_te[in_fold]
        ok = scorable_features(y_te, te.feature_names, k)
        check_fit_finite(
            [pred_te, pred_tr, lat_te],
            model=what,
            phase=f"fold {k}",
            hint="Lower the learning rate `lr`",
        )
        preds[k], latents[k] = te.full_predictions(pred_te), lat_te
        common = {
            "method": method,
            "params": params,
            "fold": k,
            "n_genes": len(fit.genes),
            "genes": ";".join(fit.genes),
            "seconds": fit.seconds,
        }
        linear_r2 = (
            {}
            if lin is None
            else {"r2_linear": r2_score(y_te[:, ok], lin_pred(lin, te, in_fold)[:, ok])}
        )
        rows.append(
            {
                **common,
                "feature": "all",
                "r2": r2_score(y_te[:, ok], p_te[:, ok]),
                "r2_train": r2_score(tr.Y, pred_tr),
                **linear_r2,
            }
        )
        r2_test = np.where(ok, r2_per_feature(y_te, p_te), np.nan)
        for f, r, rt in zip(te.feature_names, r2_test, r2_per_feature(tr.Y, pred_tr)):
            rows.append({**common, "feature": str(f), "r2": float(r), "r2_train": float(rt)})
        if k not in log.logged:  # folds trained together (ensemble, sRRR) finish together
            log.log(i, rows[-len(te.feature_names) - 1]["r2"])
    table = pd.DataFrame(rows)
    check_fit_finite(
        table[["r2", "r2_train"]].dropna(subset="r2"),  # NaN: constant in the test fold
        model=what,
        phase="scoring",
        hint="A target may be constant within a fold; drop it",
    )
    return ScoredFolds(table, preds, latents)


def write_out_of_fold(mdata, target, key: str, out, fold_of: np.ndarray) -> None:
    """Store the out-of-fold predictions, intervals, aligned latents and their spread."""
    target.layers[f"{key}_pred"] = out.pred.to_numpy(np.float32)
    if out.interval is not None:
        target.layers[f"{key}_pred_lower"] = out.lower.astype(np.float32)
        target.layers[f"{key}_pred_upper"] = out.upper.astype(np.float32)
        mdata.uns[f"{key}_prediction_interval"] = out.interval
    mdata.obsm[f"X_{key}"] = out.latent
    mdata.obsm[f"X_{key}_spread"] = out.spread_sd
    mdata.obs[f"{key}_latent_spread"] = out.spread
    mdata.obs[f"{key}_fold"] = pd.Categorical(fold_of)
