"""``mv.tl.network_similarity``: compare gene networks across samples with a graph kernel.

Paper (Choi & Quon 2023, Methods "Generating cell line embeddings of the NeurDiff dataset
using siVAE and a graph kernel"): train siVAE per sample (cell line, donor), build a gene
graph from each sample's gene embedding, compare the graphs with the Weisfeiler-Lehman
kernel of GraKeL and embed the samples with PCA of the kernel.

GraKeL's Weisfeiler-Lehman kernel ignores edge weights, so each graph is thresholded:
``graph="knn"`` links every gene to its ``n_neighbors`` nearest genes (symmetrised);
``graph="percentile"`` links the pairs whose loading distance lies in the lowest
``percentile`` per cent of that sample's pairwise distances.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy.spatial.distance import pdist, squareform
from sklearn.decomposition import KernelPCA
from sklearn.neighbors import NearestNeighbors

from multiviz import _logging as logg
from multiviz._validate import (
    InputError,
    check_anndata,
    check_float,
    check_int,
    check_no_nan_labels,
    check_option,
    check_str,
    check_writable,
)

from ._gene_neighbors import loadings_of

__all__ = ["gene_graph", "network_similarity"]


def gene_graph(
    loadings: np.ndarray,
    *,
    graph: Literal["knn", "percentile"] = "percentile",
    n_neighbors: int = 10,
    percentile: float = 5.0,
) -> set[tuple[int, int]]:
    """Undirected edge set ``{(i, j), i < j}`` of a thresholded gene graph."""
    v = np.asarray(loadings, dtype=np.float64)
    edges: set[tuple[int, int]] = set()
    if graph == "knn":
        k = min(n_neighbors, len(v) - 1)
        _, ind = NearestNeighbors(n_neighbors=k + 1).fit(v).kneighbors(v)
        for i, row in enumerate(ind):
            for j in row:
                if j != i:
                    edges.add((min(i, j), max(i, j)))
    else:
        d = squareform(pdist(v))
        cut = np.percentile(d[np.triu_indices(len(v), 1)], percentile)
        ii, jj = np.nonzero(np.triu(d <= cut, 1))
        edges.update(zip(ii.tolist(), jj.tolist()))
    return edges


def _grakel():
    try:
        import grakel
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "mv.tl.network_similarity needs GraKeL: `pip install grakel` "
            "(or `pip install multiviz[networks]`)."
        ) from err
    return grakel


def _samples(data, groupby, key, sivae_kwargs) -> dict[str, AnnData]:
    """Name -> AnnData with loadings; fits siVAE per sample where loadings are missing."""
    from ._sivae import sivae

    if isinstance(data, AnnData):
        if groupby is None:
            raise InputError(
                "With a single AnnData pass `groupby=` (an obs column naming the samples)."
            )
        if not isinstance(groupby, str) or groupby not in data.obs:
            raise InputError(
                f"`groupby={groupby!r}` is not an obs column (available: {list(data.obs)})."
            )
        check_no_nan_labels(data.obs[groupby], f"groupby={groupby!r}")
        groups = data.obs[groupby].astype(str)
        samples = {g: data[(groups == g).to_numpy()].copy() for g in pd.unique(groups)}
    elif isinstance(data, Mapping):
        samples = {str(k): check_anndata(v, f"adatas[{k!r}]") for k, v in data.items()}
    elif isinstance(data, Sequence):
        samples = {f"sample_{i}": check_anndata(v, f"adatas[{i}]") for i, v in enumerate(data)}
    else:
        raise InputError("Pass a list or dict of AnnData, or one AnnData with `groupby=`.")
    if len(samples) < 2:
        raise InputError(f"At least 2 samples are needed, got {len(samples)}.")
    names = next(iter(samples.values())).var_names
    for name, ad in samples.items():
        if not ad.var_names.equals(names):
            raise InputError(
                f"Sample {name!r} has different genes; all samples need the same var_names in "
                "the same order (subset them to shared genes first)."
            )
    for name, ad in samples.items():
        if f"{key}_loadings" not in ad.varm:
            kwargs = {"n_latent": 64, **(sivae_kwargs or {}), "key_added": key}
            if isinstance(data, AnnData):
                sivae(ad, **kwargs)  # ad is already a private copy
            else:
                samples[name] = sivae(ad, copy=True, **kwargs)
            logg.info(f"    fitted siVAE for sample {name!r}")
    return samples


def _sample_graphs(
    grakel,
    samples: dict[str, AnnData],
    key: str,
    *,
    graph: str,
    n_neighbors: int,
    percentile: float,
    node_labels: str,
) -> tuple[list, dict[str, int]]:
    """One labelled GraKeL graph per sample, and each sample's number of edges."""
    graphs, n_edges = [], {}
    for name, ad in samples.items():
        edges = gene_graph(
            loadings_of(ad, key), graph=graph, n_neighbors=n_neighbors, percentile=percentile
        )
        n = ad.n_vars
        adj: dict[int, list[int]] = {i: [] for i in range(n)}
        for i, j in edges:
            adj[i].append(j)
            adj[j].append(i)
        if node_labels == "gene":
            labels = dict(enumerate(ad.var_names.astype(str)))
        elif node_labels == "degree":
            labels = {i: str(len(adj[i])) for i in range(n)}
        else:
            labels = dict(enumerate(ad.var[node_labels].astype(str)))
        graphs.append(grakel.Graph(adj, node_labels=labels))
        n_edges[name] = len(edges)
    return graphs, n_edges


