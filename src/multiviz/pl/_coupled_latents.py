"""``mv.pl.coupled_latents``: the per-modality latents of a coupled autoencoder side by side."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from mudata import MuData

from .._docs import AX_PANELS, FIGURE, PAIRED_EXAMPLE, doc_params
from .._validate import InputError, check_mudata
from ._utils import (
    as_categories,
    category_palette,
    finish,
    legend_outside,
    new_figure,
    scatter_categories,
)


def _labels(mdata: MuData, color: str | None) -> tuple[np.ndarray, list[str]]:
    if color is None:
        return np.full(mdata.n_obs, "cells"), []
    if color not in mdata.obs:
        raise InputError(f"`color={color!r}` is not an obs column; available: {list(mdata.obs)}.")
    return as_categories(mdata.obs[color])


@doc_params(figure=FIGURE, ax_panels=AX_PANELS, paired_example=PAIRED_EXAMPLE)
def coupled_latents(
    mdata: MuData,
    *,
    key: str = "cae",
    modalities: Sequence[str] | None = None,
    color: str | None = None,
    dims: tuple[int, int] = (0, 1),
    size: float = 6.0,
    ax: Axes | None = None,
    figsize: tuple[float, float] | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """Scatter each modality's latent (``mdata.obsm[f"X_{key}_{mod}"]``), one panel per modality.

    Same axes limits in every panel, so aligned latents (λ > 0) look alike (Gala et al. 2019,
    Fig. 2C). Cells without a modality are absent from its panel.

    Parameters
    ----------
    mdata
        MuData after :func:`multiviz.tl.coupled_autoencoder` (or :func:`multiviz.tl.cca`
        with ``key="cca"``).
    key
        ``key_added`` of that run.
    modalities
        Panels to draw (default: all coupled modalities).
    color
        Categorical ``mdata.obs`` column to colour by (e.g. ``"rna_family"``); palette from
        ``uns[f"{color}_colors"]``; missing values grey, labelled "NA".
    dims
        Latent dimensions on the x and y axes.
    size
        Marker size.
    {ax_panels}
    {figure}

    Examples
    --------
    {paired_example}
    >>> mv.tl.cca(mdata, n_components=2)
    >>> mv.pl.coupled_latents(mdata, key="cca", color="cell_type")
    """
    check_mudata(mdata)
    if modalities is None:
        modalities = [k[len(f"X_{key}_") :] for k in mdata.obsm if k.startswith(f"X_{key}_")]
    if not modalities:
        raise InputError(
            f"No `mdata.obsm['X_{key}_<mod>']` found; run `mv.tl.coupled_autoencoder` first."
        )
    zs = []
    for mod in modalities:
        name = f"X_{key}_{mod}"
        if name not in mdata.obsm:
            raise InputError(f"`mdata.obsm[{name!r}]` is missing.")
        z = np.asarray(mdata.obsm[name], dtype=float)
        if max(dims) >= z.shape[1]:
            raise InputError(f"`dims={dims}` exceeds the {z.shape[1]} latent dimensions.")
        zs.append(z[:, list(dims)])
    labels, cats = _labels(mdata, color)
    allz = np.concatenate(zs)
    allz = allz[np.isfinite(allz).all(1)]
    lo, hi = allz.min(0), allz.max(0)
    pad = 0.05 * (hi - lo)
    fig, spec = new_figure(ax, figsize or (3.6 * len(modalities) + (1.6 if cats else 0), 3.6))
    grid = spec.subgridspec(1, len(modalities))
    palette = category_palette(mdata.uns, color, cats) if cats else {"cells": "0.3"}
    handles: dict[str, object] = {}
    for i, (mod, z) in enumerate(zip(modalities, zs)):
        a = fig.add_subplot(grid[0, i])
        ok = np.isfinite(z).all(1)
        present = [c for c in (cats or ["cells"]) if (labels[ok] == c).any()]
        drawn = scatter_categories(a, z[ok], labels[ok], present, palette, size=size)
        handles.update(dict(zip(present, drawn)))
        a.set(
            xlim=(lo[0] - pad[0], hi[0] + pad[0]),
            ylim=(lo[1] - pad[1], hi[1] + pad[1]),
            title=f"{key}: {mod} ({int(ok.sum())} cells)",
            xlabel=f"z{dims[0] + 1}",
            ylabel=f"z{dims[1] + 1}",
        )
    if cats:
        legend_outside(fig, [handles[c] for c in cats if c in handles], title=color)
    return finish(fig, show=show, save=save, return_fig=return_fig)
