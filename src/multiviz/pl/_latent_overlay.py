"""``mv.pl.latent_overlay``: the sBNN paper's Fig. 5 (latent + contour overlays)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.tri import Triangulation
from mudata import MuData

from .._docs import FIGURE, PAIRED_EXAMPLE, doc_params
from .._validate import InputError, check_mudata
from ._overlay_panels import feature_panels, gene_panels
from ._utils import (
    as_categories,
    category_palette,
    finish,
    is_categorical,
    legend_below,
    legend_height,
    legend_on_data,
    legend_outside,
    new_figure,
    scatter_categories,
)

MANY_CATEGORIES = 20  # more: the legend goes below the panels, in many columns


def local_spacing(xy: np.ndarray, k: int = 5) -> np.ndarray:
    """Each point's distance to its ``k``-th nearest neighbour (the local point spacing)."""
    from scipy.spatial import cKDTree

    k = max(1, min(k, len(xy) - 1))
    dist, _ = cKDTree(xy).query(xy, k=k + 1)
    return dist[:, -1]


def edge_threshold(xy: np.ndarray, factor: float = 3.0, quantile: float = 0.95) -> float:
    """``factor`` × the ``quantile`` of the points' :func:`local_spacing` (one global value)."""
    return factor * float(np.quantile(local_spacing(xy), quantile))


def masked_triangulation(
    xy: np.ndarray, max_edge: float | None = None, factor: float = 3.0
) -> Triangulation:
    """Delaunay triangulation of ``xy`` with long-edge triangles masked.

    A triangle is masked when its longest edge exceeds ``max_edge``. The default is
    chosen from the data, per triangle: ``factor`` × the larger of a high quantile of the
    point spacing (:func:`edge_threshold`) and the local spacing of its own corners
    (:func:`local_spacing`), so sparse clusters keep their triangles too. Only edges much
    longer than any spacing around them (gaps between clusters, empty corners) are
    masked: contours do not bridge empty regions, and have no holes inside clusters.
    """
    tri = Triangulation(xy[:, 0], xy[:, 1])
    t = tri.triangles
    pts = xy[t]  # (n_tri, 3, 2)
    edges = np.stack(
        [np.linalg.norm(pts[:, i] - pts[:, (i + 1) % 3], axis=1) for i in range(3)], axis=1
    )
    longest = edges.max(axis=1)
    if max_edge is None:
        local = factor * local_spacing(xy)[t].max(axis=1)
        max_edge = np.maximum(edge_threshold(xy, factor=factor), local)
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
    fits = [k for k in mdata.obsm if k.startswith("X_")]  # not muon's per-modality masks
    hint = (
        f"available: {fits}"
        if fits
        else "no embedding yet: fit one first, e.g. `mv.tl.sbnn(mdata)` or `mv.tl.srrr(mdata)`"
    )
    raise InputError(f"`basis={basis!r}` not found in `mdata.obsm` ({hint}).")


def _color_values(mdata: MuData, color: str) -> pd.Series:
    """``obs`` column, muon's ``"mod:name"`` (a var or obs column of ``mod``), or a var name."""
    if color in mdata.obs:
        return mdata.obs[color]
    mod, _, name = color.partition(":")
    candidates = [mod] if name and mod in mdata.mod else list(mdata.mod)
    name = name if name and mod in mdata.mod else color
    for m in candidates:
        adata = mdata.mod[m]
        if name in adata.var_names:
            col = adata[:, name].X
            col = col.toarray() if hasattr(col, "toarray") else np.asarray(col)
            return pd.Series(col.ravel(), index=adata.obs_names).reindex(mdata.obs_names)
        if name in adata.obs:
            return adata.obs[name].reindex(mdata.obs_names)
    raise InputError(
        f"`color={color!r}` is not a column of `mdata.obs` nor a feature of any modality "
        f"(use 'mod:name', e.g. 'rna:Pvalb'; modalities: {list(mdata.mod)})."
    )


