"""``mv.pl.selection_stability``: how often each gene is selected (sBNN paper, Fig. 4)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from mudata import MuData

from .._docs import FIGSIZE, FIGURE, PAIRED_EXAMPLE, doc_params
from .._validate import InputError
from ..metrics._stability import jaccard
from ._utils import finish, own


@doc_params(figure=FIGURE, figsize=FIGSIZE, paired_example=PAIRED_EXAMPLE)
def selection_stability(
    mdata: MuData,
    *,
    key: str = "sbnn",
    axs: tuple[Axes, Axes] | None = None,
    figsize: tuple[float, float] = (9.0, 3.8),
    show: bool | None = None,
    save: str | Path | None = None,
    return_fig: bool = False,
) -> Figure | None:
    """Selection counts and the Jaccard matrix of the gene sets of repeated fits.

    Left: how many genes were selected in exactly k of the n fits (k = 1 … n), as in the
    sBNN paper's Fig. 4. Right: the pairwise Jaccard index between the fits' gene sets,
    with the mean in the title.

    Parameters
    ----------
    mdata
        MuData after :func:`multiviz.tl.selection_stability` (reads
        ``uns[f"{key}_stability"]``).
    key
        The ``key_added`` of that call.
    axs
        Two Axes to draw into.
    {figsize}
    {figure}

    Examples
    --------
    {paired_example}
    >>> mv.tl.selection_stability(mdata, method="srrr", n_seeds=5, rank=2, n_genes=20)
    >>> mv.pl.selection_stability(mdata, key="srrr")
    """
    stability_key = f"{key}_stability"
    if stability_key not in mdata.uns:
        raise InputError(
            f"`mdata.uns[{stability_key!r}]` not found; run `mv.tl.selection_stability(mdata, "
            f"key_added={key!r})` first."
        )
    stored = mdata.uns[stability_key]
    sets = [str(s).split(";") if str(s) else [] for s in stored["gene_sets"]]
    n_fits = len(sets)
    counts: dict[str, int] = {}
    for genes in sets:
        for gene in set(genes):
            counts[gene] = counts.get(gene, 0) + 1
    times = np.bincount(list(counts.values()), minlength=n_fits + 1)[1:]
    matrix = np.array([[jaccard(a, b) for b in sets] for a in sets])

    if axs is None:
        fig, axs = plt.subplots(1, 2, figsize=figsize, layout="constrained")
        own(fig)
    else:
        fig = axs[0].figure
    ax_counts, ax_matrix = axs
    ax_counts.bar(np.arange(1, n_fits + 1), times, color="0.35")
    ax_counts.set_xticks(np.arange(1, n_fits + 1))
    ax_counts.set_xlabel(f"selected in k of {n_fits} fits ({stored['over']})")
    ax_counts.set_ylabel("number of genes")
    image = ax_matrix.imshow(matrix, vmin=0, vmax=1, cmap="viridis")
    ax_matrix.set_xlabel("fit")
    ax_matrix.set_ylabel("fit")
    off_diagonal = matrix[~np.eye(n_fits, dtype=bool)]
    ax_matrix.set_title(
        f"Jaccard index, mean {off_diagonal.mean():.2f}" if n_fits > 1 else "Jaccard index"
    )
    fig.colorbar(image, ax=ax_matrix, shrink=0.8)
    return finish(fig, show=show, save=save, return_fig=return_fig)