def network_similarity(
    adatas_or_adata,
    *,
    groupby: str | None = None,
    key: str = "sivae",
    graph: Literal["knn", "percentile"] = "percentile",
    n_neighbors: int = 10,
    percentile: float = 5.0,
    node_labels: str = "degree",
    n_iter: int = 5,
    n_components: int = 2,
    sivae_kwargs: dict | None = None,
    key_added: str = "sivae_network_similarity",
) -> dict:
    """Weisfeiler-Lehman similarity of per-sample siVAE gene graphs and a sample embedding.

    Parameters
    ----------
    adatas_or_adata
        A list or dict of AnnData (one per sample, same genes), each with
        ``varm[f"{key}_loadings"]`` or fitted here; or one AnnData with ``groupby``.
    groupby
        ``obs`` column naming the samples when one AnnData is given (siVAE is fitted per
        sample with ``sivae_kwargs``, ``n_latent=64`` by default as in the paper).
    key
        ``key_added`` of the siVAE runs.
    graph, n_neighbors, percentile
        Thresholding of the loading distances into an unweighted graph (see module doc).
    node_labels
        Initial Weisfeiler-Lehman labels: ``"degree"`` (default; compares graph structure -
        hubs, module sizes), ``"gene"`` (gene names; after one iteration a gene matches
        across samples only when its whole neighbour set is identical, so use it with
        graphs whose modules are fully connected) or a ``var`` column (e.g. a module
        annotation).
    n_iter
        Weisfeiler-Lehman iterations (GraKeL default 5).
    n_components
        Dimensions of the sample embedding (kernel PCA of the normalised kernel).
    sivae_kwargs
        Arguments of :func:`multiviz.tl.sivae` for samples without loadings.
    key_added
        With one AnnData, results go to ``uns[key_added]``.

    Returns
    -------
    dict with ``kernel`` (samples x samples DataFrame, normalised WL kernel),
    ``embedding`` (samples x ``n_components`` DataFrame), ``n_edges`` (Series) and
    ``params``. Cells with a missing ``groupby`` label are rejected (their count is
    named), never turned into a sample of their own.

    Examples
    --------
    >>> res = mv.tl.network_similarity(adata, groupby="donor")  # doctest: +SKIP
    >>> mv.pl.network_similarity(res)  # doctest: +SKIP
    """
    check_option(graph, ["knn", "percentile"], "graph")
    n_neighbors = check_int(n_neighbors, "n_neighbors")
    n_iter = check_int(n_iter, "n_iter")
    n_components = check_int(n_components, "n_components")
    percentile = check_float(
        percentile, "percentile", low=0, high=100, low_open=True, high_open=True
    )
    key = check_str(key, "key")
    key_added = check_str(key_added, "key_added")
    check_str(node_labels, "node_labels")
    if sivae_kwargs is not None and not isinstance(sivae_kwargs, Mapping):
        raise InputError(f"`sivae_kwargs` must be a dict or None, got {sivae_kwargs!r}.")
    if isinstance(adatas_or_adata, AnnData):
        check_writable(adatas_or_adata, "adatas_or_adata")
    grakel = _grakel()
    samples = _samples(adatas_or_adata, groupby, key, sivae_kwargs)
    first = next(iter(samples.values()))
    if node_labels not in ("gene", "degree") and node_labels not in first.var:
        raise InputError(f"`node_labels={node_labels!r}` must be 'gene', 'degree' or a var column.")
    graphs, n_edges = _sample_graphs(
        grakel,
        samples,
        key,
        graph=graph,
        n_neighbors=n_neighbors,
        percentile=percentile,
        node_labels=node_labels,
    )
    with logg.timed(f"Weisfeiler-Lehman kernel of {len(graphs)} gene graphs"):
        wl = grakel.kernels.WeisfeilerLehman(
            n_iter=n_iter, base_graph_kernel=grakel.kernels.VertexHistogram, normalize=True
        )
        kernel = np.asarray(wl.fit_transform(graphs), dtype=np.float64)
    names = list(samples)
    n_comp = min(n_components, len(names))
    emb = KernelPCA(n_components=n_comp, kernel="precomputed").fit_transform(kernel)
    result = {
        "kernel": pd.DataFrame(kernel, index=names, columns=names),
        "embedding": pd.DataFrame(emb, index=names, columns=[f"PC{i + 1}" for i in range(n_comp)]),
        "n_edges": pd.Series(n_edges),
        "params": {
            "graph": graph,
            "n_neighbors": n_neighbors,
            "percentile": float(percentile),
            "node_labels": node_labels,
            "n_iter": n_iter,
            "key": key,
        },
    }
    if isinstance(adatas_or_adata, AnnData):
        adatas_or_adata.uns[key_added] = {
            "samples": np.asarray(names, dtype=str),
            "kernel": kernel,
            "embedding": emb,
            "n_edges": np.asarray([n_edges[n] for n in names]),
            "params": result["params"],
        }
        logg.info(f"    added uns['{key_added}']")
    return result
