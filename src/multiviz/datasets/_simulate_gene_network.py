"""The siVAE paper's hub-and-spoke gene co-expression simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from .._validate import InputError, check_float, check_int, check_positive_int, check_random_state


def simulate_gene_network(
    n_cells: int = 5000,
    *,
    n_communities: int = 5,
    community_size: int = 50,
    n_isolated: int = 50,
    rho: float = 0.6,
    random_state: int = 0,
) -> AnnData:
    """Gaussian expression from a gene network of hub-and-spoke communities.

    Each community has one hub connected to its other ``community_size - 1`` genes, with
    edge correlation ``rho``; spokes are connected only to their hub, communities are
    disconnected, and ``n_isolated`` genes vary independently (Choi & Quon 2023, siVAE,
    Methods: 5 communities of 50 genes, 50 isolated genes, ``rho = 0.6``, 5000 cells).
    The covariance is the star-graph Gaussian graphical model: ``corr(hub, spoke) = rho``
    and spokes are conditionally independent given their hub, so
    ``corr(spoke, spoke') = rho**2`` and the precision matrix is zero off the edges.

    Parameters
    ----------
    n_cells
        Cells to sample (paper: 5000).
    n_communities
        Number of hub-and-spoke communities (paper: 5).
    community_size
        Genes per community, hub included (paper: 50).
    n_isolated
        Independent genes (paper: 50).
    rho
        Hub–spoke correlation (paper: 0.6).
    random_state
        Seed.

    Returns
    -------
    AnnData (cells × genes, dense float32, unit variance) with ``var["community"]``
    (``"community_<k>"`` or ``"isolated"``), ``var["hub"]``, ``var["degree"]`` (edges of
    the true network), the adjacency matrix in ``varp["network"]`` and the parameters in
    ``uns["simulation"]``.

    Examples
    --------
    >>> import multiviz as mv
    >>> adata = mv.datasets.simulate_gene_network(n_cells=1000, random_state=0)
    >>> adata.shape, int(adata.var["hub"].sum())
    ((1000, 300), 5)
    """
    n_cells = check_int(n_cells, "n_cells", minimum=2)
    check_positive_int(n_communities, "n_communities")
    check_int(n_isolated, "n_isolated", minimum=0)
    if check_int(community_size, "community_size") < 2:
        raise InputError(
            f"`community_size` must be at least 2 (a hub and a spoke), got {community_size}."
        )
    check_float(rho, "rho")
    if not 0 < rho < 1:
        raise InputError(f"`rho` must lie in (0, 1), got {rho}.")
    rng = np.random.default_rng(check_random_state(random_state))

    blocks, community, hub = [], [], []
    for k in range(n_communities):
        hub_expr = rng.standard_normal(n_cells)
        noise = rng.standard_normal((n_cells, community_size - 1))
        spokes = rho * hub_expr[:, None] + np.sqrt(1 - rho**2) * noise
        blocks.append(np.column_stack([hub_expr, spokes]))
        community += [f"community_{k}"] * community_size
        hub += [True] + [False] * (community_size - 1)
    blocks.append(rng.standard_normal((n_cells, n_isolated)))
    community += ["isolated"] * n_isolated
    hub += [False] * n_isolated
    X = np.hstack(blocks).astype(np.float32)

    n_genes = X.shape[1]
    adjacency = np.zeros((n_genes, n_genes), dtype=np.float32)
    for k in range(n_communities):
        h = k * community_size
        adjacency[h, h + 1 : h + community_size] = 1
        adjacency[h + 1 : h + community_size, h] = 1
    var_names = []
    for i, (comm, is_hub) in enumerate(zip(community, hub)):
        if comm == "isolated":
            var_names.append(f"isolated_{i - n_communities * community_size}")
        else:
            k, j = divmod(i, community_size)
            var_names.append(f"c{k}_hub" if is_hub else f"c{k}_g{j}")
    var = pd.DataFrame(
        {
            "community": pd.Categorical(community),
            "hub": np.array(hub),
            "degree": adjacency.sum(axis=1).astype(int),
        },
        index=var_names,
    )
    obs = pd.DataFrame(index=[f"cell_{i}" for i in range(n_cells)])
    adata = AnnData(X, obs=obs, var=var)
    adata.varp["network"] = adjacency
    adata.uns["simulation"] = {
        "design": "hub-and-spoke (siVAE, Choi & Quon 2023)",
        "n_communities": n_communities,
        "community_size": community_size,
        "n_isolated": n_isolated,
        "rho": rho,
        "random_state": random_state,
    }
    return adata
