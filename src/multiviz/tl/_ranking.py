"""Consensus ranking of genes: how often an ensemble's members select each gene.

Pure functions on the members' gene sets (no fitting, no AnnData): used by
:func:`multiviz.tl.selection_stability` with ``consensus=True`` and by the benchmarks.
The consensus keeps the ``n_genes`` genes selected most often across the members (ties
broken by the members' mean relative first-layer weight).
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