def _model_title(key: str, basis_key: str, info: dict) -> str:
    """``"sBNN-2 latent"``, ``"sRRR-4 latent (t-SNE)"``, with the fit's held-out R²."""
    info = info if isinstance(info, dict) else {}
    params = info.get("params", {})
    method = "sBNN" if key.startswith("sbnn") else "sRRR" if key.startswith("srrr") else None
    if method is None:
        return basis_key.removeprefix("X_")
    dim = params.get("bottleneck" if method == "sBNN" else "rank")
    title = f"{method}-{dim} latent" if dim is not None else f"{method} latent"
    title += " (t-SNE)" if basis_key.endswith("_tsne") else ""
    for stored, label in (("r2_heldout", "held-out"), ("r2_train", "train")):
        if info.get(stored) is not None and np.isfinite(info[stored]):
            return f"{title}\n{label} R² {float(info[stored]):.2f}"
    return title


def _palette(mdata: MuData, color: str, values: pd.Series, cats: list[str]) -> dict:
    """:func:`category_palette` from ``uns`` of the MuData or of the modalities (scanpy's key)."""
    mod, _, name = color.partition(":")
    if name and mod in mdata.mod:
        sources = [mdata.mod[mod].uns, mdata.uns]
    else:
        name, sources = color, [mdata.uns] + [a.uns for a in mdata.mod.values()]
    series = values if isinstance(values.dtype, pd.CategoricalDtype) else values.astype("category")
    full = [str(c) for c in series.cat.categories]
    return category_palette(sources, name, cats, all_categories=full)


def _layout(
    n_g: int, n_f: int, ncols: int, cats: list | None, legend_loc: str | None
) -> tuple[int, int, int, tuple[float, float]]:
    """Overlay columns of genes and of features, panel rows, and the figure size.

    ``cats``: the categories of a categorical ``color`` (their legend takes room), else None.
    """
    nc_g = min(ncols, n_g) if n_g else 0
    nc_f = min(ncols, n_f) if n_f else 0
    nrows = max(1, math.ceil(n_g / max(nc_g, 1)), math.ceil(n_f / max(nc_f, 1)))
    width_units = nc_g + nc_f + max(nrows, 2)
    height = 1.6 * max(nrows, 2) + 0.5
    width = 1.6 * width_units + 1 + (0.8 if n_g and n_f else 0)
    if cats is not None and legend_loc == "right margin":
        longest = max(len(str(c)) for c in cats)
        width += math.ceil(len(cats) / max(4, int((height * 72 - 30) / 12.5))) * (
            0.3 + 0.075 * longest
        )
    elif cats is not None and legend_loc == "below":
        height += legend_height(len(cats), width, max(len(str(c)) for c in cats))
    return nc_g, nc_f, nrows, (width, height)


def _draw_latent(
    fig: Figure,
    main: Axes,
    xy: np.ndarray,
    mdata: MuData,
    color: str | None,
    values_c: pd.Series | None,
    legend_loc: str | None,
    point_size: float,
) -> None:
    """The latent scatter: grey, by category (with its legend) or by a continuous value."""
    if values_c is None:
        main.scatter(xy[:, 0], xy[:, 1], s=point_size, color="0.5", linewidths=0)
    elif is_categorical(values_c):
        labels, cats = as_categories(values_c)
        palette = _palette(mdata, color, values_c, cats)
        handles = scatter_categories(main, xy, labels, cats, palette, size=point_size)
        if legend_loc == "right margin":
            legend_outside(fig, handles, title=color)
        elif legend_loc == "below":
            legend_below(fig, handles, title=color)
        elif legend_loc == "on data":
            legend_on_data(main, xy, labels, cats)
    else:
        v = values_c.to_numpy(dtype=float)
        missing = ~np.isfinite(v)
        if missing.any():
            main.scatter(*xy[missing].T, s=point_size, color="lightgray", linewidths=0, label="NA")
        points = main.scatter(*xy[~missing].T, s=point_size, c=v[~missing], linewidths=0)
        fig.colorbar(points, ax=main, shrink=0.5, label=color, location="bottom")


def _overlay(ax_: Axes, title: str, v: np.ndarray, *, tri, levels, vmax: float, cmap: str):
    """One contour overlay, clipped to the shared colour scale."""
    ax_.set_title(title, fontsize=8)
    ax_.set_xticks([])
    ax_.set_yticks([])
    ax_.set_aspect("equal", adjustable="datalim")
    clipped = np.clip(v, -vmax, vmax)
    return ax_.tricontourf(tri, clipped, levels=levels, cmap=cmap, extend="both")


