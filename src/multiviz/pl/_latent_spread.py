"""``mv.pl.latent_spread``: each cell's latent position with how much the folds' fits disagree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import EllipseCollection
from matplotlib.figure import Figure
from mudata import MuData

from .._docs import FIGURE, doc_params
from .._validate import InputError
from ._utils import finish, new_axes


@doc_params(figure=FIGURE)
def latent_spread(
    mdata: MuData,
    key: str = "cv_sbnn",
    *,
    scale: float = 1.0,
    cmap: str = "viridis",
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """Out-of-fold latent with each cell's spread over the folds' models.

    Every cell is drawn at its out-of-fold position (``mdata.obsm[f"X_{key}"]``), with an
    ellipse whose half-axes are ``scale`` times its per-axis standard deviation over the
    folds' aligned latents (``mdata.obsm[f"X_{key}_spread"]``; 1 by default, which keeps
    the picture readable; 2 covers about 95 % of the members' positions for a normal spread) and a colour for its root-mean-square spread
    (``mdata.obs[f"{key}_latent_spread"]``). Both are written by
    :func:`multiviz.tl.cross_validate` with ``return_predictions=True``. Regions drawn with
    large ellipses are those the map places unreliably. Draws the first two latent axes.

    Parameters
    ----------
    mdata
        MuData after ``mv.tl.cross_validate(..., return_predictions=True)``.
    key
        ``key_added`` of that run (``"cv_sbnn"`` or ``"cv_srrr"`` by default).
    scale
        Ellipse half-axes in standard deviations.
    cmap
        Colour map of the spread.
    ax
        Axes to draw into (default: a new figure).
    {figure}

    Examples
    --------
    >>> mv.tl.cross_validate(mdata, method="srrr", return_predictions=True)
    >>> mv.pl.latent_spread(mdata, key="cv_srrr")
    """
    names = (f"X_{key}", f"X_{key}_spread")
    missing = [n for n in names if n not in mdata.obsm] + (
        [] if f"{key}_latent_spread" in mdata.obs else [f"obs[{key!r}_latent_spread]"]
    )
    if missing:
        raise InputError(
            f"`key={key!r}`: {missing} not found in `mdata`; run "
            "`mv.tl.cross_validate(mdata, ..., return_predictions=True)` first (its "
            "`key_added` is the `key` here)."
        )
    if not scale > 0:
        raise InputError(f"`scale` must be a positive number of standard deviations, got {scale}.")
    pos = np.asarray(mdata.obsm[names[0]], dtype=float)
    sd = np.asarray(mdata.obsm[names[1]], dtype=float)
    spread = mdata.obs[f"{key}_latent_spread"].to_numpy(float)
    if pos.shape[1] < 2:
        raise InputError(f"`mdata.obsm[{names[0]!r}]` has one axis; a 2-d latent is needed.")
    fig, ax = new_axes(ax, (5.0, 4.2))
    ellipses = EllipseCollection(
        2 * scale * sd[:, 0],
        2 * scale * sd[:, 1],
        np.zeros(len(pos)),
        units="xy",
        offsets=pos[:, :2],
        offset_transform=ax.transData,
        facecolors="none",
        edgecolors="0.6",
        linewidths=0.4,
        alpha=0.5,
    )
    ax.add_collection(ellipses)
    dots = ax.scatter(pos[:, 0], pos[:, 1], c=spread, cmap=cmap, s=8, zorder=3)
    fig.colorbar(dots, ax=ax, label="spread over folds (RMS)")
    ax.autoscale_view()
    ax.set_xlabel(f"{key} 1")
    ax.set_ylabel(f"{key} 2")
    ax.set_title(f"out-of-fold latent ± {scale:g} SD over the folds' fits", fontsize=10)
    return finish(fig, show=show, save=save, return_fig=return_fig)
