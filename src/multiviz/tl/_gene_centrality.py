"""``mv.tl.gene_centrality``: rank genes by siVAE degree centrality."""

from __future__ import annotations

import pandas as pd
from anndata import AnnData

from multiviz._validate import InputError, check_anndata

__all__ = ["gene_centrality"]


def gene_centrality(
    adata: AnnData, *, key: str = "sivae", n_top: int | None = None
) -> pd.DataFrame:
    """Genes ranked by siVAE degree centrality (higher = more central).

    The paper (Choi & Quon 2023, Methods "Estimating degree centrality using siVAE")
    defines a gene's degree centrality as the negative of its reconstruction error;
    :func:`multiviz.tl.sivae` stores the per-gene reconstruction R² (the error scaled by
    the gene's variance) in ``var[f"{key}_centrality"]``. Hub genes, which predict many
    other genes, are reconstructed best.

    Parameters
    ----------
    adata
        AnnData after :func:`multiviz.tl.sivae`.
    key
        ``key_added`` of that run.
    n_top
        Return only the top genes.

    Returns
    -------
    DataFrame indexed by gene with ``centrality`` and ``rank`` (1 = most central).
    """
    check_anndata(adata)
    col = f"{key}_centrality"
    if col not in adata.var:
        raise InputError(
            f"`var[{col!r}]` not found; run `mv.tl.sivae(adata, key_added={key!r})` first."
        )
    out = (
        adata.var[[col]]
        .rename(columns={col: "centrality"})
        .sort_values("centrality", ascending=False)
    )
    out["rank"] = range(1, len(out) + 1)
    return out.head(n_top) if n_top is not None else out
