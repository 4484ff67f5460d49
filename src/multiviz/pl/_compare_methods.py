"""``mv.pl.compare_methods``: forest plot of paired CV differences between two models."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.transforms import blended_transform_factory
from mudata import MuData

from .._docs import FIGSIZE, FIGURE, doc_params
from .._validate import InputError
from ._utils import finish, new_axes

_COLUMNS = {"feature", "diff", "ci_low", "ci_high", "wins", "n_folds"}
_BETTER, _WORSE, _NEITHER = "tab:green", "tab:red", "0.45"


def _is_comparison(value) -> bool:
    return isinstance(value, pd.DataFrame) and _COLUMNS <= set(value.columns)


def _read(data, key: str) -> tuple[pd.DataFrame, str, dict]:
    """The comparison table, its verdict and its parameters."""
    if isinstance(data, pd.DataFrame):
        table, verdict, params = data, data.attrs.get("verdict", ""), data.attrs.get("params", {})
    elif isinstance(data, MuData):
        if not isinstance(key, str) or key not in data.uns:
            found = [k for k, v in data.uns.items() if _is_comparison(v)]
            raise InputError(
                f"`key={key!r}` is not in `mdata.uns`; comparisons there: {found}. Run "
                "`mv.tl.compare_methods` first or pass its `key_added` as `key=`."
            )
        table = data.uns[key]
        verdict = str(data.uns.get(f"{key}_verdict", ""))
        params = dict(data.uns.get(f"{key}_params", {}))
    else:
        raise InputError(
            "`data` must be a MuData or the DataFrame returned by `mv.tl.compare_methods`, got "
            f"{type(data).__name__}."
        )
    if not _is_comparison(table):
        raise InputError(
            f"`{key}` is not a `mv.tl.compare_methods` table (needs columns {sorted(_COLUMNS)})."
        )
    return table, verdict, params


@doc_params(figure=FIGURE, figsize=FIGSIZE)
def compare_methods(
    data: MuData | pd.DataFrame,
    key: str = "compare_srrr_sbnn",
    *,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """Forest plot of :func:`multiviz.tl.compare_methods`: paired differences and their CIs.

    One row per target feature and a last, bold row for the multivariate R² (``"all"``):
    the mean over folds of the held-out R² difference (second minus first) as a dot, its
    confidence interval (corrected resampled t, Nadeau & Bengio 2003) as a horizontal bar,
    green when the interval lies above 0 (second better), red below 0 (worse), grey when it
    contains 0. A vertical line marks 0; the right margin gives the folds the second model
    won; the title is the verdict.

    Parameters
    ----------
    data
        MuData after :func:`multiviz.tl.compare_methods`, or the DataFrame it returned.
    key
        ``uns`` key of the comparison (its ``key_added``; default for sRRR vs sBNN).
    ax
        Draw into this Axes.
    {figsize}
    {figure}

    Examples
    --------
    >>> import multiviz as mv
    >>> mdata = mv.datasets.simulate_patchseq(n_cells=300, n_genes=150)
    >>> mv.pp.prepare_paired(mdata, x="rna", y="ephys", gene_selection="none")
    >>> mv.tl.compare_methods(mdata, ("srrr", "sbnn"), n_genes=25)
    >>> mv.pl.compare_methods(mdata, "compare_srrr_sbnn")
    """
    table, verdict, params = _read(data, key)
    rows = pd.concat([table[table["feature"] != "all"], table[table["feature"] == "all"]])
    n = len(rows)
    if n == 0:
        raise InputError(f"The comparison `{key}` has no rows.")
    fig, ax = new_axes(ax, figsize or (6.5, 1.2 + 0.32 * n))
    ypos = np.arange(n)[::-1].astype(float)
    low, high = rows["ci_low"].to_numpy(float), rows["ci_high"].to_numpy(float)
    colors = np.where(low > 0, _BETTER, np.where(high < 0, _WORSE, _NEITHER))
    overall = (rows["feature"] == "all").to_numpy()
    ax.hlines(ypos, low, high, colors=colors, linewidth=np.where(overall, 3.0, 1.5))
    ax.scatter(rows["diff"], ypos, c=colors, s=np.where(overall, 60, 25), marker="o", zorder=3)
    ax.axvline(0, color="0.3", lw=0.8, ls="--")
    names = ["overall (all features)" if o else str(f) for f, o in zip(rows["feature"], overall)]
    ax.set_yticks(ypos, names)
    for label, o in zip(ax.get_yticklabels(), overall):
        label.set_fontweight("bold" if o else "normal")
    if overall.any() and n > 1:
        ax.axhline(ypos[overall][0] + 0.5, color="0.8", lw=0.8)
    right = blended_transform_factory(ax.transAxes, ax.transData)
    for y, w, k in zip(ypos, rows["wins"], rows["n_folds"]):
        ax.text(1.01, y, f"{int(w)}/{int(k)}", transform=right, va="center", fontsize="small")
    ax.text(1.01, ypos[0] + 0.8, "wins", transform=right, va="bottom", fontsize="small")
    ax.set_ylim(-0.7, n - 0.3)
    first, second = params.get("first", "first"), params.get("second", "second")
    level = float(params.get("level", 0.95))
    ax.set_xlabel(f"held-out $R^2$: {second} − {first} (mean over folds, {100 * level:g} % CI)")
    ax.set_title("\n".join(textwrap.wrap(verdict, 70)) if verdict else key, fontsize="medium")
    return finish(fig, show=show, save=save, return_fig=return_fig)
