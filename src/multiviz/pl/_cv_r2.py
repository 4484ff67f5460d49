"""``mv.pl.cv_r2``: cross-validated R² per model and feature (sBNN paper, Figs. 2-3)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from mudata import MuData

from .._docs import FIGSIZE, FIGURE, PAIRED_EXAMPLE, doc_params
from .._validate import InputError
from ._utils import finish, own

_COLUMNS = {"method", "params", "fold", "feature", "r2"}


def _collect(data, key: str | Sequence[str] | None) -> pd.DataFrame:
    """One tidy table from a DataFrame, a list of them, or ``mdata.uns`` keys."""
    if isinstance(data, pd.DataFrame):
        frames = [data]
    elif isinstance(data, list | tuple) and all(isinstance(d, pd.DataFrame) for d in data):
        frames = list(data)
    elif isinstance(data, MuData):
        keys = [key] if isinstance(key, str) else key
        if keys is None:
            keys = [
                k for k, v in data.uns.items() if isinstance(v, pd.DataFrame) and _COLUMNS <= set(v)
            ]
        if not keys:
            raise InputError(
                "No cross-validation results in `mdata.uns`; run `mv.tl.cross_validate` first or pass `key=`."
            )
        missing = [k for k in keys if k not in data.uns]
        if missing:
            raise InputError(f"`key` {missing} not in `mdata.uns` (available: {list(data.uns)}).")
        frames = [data.uns[k] for k in keys]
    else:
        raise InputError(
            "`data` must be a MuData, a DataFrame from `mv.tl.cross_validate`, or a list of them."
        )
    df = pd.concat(frames, ignore_index=True)
    if not _COLUMNS <= set(df.columns):
        raise InputError(f"The results lack the columns {sorted(_COLUMNS - set(df.columns))}.")
    return df


def _model_labels(df: pd.DataFrame, labels: dict | None) -> pd.Series:
    combined = df["method"].astype(str) + np.where(
        df["params"].astype(str) != "", " (" + df["params"].astype(str) + ")", ""
    )
    if labels:
        combined = combined.map(lambda s: labels.get(s, s))
    return combined


@doc_params(figure=FIGURE, figsize=FIGSIZE, paired_example=PAIRED_EXAMPLE)
def cv_r2(
    data: MuData | pd.DataFrame | Sequence[pd.DataFrame],
    *,
    key: str | Sequence[str] | None = None,
    labels: dict[str, str] | None = None,
    features: Sequence[str] | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """Cross-validated R² of several models, per feature, mean ± SD over folds.

    Each model is a column of points per feature (mean over folds with an SD bar); its
    multivariate R² (the paper's eq. 3, rows with ``feature == "all"``) is drawn as a
    horizontal line in the same colour, as in the sBNN paper's Figs. 2-3.

    Parameters
    ----------
    data
        A MuData whose ``uns`` holds results of :func:`multiviz.tl.cross_validate`, or the
        returned DataFrame(s).
    key
        ``uns`` key(s) to read from a MuData (default: every cross-validation table).
    labels
        Rename models: ``{"sbnn (bottleneck=2)": "sBNN-2", ...}``; a model is named
        ``"<method> (<params>)"``.
    features
        Features to show, in order (default: all).
    ax
        Draw into this Axes.
    {figsize}
    {figure}

    Examples
    --------
    {paired_example}
    >>> mv.tl.cross_validate(mdata, "srrr", n_folds=5, rank=2, n_genes=20)
    >>> mv.tl.cross_validate(mdata, "sbnn", n_folds=5, bottleneck=2)  # ~1 min per fold on a CPU
    >>> mv.pl.cv_r2(mdata, labels={"srrr (n_genes=20, rank=2)": "sRRR-2"})
    """
    df = _collect(data, key).copy()
    df["model"] = _model_labels(df, labels)
    per_feature = df[df["feature"] != "all"]
    if features is None:
        features = list(dict.fromkeys(per_feature["feature"]))
    unknown = sorted(set(features) - set(per_feature["feature"]))
    if unknown:
        raise InputError(f"`features` {unknown} are not in the results.")
    models = list(dict.fromkeys(df["model"]))
    if ax is None:
        fig, ax = plt.subplots(
            figsize=figsize or (max(6.0, 0.45 * len(features) + 2), 4), layout="constrained"
        )
        own(fig)
    else:
        fig = ax.figure
    cmap = plt.get_cmap("tab10")
    width = 0.8 / max(len(models), 1)
    x = np.arange(len(features))
    for i, model in enumerate(models):
        sub = per_feature[per_feature["model"] == model]
        stats = sub.groupby("feature")["r2"].agg(["mean", "std"]).reindex(features)
        offset = (i - (len(models) - 1) / 2) * width
        ax.errorbar(
            x + offset,
            stats["mean"],
            yerr=stats["std"].fillna(0),
            fmt="o",
            ms=4,
            color=cmap(i % 10),
            label=model,
            capsize=2,
        )
        overall = df[(df["model"] == model) & (df["feature"] == "all")]["r2"]
        if len(overall):
            ax.axhline(overall.mean(), color=cmap(i % 10), lw=1, ls="--")
    ax.set_xticks(x, features, rotation=60, ha="right")
    ax.set_ylabel("cross-validated $R^2$")
    ax.axhline(0, color="0.6", lw=0.5)
    ax.legend(frameon=False, fontsize="small", loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.set_title("Test-fold $R^2$ per feature (mean ± SD); dashed: multivariate $R^2$")
    return finish(fig, show=show, save=save, return_fig=return_fig)
