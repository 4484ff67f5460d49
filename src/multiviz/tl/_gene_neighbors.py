"""``mv.tl.gene_neighbors``: co-expression neighbours of genes in the siVAE loading space."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse
from sklearn.neighbors import NearestNeighbors

from multiviz import _logging as logg
from multiviz._validate import (
    InputError,
    check_anndata,
    check_bool,
    check_int,
    check_str,
    check_writable,
)

__all__ = ["gene_neighbors", "loadings_of"]


def loadings_of(adata: AnnData, key: str) -> np.ndarray:
    """``adata.varm[f"{key}_loadings"]`` with a clear error when ``mv.tl.sivae`` has not run."""
    name = f"{key}_loadings"
    if not isinstance(key, str) or name not in adata.varm:
        raise InputError(
            f"`varm[{name!r}]` not found; run `mv.tl.sivae(adata, key_added={key!r})` first "
            f"(varm keys: {list(adata.varm)})."
        )
    values = np.asarray(adata.varm[name], dtype=np.float64)
    if not np.isfinite(values).all():
        raise InputError(f"`varm[{name!r}]` has non-finite values; refit the model.")
    return values


def gene_neighbors(
    adata: AnnData,
    *,
    n_neighbors: int = 20,
    key: str = "sivae",
    key_added: str | None = None,
    copy: bool = False,
) -> pd.DataFrame | tuple[AnnData, pd.DataFrame]:
    """Nearest genes by Euclidean distance between siVAE loadings ("siVAE-Euc").

    Paper (Choi & Quon 2023, Methods "Identifying gene co-expression network neighbors
    from siVAE models"): the k nearest neighbours of a query gene are the k genes with the
    shortest Euclidean distance to it in the feature embedding space (k = 20).

    Parameters
    ----------
    adata
        AnnData with ``varm[f"{key}_loadings"]`` (from :func:`multiviz.tl.sivae`).
    n_neighbors
        Neighbours per gene (paper: 20).
    key
        ``key_added`` of the siVAE run.
    key_added
        Prefix of the outputs (default ``f"{key}_neighbors"``).
    copy
        Work on a copy and return ``(copy, table)``.

    Returns
    -------
    Tidy table with columns ``gene, neighbor, rank, distance`` (rank 1 = nearest). Writes
    ``varp[f"{key_added}_distances"]`` (sparse genes x genes, the k-NN distances) and
    ``uns[key_added]["params"]``.

    Examples
    --------
    >>> mv.tl.sivae(adata, n_latent=64)  # doctest: +SKIP
    >>> table = mv.tl.gene_neighbors(adata, n_neighbors=20)  # doctest: +SKIP
    """
    check_anndata(adata)
    k = check_int(n_neighbors, "n_neighbors")
    key = check_str(key, "key")
    key_added = check_str(key_added, "key_added", optional=True)
    if not check_bool(copy, "copy"):
        check_writable(adata, "adata")
    v = loadings_of(adata, key)
    if k >= adata.n_vars:
        raise InputError(
            f"`n_neighbors={k}` must be smaller than the number of genes ({adata.n_vars})."
        )
    key_added = key_added or f"{key}_neighbors"
    dist, ind = NearestNeighbors(n_neighbors=k + 1).fit(v).kneighbors(v)
    # drop each gene itself (it may not sit in column 0 when loadings coincide)
    rows = []
    for i in range(len(v)):
        keep = ind[i] != i
        rows.append((ind[i][keep][:k], dist[i][keep][:k]))
    nbr = np.vstack([r[0] for r in rows])
    d = np.vstack([r[1] for r in rows])
    n = adata.n_vars
    graph = sparse.csr_matrix((d.ravel(), (np.repeat(np.arange(n), k), nbr.ravel())), shape=(n, n))
    names = adata.var_names.to_numpy()
    table = pd.DataFrame(
        {
            "gene": np.repeat(names, k),
            "neighbor": names[nbr.ravel()],
            "rank": np.tile(np.arange(1, k + 1), n),
            "distance": d.ravel(),
        }
    )
    target = adata.copy() if copy else adata
    target.varp[f"{key_added}_distances"] = graph
    target.uns[key_added] = {"params": {"n_neighbors": k, "key": key, "metric": "euclidean"}}
    logg.info(f"    added varp['{key_added}_distances'] ({k} neighbours per gene)")
    return (target, table) if copy else table
