"""``mv.pl.cross_modal``: observed values against their cross-modal prediction."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from mudata import MuData

from .._docs import AX_PANELS, FIGURE, PAIRED_EXAMPLE, doc_params
from .._validate import InputError, check_mudata, get_layer, get_modality
from ._utils import finish, new_figure


@doc_params(figure=FIGURE, ax_panels=AX_PANELS, paired_example=PAIRED_EXAMPLE)
def cross_modal(
    mdata: MuData,
    *,
    source: str = "ephys",
    target: str = "rna",
    key: str = "cae",
    features: Sequence[str] | int = 6,
    layer: str | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """Observed against predicted values of ``target`` features (Gala et al. 2019, Fig. 4A-B).

    Reads ``mdata[target].layers[f"{key}_from_{source}"]`` written by
    :func:`multiviz.tl.cross_modal_predict` and compares it with ``mdata[target].X`` (or
    ``layer``), one panel per feature with the Pearson correlation in the title.

    Parameters
    ----------
    mdata
        MuData after :func:`multiviz.tl.cross_modal_predict`.
    source, target
        Modality the prediction came from, and the predicted modality.
    key
        ``key`` of the coupled autoencoder run.
    features
        Feature names, or a number: that many features with the best prediction correlation.
    layer
        Observed values (default ``.X``, the model's input space).
    {ax_panels}
    {figure}

    Examples
    --------
    {paired_example}
    >>> mv.tl.coupled_autoencoder(mdata)
    >>> mv.tl.cross_modal_predict(mdata, source="ephys", target="rna")
    >>> mv.pl.cross_modal(mdata, source="ephys", target="rna", features=6)
    """
    check_mudata(mdata)
    adata = get_modality(mdata, target, "target")
    obs = get_layer(adata, layer, "layer")  # lists the available layers
    pred_key = f"{key}_from_{source}"
    if pred_key not in adata.layers:
        raise InputError(
            f"`mdata[{target!r}].layers[{pred_key!r}]` is missing; run "
            f"`mv.tl.cross_modal_predict(mdata, source={source!r}, target={target!r})` first."
        )
    obs = np.asarray(obs.toarray() if hasattr(obs, "toarray") else obs, dtype=float)
    pred = np.asarray(adata.layers[pred_key], dtype=float)
    ok = np.isfinite(pred).all(1)
    obs, pred = obs[ok], pred[ok]

    def corr(j):
        m = np.isfinite(obs[:, j])
        if m.sum() < 3 or obs[m, j].std() == 0 or pred[m, j].std() == 0:
            return np.nan
        return float(np.corrcoef(obs[m, j], pred[m, j])[0, 1])

    r = np.array([corr(j) for j in range(adata.n_vars)])
    if isinstance(features, int | np.integer):
        idx = list(np.argsort(np.nan_to_num(r, nan=-2))[::-1][: int(features)])
    else:
        missing = [f for f in features if f not in adata.var_names]
        if missing:
            raise InputError(f"Features not in `mdata[{target!r}]`: {missing[:5]}.")
        idx = list(adata.var_names.get_indexer(list(features)))
    n = len(idx)
    ncol = min(n, 3)
    nrow = -(-n // ncol)
    fig, spec = new_figure(ax, figsize or (3.0 * ncol, 2.8 * nrow))
    grid = spec.subgridspec(nrow, ncol)
    for k, j in enumerate(idx):
        a = fig.add_subplot(grid[k // ncol, k % ncol])
        a.scatter(obs[:, j], pred[:, j], s=4, linewidths=0, alpha=0.6)
        lim = [np.nanmin([obs[:, j], pred[:, j]]), np.nanmax([obs[:, j], pred[:, j]])]
        a.plot(lim, lim, color="0.5", lw=0.8)
        a.set(
            title=f"{adata.var_names[j]} (r={r[j]:.2f})",
            xlabel="observed",
            ylabel=f"from {source}",
        )
    return finish(fig, show=show, save=save, return_fig=return_fig)
