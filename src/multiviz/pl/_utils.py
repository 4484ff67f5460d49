"""Shared plotting conventions: ``ax=`` to draw into, ``save=`` a path, ``show=``, ``return_fig``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure


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
    fig = plt.figure(figsize=figsize, layout="constrained")
    return fig, fig.add_gridspec(1, 1)[0]


def finish(fig: Figure, *, show: bool | None, save: str | Path | None, return_fig: bool = True):
    """Save (``save`` is a path; the format follows its suffix), show, return the Figure."""
    if save is not None:
        path = Path(save)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=150, bbox_inches="tight")
    if show:
        plt.show()
    return fig if return_fig else None


def category_palette(uns: Mapping, key: str, categories: Sequence) -> dict:
    """Colour per category: ``uns[f"{key}_colors"]`` when it covers them (scanpy's convention).

    Otherwise ``tab10`` (≤ 10 categories) or ``tab20``, in category order.
    """
    colors = uns.get(f"{key}_colors")
    if colors is not None and len(colors) >= len(categories):
        return dict(zip(categories, colors))
    cmap = plt.get_cmap("tab20" if len(categories) > 10 else "tab10")
    return {c: cmap(i % cmap.N) for i, c in enumerate(categories)}
