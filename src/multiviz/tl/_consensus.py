"""Consensus gene selection: the genes an ensemble of sBNN fits selects most often.

A single sBNN's 25 genes change with the seed and the fold (the paper: on M1 two runs
share 13 of 25 genes on average, only *Pvalb* and *Gad1* were selected 10/10 times).
The consensus keeps the ``n_genes`` genes selected most often across the members of a
batched ensemble (ties broken by the members' mean relative first-layer weight) and
refits one sBNN, with the paper's full schedule, on exactly those genes. The genes a
user reports then no longer depend on one seed or one fold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def consensus_ranking(
    gene_sets: Sequence[Sequence[str]],
    universe: Sequence[str],
    norms: Sequence[pd.Series] | None = None,
) -> pd.DataFrame:
    """Selection frequency and tie-break strength of every gene of ``universe``.

    Parameters
    ----------
    gene_sets
        The genes each member selected.
    universe
        All candidate genes (the members' input genes).
    norms
        Optional per-member first-layer row norms just before pruning (indexed by gene);
        each is divided by the member's own cut (its ``n_genes``-th largest norm) and
        averaged, to order genes selected equally often.

    Returns
    -------
    DataFrame indexed by gene with ``frequency`` and ``strength``, sorted best first.
    """
    universe = [str(g) for g in universe]
    freq = pd.Series(0.0, index=pd.Index(universe))
    for s in gene_sets:
        freq.loc[[str(g) for g in s if str(g) in freq.index]] += 1.0
    freq /= max(len(gene_sets), 1)
    strength = pd.Series(0.0, index=freq.index)
    if norms:
        for s, nrm in zip(gene_sets, norms):
            cut = np.sort(nrm.to_numpy())[::-1][max(len(s), 1) - 1]
            rel = nrm.reindex(freq.index).fillna(0.0) / (cut if cut > 0 else 1.0)
            strength += rel
        strength /= len(norms)
    out = pd.DataFrame({"frequency": freq, "strength": strength})
    order = np.lexsort(
        (np.arange(len(out)), -out["strength"].to_numpy(), -out["frequency"].to_numpy())
    )
    return out.iloc[order]


def consensus_genes(ranking: pd.DataFrame, n_genes: int) -> list[str]:
    """The ``n_genes`` best genes of :func:`consensus_ranking` (most frequently selected)."""
    return [str(g) for g in ranking.index[:n_genes]]


def sbnn_consensus(
    mdata,
    *,
    n_seeds: int = 10,
    over: str = "seeds",
    n_folds: int = 10,
    key_added: str = "sbnn",
    **kwargs,
) -> dict:
    """An sBNN on the genes a batched ensemble of sBNN fits selects most often.

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
    >>> import multiviz as mv
    >>> mdata = mv.datasets.simulate_patchseq()
    >>> mv.pp.prepare_paired(mdata, x="rna", y="ephys")
    >>> mv.tl.sbnn_consensus(mdata, n_seeds=10)  # genes selected most often across 10 seeds, refitted
    """
    from ._selection_stability import selection_stability

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