def _draw_overlays(fig: Figure, gs, genes: tuple, features: tuple, draw, vmax: float) -> None:
    """Gene overlays left of the latent, feature overlays right, with their colour bars.

    ``genes`` is ``(panels, kinds, columns)``, ``features`` ``(panels, columns)``; ``draw``
    is :func:`_overlay` with the shared scale.
    """
    (gene_panels_, gene_kinds, nc_g), (feat_panels, nc_f) = genes, features
    sides = []  # (axes, mappable, colour-bar label) per side
    if gene_panels_:
        axes = [fig.add_subplot(gs[i // nc_g, i % nc_g]) for i in range(len(gene_panels_))]
        mappables = [draw(a, n, v) for a, (n, v) in zip(axes, gene_panels_.items())]
        kind = " / ".join(sorted(gene_kinds, reverse=True))  # reconstructed / observed
        sides.append((axes, mappables[-1], f"{kind} expression (z-score)", "left"))
    if feat_panels:
        axes = [
            fig.add_subplot(gs[i // nc_f, nc_g + 1 + i % nc_f]) for i in range(len(feat_panels))
        ]
        mappables = [draw(a, n, v) for a, (n, v) in zip(axes, feat_panels.items())]
        sides.append((axes, mappables[-1], "predicted (z-score)", "right"))
    if len({label for *_, label, _ in sides}) == 1 and len(sides) == 2:  # one shared bar
        sides = [(sides[0][0] + sides[1][0], sides[1][1], sides[1][2], "right")]
    for axes, mappable, label, location in sides:
        fig.colorbar(
            mappable, ax=axes, shrink=0.5, label=label, ticks=[-vmax, 0, vmax], location=location
        )


@doc_params(figure=FIGURE, paired_example=PAIRED_EXAMPLE)
def latent_overlay(
    mdata: MuData,
    basis: str = "sbnn",
    *,
    key: str | None = None,
    genes: int | Sequence[str] | None = 9,
    features: int | Sequence[str] | None = 9,
    color: str | None = "rna_family",
    legend_loc: str | None = "auto",
    vmax: float | None = None,
    max_edge: float | None = None,
    n_levels: int = 20,
    cmap: str = "viridis",
    point_size: float = 6.0,
    ncols: int = 3,
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """Latent coloured by a category, with contour overlays of predictions (paper Fig. 5).

    Middle: the 2-D latent (``obsm[f"X_{basis}"]``, or its t-SNE for wider
    bottlenecks) coloured by ``color``. Left: the model's reconstruction of selected
    genes; right: its predicted features, best predicted first. Each overlay is a
    ``tricontourf`` on the Delaunay triangulation of the latent, with long-edge triangles
    masked so empty regions stay empty; all overlays share one symmetric colour scale
    (the paper used −1 … 1 on z-scores).

    Defaults aim at a figure ready for a paper: the latent is titled by the model
    (``"sBNN-2 latent"``, ``"sRRR-4 latent (t-SNE)"``, with the fit's held-out R²), each
    overlay by its gene or feature (features with their R²); categories take the data's
    own colours (``uns[f"{color}_colors"]``) or scanpy's palettes; each side has a colour
    bar saying what it shows ("reconstructed expression", "observed expression",
    "predicted"); with more than 20 categories the legend goes below the panels in as
    many columns as fit the figure's width.

    Parameters
    ----------
    mdata
        MuData after :func:`multiviz.tl.sbnn` (or :func:`multiviz.tl.srrr`).
    basis
        ``obsm`` key with or without ``X_`` (``"sbnn"``, ``"sbnn64_tsne"``, ...).
    key
        The ``key_added`` of the fit (default: ``basis`` without ``X_``/``_tsne``).
    genes
        Number of top selected genes (by weight norm) or a list of names (``"Pvalb"`` or
        muon's ``"rna:Pvalb"``); ``0``/``None`` for none. Uses the gene decoder's
        reconstruction (``obsm[f"{key}_genes_pred"]``) where present, else the observed
        (z-scored) expression; the colour bar of the genes says which.
    features
        Number of predicted features or a list of names (``"AP width"`` or
        ``"ephys:AP width"``); ``0``/``None`` for none. A number takes the best predicted
        features: by cross-validated R² when a :func:`multiviz.tl.cross_validate` table of
        the same model is in ``mdata.uns``, else by the fit's held-out R²
        (``r2_heldout_per_feature``), else by training R²; the R² (and which) is shown in
        each panel's title.
    color
        What colours the latent scatter: an ``mdata.obs`` column, muon's ``"mod:name"``
        (a gene/feature or an ``obs`` column of that modality) or a gene/feature name;
        ``None`` for grey. Categories use ``uns[f"{color}_colors"]`` of the MuData or of a
        modality when present (scanpy's convention: one colour per category of the
        column, in its category order), else scanpy's default palettes (distinct colours
        up to 102 categories); missing values are grey and labelled "NA".
    legend_loc
        ``"auto"`` (``"right margin"`` up to 20 categories, ``"below"`` beyond),
        ``"right margin"`` (a legend outside every panel, in several columns for many
        categories), ``"below"`` (under the panels, in as many columns as fit the
        figure's width), ``"on data"`` (each category's name at its median, scanpy
        style) or ``None``.
    vmax
        Half-width of the shared colour scale (default: the median over the overlays of
        each one's 99th percentile of absolute values, so one outlying gene does not
        flatten the others; beyond it colours saturate; ``1.0`` reproduces the paper).
    max_edge
        Mask triangles with a longer edge (default: chosen from the data per triangle,
        see ``masked_triangulation`` in this module, so only genuinely empty regions are masked).
    n_levels, cmap, point_size, ncols
        Contour levels, colour map, scatter size, overlay panels per row.
    ax
        Draw the whole layout into the space of this Axes.
    {figure}

    Examples
    --------
    {paired_example}
    >>> mv.tl.srrr(mdata, rank=2, n_genes=20)
    >>> fig = mv.pl.latent_overlay(mdata, basis="srrr", color="cell_type", return_fig=True)

    Many categories, named on the data; colour by a gene through muon's naming:

    >>> fig = mv.pl.latent_overlay(
    ...     mdata, basis="srrr", genes=0, color="cell_type", legend_loc="on data", return_fig=True
    ... )
    """
    check_mudata(mdata)
    if legend_loc not in ("auto", "right margin", "below", "on data", None):
        raise InputError(
            "`legend_loc` must be 'auto', 'right margin', 'below', 'on data' or None, "
            f"got {legend_loc!r}."
        )
    xy, basis_key = _resolve_basis(mdata, basis)
    if key is None:
        key = basis_key.removeprefix("X_").removesuffix("_tsne")
    info = mdata.uns.get(key, {})
    params = info.get("params", {}) if isinstance(info, dict) else {}
    xmod, ymod = params.get("x", "rna"), params.get("y", None)
    genes_, gene_kinds = gene_panels(mdata, key, info, xmod, genes) if genes else ({}, set())
    feats = feature_panels(mdata, key, info, ymod, features) if features else {}

    values_c = None if color is None else _color_values(mdata, color)
    values = list(genes_.values()) + list(feats.values())
    if vmax is None:  # the typical panel's range: one outlying gene does not flatten the rest
        vmax = float(np.median([np.nanpercentile(np.abs(v), 99) for v in values] or [1.0])) or 1.0
        vmax = float(f"{vmax:.2g}")  # readable colour-bar ticks
    levels = np.linspace(-vmax, vmax, n_levels + 1)
    tri = masked_triangulation(xy, max_edge) if values else None

    categorical = values_c is not None and is_categorical(values_c)
    cats = as_categories(values_c)[1] if categorical else []
    if legend_loc == "auto":
        legend_loc = "right margin" if len(cats) <= MANY_CATEGORIES else "below"
    nc_g, nc_f, nrows, size = _layout(
        len(genes_), len(feats), ncols, cats if categorical else None, legend_loc
    )
    fig, spec = new_figure(ax, size)
    widths = [1] * nc_g + [max(nrows, 2)] + [1] * nc_f
    gs = spec.subgridspec(nrows, len(widths), width_ratios=widths)
    main = fig.add_subplot(gs[:, nc_g])
    _draw_latent(fig, main, xy, mdata, color, values_c, legend_loc, point_size)
    main.set_title(_model_title(key, basis_key, info))
    main.set_aspect("equal", adjustable="datalim")
    main.set_xticks([])
    main.set_yticks([])
    draw = partial(_overlay, tri=tri, levels=levels, vmax=vmax, cmap=cmap)
    _draw_overlays(fig, gs, (genes_, gene_kinds, nc_g), (feats, nc_f), draw, vmax)
    return finish(fig, show=show, save=save, return_fig=return_fig)
