"""Deprecated alias ``mv.tl.sbnn_consensus`` of ``selection_stability(consensus=True)``.

A single sBNN's 25 genes change with the seed and the fold (the paper: on M1 two runs
share 13 of 25 genes on average, only *Pvalb* and *Gad1* were selected 10/10 times).
The consensus keeps the ``n_genes`` genes selected most often across the members of a
batched ensemble and refits one sBNN on exactly those genes; it is computed by
:func:`multiviz.tl.selection_stability` with ``consensus=True`` (the one public name for
it) from the pure ranking functions of :mod:`multiviz.tl._ranking`, which are re-exported
here for code that imported them from this module. This module imports
``_selection_stability`` and ``_ranking``; neither imports it back (no import cycle).
"""

from __future__ import annotations

import warnings

from .._docs import PAIRED_EXAMPLE, doc_params
from ._ranking import consensus_genes, consensus_ranking
from ._selection_stability import selection_stability

__all__ = ["consensus_genes", "consensus_ranking", "sbnn_consensus"]

_DEPRECATION = (
    "mv.tl.sbnn_consensus is deprecated and will be removed in a future release; "
    'use mv.tl.selection_stability(mdata, "sbnn", consensus=True, ...) instead.'
)


@doc_params(paired_example=PAIRED_EXAMPLE)
def sbnn_consensus(
    mdata,
    *,
    n_seeds: int = 10,
    over: str = "seeds",
    n_folds: int = 10,
    key_added: str = "sbnn",
    **kwargs,
) -> dict:
    """An sBNN on the genes a batched ensemble of sBNN fits selects most often (deprecated).

    .. deprecated::
        Use ``mv.tl.selection_stability(mdata, "sbnn", consensus=True, ...)``, which this
        calls; ``sbnn_consensus`` emits a :class:`FutureWarning`.

    Trains ``n_seeds`` sBNNs (``over="seeds"``: all cells, seeds ``random_state ..``;
    ``"folds"``/``"folds_seeds"``: the cross-validation training sets) as one batched
    ensemble, keeps the ``n_genes`` genes selected most often (ties: larger mean
    first-layer weight relative to each fit's cut) and refits one sBNN on exactly those
    genes with the paper's full schedule. The same as
    ``mv.tl.selection_stability(mdata, method="sbnn", consensus=True, ...)``.

    Parameters
    ----------
    mdata
        Paired MuData after :func:`multiviz.pp.prepare_paired`.
    n_seeds, over, n_folds
        The ensemble (10 seeds on all cells by default; the paper's stability runs).
    key_added
        Prefix: the frequencies go to ``mdata[x].var[f"{key_added}_selection_frequency"]``,
        the consensus model's results (everything :func:`multiviz.tl.sbnn` writes) under
        ``f"{key_added}_consensus"``.
    **kwargs
        Passed to :func:`multiviz.tl.selection_stability` (``x``, ``y``, ``genes``,
        ``n_genes``, ``bottleneck``, schedule and training arguments, ``random_state``,
        ``ensemble``, ``enable_progress_bar``, ``gene_decoder_epochs`` of the refit).

    Returns
    -------
    The dict of :func:`multiviz.tl.selection_stability`, with ``consensus_genes``.

    Examples
    --------
    {paired_example}
    >>> mv.tl.selection_stability(mdata, "sbnn", n_seeds=10, consensus=True)  # the same, not deprecated
    """
    warnings.warn(_DEPRECATION, FutureWarning, stacklevel=2)
    return selection_stability(
        mdata,
        "sbnn",
        n_seeds=n_seeds,
        over=over,
        n_folds=n_folds,
        key_added=key_added,
        consensus=True,
        **kwargs,
    )
