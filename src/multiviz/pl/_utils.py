"""Shared plotting conventions, as in scanpy: ``ax=``, ``show=``, ``save=``, ``return_fig=``.

* ``show=None`` shows the figure when matplotlib is interactive (Jupyter, IPython with a
  GUI backend, ``plt.ion()``) and then returns ``None``, so a notebook displays each figure
  once; in a script (non-interactive backend) nothing is shown and the Figure is returned.
  A figure the caller passed in through ``ax=`` is never shown by ``show=None``: the caller
  may still be drawing into it.
* ``return_fig=True`` always returns the :class:`~matplotlib.figure.Figure` (and does not
  show it), ``show=False`` likewise. The only return types are ``Figure`` and ``None``.
* Categories with missing values are drawn in light grey and labelled ``"NA"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

NA_COLOR = "lightgray"
NA_LABEL = "NA"
SAVE_DPI = 150


def new_figure(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, object]:
    """Figure and a ``SubplotSpec`` to lay panels into.

    With ``ax`` the panels replace that Axes inside its figure (so a whole multi-panel
    plot can be placed into a larger figure); otherwise a new figure is created.
    """
    if ax is not None:
        fig = ax.figure
        spec = ax.get_subplotspec()
        ax.remove()
        return fig, spec
    fig = own(plt.figure(figsize=figsize, layout="constrained"))
    return fig, fig.add_gridspec(1, 1)[0]


def new_axes(ax: Axes | None, figsize: tuple[float, float]) -> tuple[Figure, Axes]:
    """``ax`` and its figure, or a new constrained-layout figure with one Axes."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout="constrained")
    return own(fig), ax


def own(fig: Figure) -> Figure:
    """Mark ``fig`` as made by ``mv.pl`` (shown by ``show=None``; a user's figure is not)."""
    fig._multiviz_owned = True  # type: ignore[attr-defined]
    return fig


def is_interactive() -> bool:
    """Whether a figure left open would be displayed: ``plt.isinteractive()`` or an inline backend."""
    return plt.isinteractive() or "inline" in str(mpl.get_backend()).lower()


def finish(
    fig: Figure,
    *,
    show: bool | None,
    save: str | Path | None,
    return_fig: bool = False,
) -> Figure | None:
    """Save, show and return as scanpy does (see the module docstring).

    ``save`` is a path; the format follows its suffix, at least 150 dpi.
    """
    if save is not None:
        path = Path(save)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=max(SAVE_DPI, fig.dpi), bbox_inches="tight")
    if return_fig:
        return fig
    if show is None:  # a figure the caller passed in (``ax=``) is theirs to show
        show = is_interactive() and getattr(fig, "_multiviz_owned", False)
    if show:
        plt.show()
        return None
    return fig


def _default_colors(n: int) -> list[str]:
    """scanpy's default palettes: 20, 28 or 102 distinct colours (a ramp beyond 102)."""
    try:
        from scanpy.plotting import palettes
    except ImportError:  # pragma: no cover - scanpy is a dependency
        palettes = None
    if palettes is not None and n <= 102:
        for colors in (palettes.default_20, palettes.default_28, palettes.default_102):
            if n <= len(colors):
                return [to_hex(c) for c in colors[:n]]
    ramp = plt.get_cmap("nipy_spectral")
    return [to_hex(ramp(x)) for x in np.linspace(0.03, 0.97, n)]


def category_palette(
    uns: Mapping | Sequence[Mapping],
    key: str | None,
    categories: Sequence,
    *,
    all_categories: Sequence | None = None,
) -> dict:
    """Colour per category: ``uns[f"{key}_colors"]`` when it covers them (scanpy's convention).

    ``uns`` may be several mappings (e.g. the MuData's, then a modality's), searched in
    order. scanpy stores one colour per category of the column, in the order of
    ``all_categories`` (the column's ``.cat.categories``, default ``categories``), so
    colours are matched in that order. Otherwise scanpy's default palettes (distinct
    colours up to 102 categories) in category order. :data:`NA_LABEL` is light grey.
    """
    cats = [c for c in categories if c != NA_LABEL]
    order = [str(c) for c in all_categories] if all_categories is not None else cats
    sources = [uns] if isinstance(uns, Mapping) else list(uns)
    colors = None
    if key is not None:
        for source in sources:
            found = source.get(f"{key}_colors")
            if found is not None and len(found) >= len(order) and set(cats) <= set(order):
                colors = dict(zip(order, [to_hex(c) for c in found]))
                break
    palette = colors if colors is not None else dict(zip(cats, _default_colors(len(cats))))
    palette = {c: palette[c] for c in cats}
    palette[NA_LABEL] = NA_COLOR
    return palette


