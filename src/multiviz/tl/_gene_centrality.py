"""``mv.tl.gene_centrality``: rank genes by siVAE degree centrality."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from multiviz._validate import InputError, check_anndata, check_int, check_str

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
        Return only the top genes (a positive integer; ``None``: all ranked genes).

    Returns
    -------
    DataFrame indexed by gene with ``centrality`` and ``rank`` (1 = most central). Genes
    that siVAE could not score (constant over cells, ``var[f"{key}_used"] == False``) are
    left out: they have no reconstruction R².

    Examples
    --------
    >>> mv.tl.sivae(adata, n_latent=64)  # doctest: +SKIP
    >>> mv.tl.gene_centrality(adata, n_top=20)  # doctest: +SKIP
    """
    check_anndata(adata)
    key = check_str(key, "key")
    if n_top is not None:
        n_top = check_int(n_top, "n_top")
    col = f"{key}_centrality"
    if col not in adata.var:
        raise InputError(
            f"`var[{col!r}]` not found; run `mv.tl.sivae(adata, key_added={key!r})` first."
        )
    table = adata.var[[col]].rename(columns={col: "centrality"})
    used_col = f"{key}_used"
    if used_col in adata.var:
        table = table[adata.var[used_col].to_numpy(dtype=bool)]
    values = table["centrality"].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise InputError(
            f"`var[{col!r}]` has {int((~np.isfinite(values)).sum())} non-finite values; "
            f"refit with `mv.tl.sivae(adata, key_added={key!r})`."
        )
    out = table.sort_values("centrality", ascending=False, kind="stable")
    out["rank"] = np.arange(1, len(out) + 1)
    return out.head(n_top) if n_top is not None else out
