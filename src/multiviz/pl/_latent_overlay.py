"""``mv.pl.latent_overlay``: the sBNN paper's Fig. 5 (latent + contour overlays)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.tri import Triangulation
from mudata import MuData

from .._validate import InputError, check_mudata
from ._utils import (
    as_categories,
    category_palette,
    finish,
    is_categorical,
    legend_on_data,
    legend_outside,
    legend_rows,
    new_figure,
    scatter_categories,
)


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


def _strip_mod(name: str, mod: str) -> str:
    """``"rna:Pvalb"`` → ``"Pvalb"`` when the prefix is ``mod`` (muon's naming)."""
    prefix = f"{mod}:"
    return name[len(prefix) :] if str(name).startswith(prefix) else str(name)


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


def _cv_r2(mdata: MuData, key: str, params: dict) -> pd.Series | None:
    """Mean held-out R² per feature from a ``cross_validate`` table matching this fit."""
    method = "srrr" if key.startswith("srrr") else "sbnn" if key.startswith("sbnn") else None
    tables = [
        v
        for v in mdata.uns.values()
        if isinstance(v, pd.DataFrame) and {"method", "feature", "r2"} <= set(v.columns)
    ]
    for table in tables:
        rows = table[(table["method"] == method) & (table["feature"] != "all")]
        for arg in ("bottleneck", "rank"):
            if arg in params and "params" in rows:
                same = rows["params"].astype(str).str.contains(f"{arg}={params[arg]}\\b")
                rows = rows[same] if same.any() else rows
        if len(rows):
            return rows.groupby("feature")["r2"].mean()
    return None


def _rank_features(mdata: MuData, key: str, info: dict, names: list[str]):
    """Features by decreasing held-out R² (``cross_validate`` in ``uns``), else train R²."""
    params = info.get("params", {}) if isinstance(info, dict) else {}
    r2 = _cv_r2(mdata, key, params)
    source = "CV"
    if r2 is None or not set(names) & set(r2.index):
        train = info.get("r2_train_per_feature") if isinstance(info, dict) else None
        r2, source = (pd.Series(train) if train is not None else None), "train"
    if r2 is None:
        return list(names), {}, None
    r2 = r2.reindex(names)
    order = list(r2.sort_values(ascending=False, na_position="last").index)
    return order, r2.to_dict(), source


def latent_overlay(
    mdata: MuData,
    basis: str = "sbnn",
    *,
    key: str | None = None,
    genes: int | Sequence[str] | None = 9,
    features: int | Sequence[str] | None = 9,
    color: str | None = "rna_family",
    legend_loc: str | None = "right margin",
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
        (z-scored) expression (titled "observed").
    features
        Number of predicted features or a list of names (``"AP width"`` or
        ``"ephys:AP width"``); ``0``/``None`` for none. A number takes the best predicted
        features: by held-out R² when a :func:`multiviz.tl.cross_validate` table of the
        same model is in ``mdata.uns``, else by training R²; the R² (and which) is shown
        in each panel's title.
    color
        What colours the latent scatter: an ``mdata.obs`` column, muon's ``"mod:name"``
        (a gene/feature or an ``obs`` column of that modality) or a gene/feature name;
        ``None`` for grey. Categories use ``uns[f"{color}_colors"]`` when present (scanpy's
        convention); missing values are grey and labelled "NA".
    legend_loc
        ``"right margin"`` (a legend outside every panel, in several columns for many
        categories), ``"on data"`` (each category's name at its median, scanpy style; for
        many categories) or ``None``.
    vmax
        Half-width of the shared colour scale (default: the largest 99th percentile of
        the absolute values across the overlays; ``1.0`` reproduces the paper).
    max_edge
        Mask triangles with a longer edge (default 3 × the median edge length).
    n_levels, cmap, point_size, ncols
        Contour levels, colour map, scatter size, overlay panels per row.
    ax
        Draw the whole layout into the space of this Axes.
    show
        Show the figure; ``None`` shows it when matplotlib is interactive (e.g. Jupyter).
    save
        Save the figure to this path (format from the suffix, ≥ 150 dpi).
    return_fig
        Return the Figure instead of showing it.

    Returns
    -------
    :class:`~matplotlib.figure.Figure` or ``None``
        The figure when ``return_fig=True`` or ``show=False``; ``None`` once it is shown.

    Examples
    --------
    >>> import multiviz as mv
    >>> mdata = mv.datasets.simulate_patchseq()
    >>> mv.pp.prepare_paired(mdata, x="rna", y="ephys")
    >>> mv.tl.srrr(mdata, rank=2, n_genes=20)
    >>> fig = mv.pl.latent_overlay(mdata, basis="srrr", color="cell_type", return_fig=True)

    Many categories, named on the data; colour by a gene through muon's naming:

    >>> fig = mv.pl.latent_overlay(
    ...     mdata, basis="srrr", genes=0, color="cell_type", legend_loc="on data", return_fig=True
    ... )
    """
    check_mudata(mdata)
    if legend_loc not in ("right margin", "on data", None):
        raise InputError(
            f"`legend_loc` must be 'right margin', 'on data' or None, got {legend_loc!r}."
        )
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
        for g in (_strip_mod(g, xmod) for g in genes):
            if isinstance(pred, pd.DataFrame) and g in pred.columns:
                gene_panels[g] = pred[g].to_numpy()
            elif g in rna.var_names:
                col = rna[:, g].X
                col = col.toarray() if hasattr(col, "toarray") else np.asarray(col)
                gene_panels[f"{g}\n(observed)"] = col.ravel()
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
        names = [str(n) for n in target.var_names]
        order, r2, source = _rank_features(mdata, key, info, names)
        if isinstance(features, int | np.integer):
            features = order[: int(features)]
        for f in (_strip_mod(f, ymod) for f in features):
            if f not in names:
                raise InputError(f"Feature {f!r} is not in `mdata[{ymod!r}].var_names` ({names}).")
            score = r2.get(f)
            title = f if score is None or pd.isna(score) else f"{f}\n{source} R² {score:.2f}"
            feat_panels[title] = pred[:, names.index(f)]

    values_c = None if color is None else _color_values(mdata, color)
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
    height = 1.6 * max(nrows, 2) + 0.5
    legend_width = 0.0
    if values_c is not None and is_categorical(values_c) and legend_loc == "right margin":
        n_cats = len(as_categories(values_c)[1])
        legend_width = 1.5 * math.ceil(n_cats / legend_rows(height))  # room beside the panels
    fig, spec = new_figure(ax, (1.6 * width_units + 1 + legend_width, height))
    widths = [1] * nc_g + [max(nrows, 2)] + [1] * nc_f
    gs = spec.subgridspec(nrows, len(widths), width_ratios=widths)
    main = fig.add_subplot(gs[:, nc_g])
    if values_c is None:
        main.scatter(xy[:, 0], xy[:, 1], s=point_size, color="0.5", linewidths=0)
    elif is_categorical(values_c):
        labels, cats = as_categories(values_c)
        palette = category_palette(mdata.uns, color, cats)
        handles = scatter_categories(main, xy, labels, cats, palette, size=point_size)
        if legend_loc == "right margin":
            legend_outside(fig, handles, title=color)
        elif legend_loc == "on data":
            legend_on_data(main, xy, labels, cats)
    else:
        v = values_c.to_numpy(dtype=float)
        missing = ~np.isfinite(v)
        if missing.any():
            main.scatter(*xy[missing].T, s=point_size, color="lightgray", linewidths=0, label="NA")
        points = main.scatter(*xy[~missing].T, s=point_size, c=v[~missing], linewidths=0)
        fig.colorbar(points, ax=main, shrink=0.5, label=color, location="bottom")
    main.set_title(basis_key.removeprefix("X_"))
    main.set_aspect("equal", adjustable="datalim")
    main.set_xticks([])
    main.set_yticks([])
    mappable, overlays = None, []

    def overlay(ax_, title, v):
        nonlocal mappable
        overlays.append(ax_)
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
            mappable, ax=overlays, shrink=0.5, label="prediction (z-score)", ticks=[-vmax, 0, vmax]
        )
    return finish(fig, show=show, save=save, return_fig=return_fig)