def as_categories(values: pd.Series | Sequence) -> tuple[np.ndarray, list[str]]:
    """String labels per point (missing → ``"NA"``) and the category order (``"NA"`` last)."""
    series = pd.Series(values)
    cat = series if isinstance(series.dtype, pd.CategoricalDtype) else series.astype("category")
    categories = [str(c) for c in cat.cat.categories]
    labels = np.where(cat.isna().to_numpy(), NA_LABEL, cat.astype(str).to_numpy())
    if (labels == NA_LABEL).any() and NA_LABEL not in categories:
        categories.append(NA_LABEL)
    present = set(labels)
    return labels, [c for c in categories if c in present]


def is_categorical(values: pd.Series) -> bool:
    """Categorical, string, object or boolean values (coloured per category)."""
    return isinstance(values.dtype, pd.CategoricalDtype) or values.dtype.kind in "OSUb"


def scatter_categories(
    ax: Axes,
    xy: np.ndarray,
    labels: np.ndarray,
    categories: Sequence[str],
    palette: Mapping[str, object],
    *,
    size: float,
) -> list:
    """One scatter per category (``"NA"`` first, underneath); legend handles in ``categories`` order.

    Each scatter's label is its category (:func:`display_label` for names matplotlib
    would hide, such as ``""`` or ``"_x"``).
    """
    handles = {}
    order = [c for c in categories if c == NA_LABEL] + [c for c in categories if c != NA_LABEL]
    for c in order:
        sel = labels == c
        handles[c] = ax.scatter(
            xy[sel, 0],
            xy[sel, 1],
            s=size,
            color=palette[c],
            label=display_label(c),
            linewidths=0,
            zorder=1 if c == NA_LABEL else 2,
        )
    return [handles[c] for c in categories]


def display_label(category: str) -> str:
    """A legend label matplotlib shows: ``""`` → ``"(empty)"``, ``"_x"`` → ``" _x"``."""
    if category == "":
        return "(empty)"
    return f" {category}" if category.startswith("_") else category


def legend_outside(
    fig: Figure, handles: list, title: str | None = None, labels: list[str] | None = None
) -> None:
    """A figure legend in the right margin (never over the data), in as many columns as needed.

    Each column holds as many entries as fit the figure's height, so a legend of 77 cell
    types becomes several columns beside the panels instead of running off the figure.

    Outside the panels with a constrained layout (every figure ``mv.pl`` makes); in the
    figure's upper right corner otherwise.
    """
    engine = fig.get_layout_engine()
    constrained = engine is not None and type(engine).__name__ == "ConstrainedLayoutEngine"
    fig.legend(
        handles=handles,
        **({"labels": labels} if labels is not None else {}),
        loc="outside right upper" if constrained else "upper right",
        frameon=False,
        fontsize="small",
        markerscale=1.5,
        ncols=math.ceil(len(handles) / legend_rows(fig.get_figheight())),
        title=title,
        title_fontsize="small",
    )


def legend_below(fig: Figure, handles: list, title: str | None = None) -> None:
    """A figure legend under the panels, in as many columns as fit the figure's width.

    For many categories (e.g. 77 t-types): the legend is never wider than the figure, and
    the constrained layout makes room for it below the panels.
    """
    longest = max((len(h.get_label()) for h in handles), default=1)
    fig.legend(
        handles=handles,
        loc="outside lower center",
        frameon=False,
        fontsize="small",
        markerscale=1.5,
        ncols=_legend_columns(len(handles), fig.get_figwidth(), longest),
        title=title,
        title_fontsize="small",
    )


def _legend_columns(n: int, width: float, longest: int) -> int:
    """Columns of ``n`` small-font entries (``longest`` characters) across ``width`` inches."""
    size = mpl.font_manager.FontProperties(size="small").get_size_in_points()
    # label (0.6 em per character) + marker, padding and column spacing, in inches
    col = (0.6 * size * max(longest, 1) + 4.8 * size) / 72
    return max(1, min(n, int(0.95 * width / col)))


def legend_height(n: int, width: float, longest: int) -> float:
    """Inches that :func:`legend_below` needs for ``n`` entries on a ``width``-inch figure."""
    size = mpl.font_manager.FontProperties(size="small").get_size_in_points()
    return (math.ceil(n / _legend_columns(n, width, longest)) + 1.5) * 1.4 * size / 72


def legend_rows(height: float) -> int:
    """Legend entries that fit one column of a figure ``height`` inches tall (small font)."""
    return max(4, int((height * 72 - 30) / 12.5))


def legend_on_data(ax: Axes, xy: np.ndarray, labels: np.ndarray, categories: Sequence[str]) -> None:
    """Category names at the median of their points, with a white outline (scanpy's ``on data``)."""
    from matplotlib import patheffects

    effects = [patheffects.withStroke(linewidth=2, foreground="w")]
    for c in categories:
        if c == NA_LABEL:
            continue
        sel = labels == c
        mx, my = np.median(xy[sel], axis=0)
        ax.text(
            mx,
            my,
            display_label(c),
            fontsize="x-small",
            ha="center",
            va="center",
            path_effects=effects,
        )
