"""``mv.pl.latent_overlay``: the sBNN paper's Fig. 5 (latent + contour overlays)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.tri import Triangulation
from mudata import MuData

from .._validate import InputError, check_mudata
from ._utils import category_palette, finish, new_figure


def masked_triangulation(
    xy: np.ndarray, max_edge: float | None = None, factor: float = 3.0
) -> Triangulation:
    """Delaunay triangulation of ``xy`` with long-edge triangles masked.

    A triangle is masked when its longest edge exceeds ``max_edge`` (default:
    ``factor`` × the median edge length of the triangulation), so contours do not
    bridge empty regions between clusters.
    """
    tri = Triangulation(xy[:, 0], xy[:, 1])
    t = tri.triangles
    pts = xy[t]  # (n_tri, 3, 2)
    edges = np.stack(
        [np.linalg.norm(pts[:, i] - pts[:, (i + 1) % 3], axis=1) for i in range(3)], axis=1
    )
    longest = edges.max(axis=1)
    if max_edge is None:
        max_edge = factor * float(np.median(edges))
    tri.set_mask(longest > max_edge)
    return tri


def _resolve_basis(mdata: MuData, basis: str) -> tuple[np.ndarray, str]:
    for key in (basis, f"X_{basis}"):
        if key in mdata.obsm:
            xy = np.asarray(mdata.obsm[key])
            if xy.shape[1] == 2:
                return xy, key
            tkey = f"{key}_tsne"
            if tkey in mdata.obsm:
                return np.asarray(mdata.obsm[tkey]), tkey
            raise InputError(
                f"`obsm[{key!r}]` has {xy.shape[1]} dimensions; embed it first with "
                f"`mv.tl.tsne(mdata, use_rep={key!r})` (writes {tkey!r})."
            )
    raise InputError(
        f"`basis={basis!r}` not found in `mdata.obsm` (available: {list(mdata.obsm)})."
    )


def latent_overlay(
    mdata: MuData,
    basis: str = "sbnn",
    *,
    key: str | None = None,
    genes: int | list[str] | None = 9,
    features: int | list[str] | None = 9,
    color: str | None = "rna_family",
    vmax: float | None = None,
    max_edge: float | None = None,
    n_levels: int = 20,
    cmap: str = "viridis",
    point_size: float = 6.0,
    ncols: int = 3,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = True,
):
    """Latent coloured by a category, with contour overlays of predictions (paper Fig. 5).

    Middle: the 2-D latent (``obsm[f"X_{basis}"]``, or its t-SNE for wider
    bottlenecks) coloured by ``obs[color]`` with its palette (``uns[f"{color}_colors"]``).
    Left: the model's reconstruction of selected genes; right: its predicted
    features. Each overlay is a ``tricontourf`` on the Delaunay triangulation of the
    latent, with long-edge triangles masked so empty regions stay empty; all overlays
    share one symmetric colour scale (the paper used −1 … 1 on z-scores).

    Parameters
    ----------
    mdata
        MuData after :func:`multiviz.tl.sbnn` (or :func:`multiviz.tl.srrr`).
    basis
        ``obsm`` key with or without ``X_`` (``"sbnn"``, ``"sbnn64_tsne"``, ...).
    key
        The ``key_added`` of the fit (default: ``basis`` without ``X_``/``_tsne``).
    genes
        Number of top selected genes (by weight norm) or a list of names; ``0``/``None``
        for none. Uses the gene decoder's reconstruction (``obsm[f"{key}_genes_pred"]``)
        where present, else the observed (z-scored) expression.
    features
        Number of predicted features (first ones) or a list of names; ``0``/``None`` for none.
    color
        Categorical ``mdata.obs`` column for the latent scatter (``None``: grey).
    vmax
        Half-width of the shared colour scale (default: the largest 99th percentile of
        the absolute values across the overlays; ``1.0`` reproduces the paper).
    max_edge
        Mask triangles with a longer edge (default 3 × the median edge length).
    n_levels, cmap, point_size, ncols
        Contour levels, colour map, scatter size, overlay panels per row.
    ax
        Draw the whole layout into the space of this Axes.
    show, save, return_fig
        Show the figure, save it to a path, return it (default).

    Returns
    -------
    The :class:`~matplotlib.figure.Figure`.
    """
    check_mudata(mdata)
    xy, basis_key = _resolve_basis(mdata, basis)
    if key is None:
        key = basis_key.removeprefix("X_").removesuffix("_tsne")
    info = mdata.uns.get(key, {})
    params = info.get("params", {}) if isinstance(info, dict) else {}
    xmod, ymod = params.get("x", "rna"), params.get("y", None)

    gene_panels: dict[str, np.ndarray] = {}
    if genes:
        rna = mdata.mod[xmod]
        pred = rna.obsm.get(f"{key}_genes_pred")
        if isinstance(genes, int | np.integer):
            ranked = list(info.get("selected_genes", [])) if isinstance(info, dict) else []
            if not ranked and f"{key}_selected" in rna.var:
                ranked = list(rna.var_names[rna.var[f"{key}_selected"].to_numpy(bool)])
            if not ranked:
                raise InputError(f"No selected genes stored under {key!r}; pass `genes` as a list.")
            genes = ranked[: int(genes)]
        for g in genes:
            if isinstance(pred, pd.DataFrame) and g in pred.columns:
                gene_panels[str(g)] = pred[g].to_numpy()
            elif g in rna.var_names:
                col = rna[:, g].X
                col = col.toarray() if hasattr(col, "toarray") else np.asarray(col)
                gene_panels[f"{g} (observed)"] = col.ravel()
            else:
                raise InputError(f"Gene {g!r} is not in `mdata[{xmod!r}].var_names`.")
    feat_panels: dict[str, np.ndarray] = {}
    if features:
        if ymod is None or f"{key}_pred" not in mdata.mod[ymod].layers:
            raise InputError(
                f"No predictions `layers['{key}_pred']` found; run `mv.tl.{key.rstrip('0123456789_')}` first or pass `key=`."
            )
        target = mdata.mod[ymod]
        pred = np.asarray(target.layers[f"{key}_pred"])
        names = list(target.var_names)
        if isinstance(features, int | np.integer):
            features = names[: int(features)]
        for f in features:
            if f not in names:
                raise InputError(f"Feature {f!r} is not in `mdata[{ymod!r}].var_names` ({names}).")
            feat_panels[str(f)] = pred[:, names.index(f)]

    if color is not None and color not in mdata.obs:
        raise InputError(f"`color={color!r}` is not a column of `mdata.obs`.")
    values = list(gene_panels.values()) + list(feat_panels.values())
    if vmax is None:
        vmax = max([float(np.nanpercentile(np.abs(v), 99)) for v in values] or [1.0]) or 1.0
    levels = np.linspace(-vmax, vmax, n_levels + 1)
    tri = masked_triangulation(xy, max_edge) if values else None

    n_g, n_f = len(gene_panels), len(feat_panels)
    nc_g = min(ncols, n_g) if n_g else 0
    nc_f = min(ncols, n_f) if n_f else 0
    nrows = max(1, math.ceil(n_g / max(nc_g, 1)), math.ceil(n_f / max(nc_f, 1)))
    width_units = nc_g + nc_f + max(nrows, 2)
    fig, spec = new_figure(ax, (1.6 * width_units + 1, 1.6 * max(nrows, 2) + 0.5))
    widths = [1] * nc_g + [max(nrows, 2)] + [1] * nc_f
    gs = spec.subgridspec(nrows, len(widths), width_ratios=widths)
    main = fig.add_subplot(gs[:, nc_g])
    if color is not None:
        cats = mdata.obs[color].astype("category")
        palette = category_palette(mdata.uns, color, list(cats.cat.categories))
        for c in cats.cat.categories:
            sel = (cats == c).to_numpy()
            main.scatter(
                xy[sel, 0], xy[sel, 1], s=point_size, color=palette[c], label=str(c), linewidths=0
            )
        main.legend(
            fontsize=6, markerscale=2, frameon=False, loc="best", ncol=1 + len(palette) // 12
        )
    else:
        main.scatter(xy[:, 0], xy[:, 1], s=point_size, color="0.5", linewidths=0)
    main.set_title(basis_key.removeprefix("X_"))
    main.set_aspect("equal", adjustable="datalim")
    main.set_xticks([])
    main.set_yticks([])
    mappable = None

    def overlay(ax_, title, v):
        nonlocal mappable
        mappable = ax_.tricontourf(
            tri, np.clip(v, -vmax, vmax), levels=levels, cmap=cmap, extend="both"
        )
        ax_.set_title(title, fontsize=8)
        ax_.set_xticks([])
        ax_.set_yticks([])
        ax_.set_aspect("equal", adjustable="datalim")

    for i, (name, v) in enumerate(gene_panels.items()):
        overlay(fig.add_subplot(gs[i // nc_g, i % nc_g]), name, v)
    for i, (name, v) in enumerate(feat_panels.items()):
        overlay(fig.add_subplot(gs[i // nc_f, nc_g + 1 + i % nc_f]), name, v)
    if mappable is not None:
        fig.colorbar(
            mappable, ax=fig.axes, shrink=0.5, label="prediction (z-score)", ticks=[-vmax, 0, vmax]
        )
    return finish(fig, show=show, save=save, return_fig=return_fig)
