"""``mv.pl.network_similarity``: samples embedded by the similarity of their gene networks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from multiviz._validate import InputError

from .._docs import FIGURE, doc_params
from ._utils import finish, new_axes

__all__ = ["network_similarity"]


@doc_params(figure=FIGURE)
def network_similarity(
    result,
    *,
    key: str = "sivae_network_similarity",
    color: dict | pd.Series | None = None,
    annotate: bool = True,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """First two kernel-PCA coordinates of :func:`multiviz.tl.network_similarity`.

    Parameters
    ----------
    result
        The dict returned by :func:`multiviz.tl.network_similarity`, or the AnnData whose
        ``uns[key]`` it wrote.
    key
        ``uns`` key when an AnnData is passed.
    color
        Optional numeric value per sample (mapping or Series; e.g. differentiation
        efficiency, as in the paper's Fig. 6b).
    annotate
        Write the sample names next to the points.
    ax
        Axes to draw into.
    {figure}

    Examples
    --------
    >>> import multiviz as mv
    >>> adata = mv.datasets.simulate_gene_network()
    >>> adata.obs["sample"] = [f"s{i % 4}" for i in range(adata.n_obs)]
    >>> result = mv.tl.network_similarity(adata, groupby="sample")  # one siVAE per sample
    >>> mv.pl.network_similarity(result)
    """
    if isinstance(result, AnnData):
        if key not in result.uns:
            raise InputError(f"`uns[{key!r}]` not found; run `mv.tl.network_similarity` first.")
        store = result.uns[key]
        names = [str(s) for s in store["samples"]]
        emb = np.asarray(store["embedding"])
    elif isinstance(result, dict) and "embedding" in result:
        names = [str(s) for s in result["embedding"].index]
        emb = result["embedding"].to_numpy()
    else:
        raise InputError(
            "`result` must be the dict from mv.tl.network_similarity or an AnnData holding it."
        )
    if emb.shape[1] < 2:
        emb = np.c_[emb, np.zeros(len(emb))]
    fig, ax = new_axes(ax, (4.5, 4))
    if color is not None:
        values = pd.Series(color).reindex(names).to_numpy(dtype=float)
        sc = ax.scatter(emb[:, 0], emb[:, 1], c=values, cmap="viridis", s=40)
        ax.figure.colorbar(sc, ax=ax)
    else:
        ax.scatter(emb[:, 0], emb[:, 1], s=40, c="0.3")
    if annotate:
        for name, (px, py) in zip(names, emb[:, :2]):
            ax.annotate(
                name, (px, py), fontsize="x-small", xytext=(3, 3), textcoords="offset points"
            )
    ax.set_xlabel("kernel PC 1")
    ax.set_ylabel("kernel PC 2")
    ax.set_title("gene-network similarity (Weisfeiler-Lehman)")
    return finish(fig, show=show, save=save, return_fig=return_fig)
