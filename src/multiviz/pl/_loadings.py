"""``mv.pl.loadings``: genes in the siVAE loading space."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from multiviz._validate import InputError, check_anndata

from .._docs import FIGURE, SIVAE_RUN, doc_params
from ._repel import repel_labels
from ._utils import (
    NA_COLOR,
    NA_LABEL,
    as_categories,
    category_palette,
    finish,
    is_categorical,
    legend_outside,
    new_axes,
    scatter_categories,
)

__all__ = ["loadings"]


@doc_params(figure=FIGURE, sivae_run=SIVAE_RUN)
def loadings(
    adata: AnnData,
    *,
    key: str = "sivae",
    dims: Sequence[int] = (0, 1),
    color: str | None = None,
    label_top: int = 0,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
    size: float = 12,
) -> Figure | None:
    """Scatter of gene loadings (``varm[f"{key}_loadings"]``) on two dimensions.

    Parameters
    ----------
    {sivae_run}
    dims
        The two (0-based) loading dimensions to draw.
    color
        A ``var`` column: categorical columns get one colour per category (legend outside
        the axes; missing values grey, labelled "NA"; palette from
        ``uns[f"{color}_colors"]``), numeric ones a colour map (e.g. ``f"{key}_centrality"``).
    label_top
        Name this many hubs: the genes with the highest ``var[f"{key}_centrality"]``
        (siVAE's degree centrality), or with the largest loading norms where it is absent.
        Labels are moved apart so that none overlap, with a line to their gene.
    ax
        Axes to draw into (default: a new figure).
    size
        Marker size.
    {figure}

    Examples
    --------
    >>> import multiviz as mv
    >>> adata = mv.datasets.simulate_gene_network()
    >>> mv.tl.sivae(adata)
    >>> mv.pl.loadings(adata, color="sivae_centrality", label_top=15)
    """
    check_anndata(adata)
    name = f"{key}_loadings"
    if name not in adata.varm:
        raise InputError(
            f"`varm[{name!r}]` not found; run `mv.tl.sivae(adata, key_added={key!r})` first."
        )
    v = np.asarray(adata.varm[name])
    dims = list(dims)
    if len(dims) != 2 or not all(
        isinstance(d, int | np.integer) and 0 <= d < v.shape[1] for d in dims
    ):
        raise InputError(f"`dims` must be two indices in [0, {v.shape[1] - 1}], got {dims!r}.")
    if color is not None and color not in adata.var:
        raise InputError(f"`color={color!r}` is not a var column (available: {list(adata.var)}).")
    fig, ax = new_axes(ax, (4.5, 4))
    x, y = v[:, dims[0]], v[:, dims[1]]
    if color is None:
        ax.scatter(x, y, s=size, c="0.3", linewidths=0)
    else:
        values = adata.var[color]
        if is_categorical(values):
            labels, cats = as_categories(values)
            palette = category_palette(adata.uns, color, cats)
            handles = scatter_categories(ax, v[:, dims], labels, cats, palette, size=size)
            legend_outside(fig, handles, title=color)
        else:
            vals = values.to_numpy(dtype=float)
            missing = ~np.isfinite(vals)
            if missing.any():
                ax.scatter(x[missing], y[missing], s=size, c=NA_COLOR, linewidths=0, label=NA_LABEL)
            sc = ax.scatter(
                x[~missing], y[~missing], s=size, c=vals[~missing], cmap="viridis", linewidths=0
            )
            ax.figure.colorbar(sc, ax=ax, label=color)
    if label_top:
        centrality = adata.var.get(f"{key}_centrality")
        score = np.hypot(x, y) if centrality is None else centrality.to_numpy(dtype=float)
    ax.set_xlabel(f"siVAE loading {dims[0] + 1}")
    ax.set_ylabel(f"siVAE loading {dims[1] + 1}")
    ax.axhline(0, c="0.85", lw=0.5, zorder=0)
    ax.axvline(0, c="0.85", lw=0.5, zorder=0)
    if label_top:
        top = np.argsort(-np.nan_to_num(score, nan=-np.inf))[:label_top]
        repel_labels(ax, x[top], y[top], [str(adata.var_names[i]) for i in top])
    return finish(fig, show=show, save=save, return_fig=return_fig)
