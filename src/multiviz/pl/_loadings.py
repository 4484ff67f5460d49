"""``mv.pl.loadings``: genes in the siVAE loading space."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes

from multiviz._validate import InputError, check_anndata

from ._utils import category_palette, finish

__all__ = ["loadings"]


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
    size: float = 12,
):
    """Scatter of gene loadings (``varm[f"{key}_loadings"]``) on two dimensions.

    Parameters
    ----------
    adata
        AnnData after :func:`multiviz.tl.sivae`.
    key
        ``key_added`` of that run.
    dims
        The two (0-based) loading dimensions to draw.
    color
        A ``var`` column: categorical columns get one colour per category (legend),
        numeric ones a colour map (e.g. ``f"{key}_centrality"``).
    label_top
        Name this many hubs: the genes with the highest ``var[f"{key}_centrality"]``
        (siVAE's degree centrality), or with the largest loading norms where it is absent.
    ax
        Axes to draw into (default: a new figure).
    show, save
        Show the figure / save it to this path.
    size
        Marker size.

    Returns
    -------
    The Axes.
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
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 4), layout="constrained")
    x, y = v[:, dims[0]], v[:, dims[1]]
    if color is None:
        ax.scatter(x, y, s=size, c="0.3", linewidths=0)
    else:
        values = adata.var[color]
        if (
            isinstance(values.dtype, pd.CategoricalDtype)
            or values.dtype == object
            or values.dtype == bool
        ):
            values = values.astype("category")
            palette = category_palette(adata.uns, color, list(values.cat.categories))
            for cat in values.cat.categories:
                mask = (values == cat).to_numpy()
                ax.scatter(
                    x[mask], y[mask], s=size, linewidths=0, label=str(cat), color=palette[cat]
                )
            ax.legend(frameon=False, fontsize="small", markerscale=1.5, loc="best")
        else:
            sc = ax.scatter(
                x, y, s=size, c=values.to_numpy(dtype=float), cmap="viridis", linewidths=0
            )
            ax.figure.colorbar(sc, ax=ax, label=color)
    if label_top:
        centrality = adata.var.get(f"{key}_centrality")
        score = np.hypot(x, y) if centrality is None else centrality.to_numpy(dtype=float)
        for i in np.argsort(-score)[:label_top]:
            ax.annotate(adata.var_names[i], (x[i], y[i]), fontsize="x-small")
    ax.set_xlabel(f"siVAE loading {dims[0] + 1}")
    ax.set_ylabel(f"siVAE loading {dims[1] + 1}")
    ax.axhline(0, c="0.85", lw=0.5, zorder=0)
    ax.axvline(0, c="0.85", lw=0.5, zorder=0)
    finish(ax.figure, show=show, save=save)
    return ax
