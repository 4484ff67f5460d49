"""Permutation null for siVAE gene centrality (``mv.tl.gene_centrality(pvalues=True)``).

One extra siVAE fit, with the settings of the user's run (``uns[key]["params"]``), on a
private AnnData holding the user's genes beside a *shadow* copy of them in which every gene
is permuted across cells independently of the others (within ``batch_key`` groups, if the
run had one). Permuting keeps each gene's distribution and breaks every gene–gene
correlation, so a shadow gene's centrality is what a gene with no co-expression reaches in
that fit. A gene's empirical p-value is the fraction of shadow genes at least as central
(pooled over genes):

    p_g = (1 + #{shadow h : c_h >= c_g}) / (1 + n_shadow)

with ``c_g`` the gene's centrality in the same fit, so that the gene and its null were
fitted with the same model capacity, the same epochs and the same overfitting. The
resolution is ``1 / (n_genes + 1)``. Benjamini–Hochberg q-values adjust over the scored
genes.

Why shadows beside the real genes, not a fit on the permuted matrix alone: on data with no
gene–gene structure siVAE's latent collapses (its KL term outweighs any direction) and every
gene's R² is ~0 (measured on the hub simulation: at most 2e-4), while a fit on structured
data leaks a little R² into genes that belong to no module (isolated genes: median 0.002,
95th percentile 0.015); against the collapsed null 80 % of the isolated genes had p < 0.05.
Beside the real genes the shadows get the same leak: 1-10 % of the isolated genes had
p < 0.05 over four permutation seeds, as a calibrated test gives (500 cells, 5 hubs with
19 spokes each, 100 isolated genes, ``n_latent=8``, 60-100 epochs;
``tests/test_centrality_pvalues.py``).

This null design (shadow genes, pooled empirical p-values) is multiviz's; degree centrality
itself is Choi & Quon (2023).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from multiviz import _logging as logg
from multiviz._ondisk import is_backed
from multiviz._validate import InputError, check_random_state
from multiviz._warnings import FitQualityWarning

__all__ = ["null_pvalues", "permute_genes"]

#: ``uns[key]["params"]`` entries the null fit needs (all written by ``mv.tl.sivae``).
REQUIRED = (
    "n_latent",
    "gamma",
    "interp_pretrain",
    "layer",
    "likelihood",
    "linear",
    "batch_key",
    "labels_key",
    "n_hidden",
    "feature_input",
    "n_feature_input",
    "epochs",
    "batch_size",
    "joint_batch_size",
    "lr",
    "train_size",
    "random_state",
)
#: Settings used when ``params`` holds them (otherwise ``mv.tl.sivae``'s defaults).
OPTIONAL = (
    "design",
    "variance",
    "weight_decay",
    "dropout_rate",
    "gene_batch_size",
    "categorical_covariate_keys",
    "continuous_covariate_keys",
)
_NULL_KEY = "centrality_null"
_SHADOW = "__shadow_"


def _none(value):
    return None if isinstance(value, str) and value == "none" else value


def sivae_settings(adata: AnnData, key: str) -> dict:
    """``mv.tl.sivae`` keyword arguments that repeat the run stored in ``uns[key]``."""
    rerun = f"rerun `mv.tl.sivae(adata, key_added={key!r})` (it stores them)."
    run = adata.uns.get(key)
    params = run.get("params") if isinstance(run, dict) else None
    if not isinstance(params, dict):
        raise InputError(
            f"`uns[{key!r}]['params']` not found: the siVAE settings are unknown; {rerun}"
        )
    missing = [name for name in REQUIRED if name not in params]
    if missing:
        raise InputError(f"`uns[{key!r}]['params']` lacks {missing}; {rerun}")
    p = {name: _none(params[name]) for name in (*REQUIRED, *OPTIONAL) if name in params}
    e1, e2, e3 = (int(v) for v in np.asarray(p.pop("epochs")).ravel())
    out = {
        "n_latent": int(p.pop("n_latent")),
        "gamma": float(p.pop("gamma")),
        "interp_pretrain": bool(p.pop("interp_pretrain")),
        "linear": bool(p.pop("linear")),
        "n_hidden": tuple(int(v) for v in np.asarray(p.pop("n_hidden")).ravel()),
        "n_feature_input": int(p.pop("n_feature_input")),
        "pretrain_epochs": e1,
        "feature_pretrain_epochs": e2,
        "max_epochs": e3,
        "batch_size": int(p.pop("batch_size")),
        "joint_batch_size": int(p.pop("joint_batch_size")),
        "lr": float(p.pop("lr")),
        "train_size": float(p.pop("train_size")),
        "random_state": int(p.pop("random_state")),
    }
    for name in ("layer", "likelihood", "batch_key", "labels_key", "feature_input"):
        value = p.pop(name)
        out[name] = None if value is None else str(value)
    for name in ("categorical_covariate_keys", "continuous_covariate_keys"):
        if name in p:
            value = p.pop(name)
            out[name] = None if value is None else [str(v) for v in np.asarray(value).ravel()]
    out.update(p)  # numeric optional settings as stored
    if out["layer"] is not None and out["layer"] not in adata.layers:
        raise InputError(
            f"The siVAE run modelled layer {out['layer']!r}, which `adata` no longer has; {rerun}"
        )
    obs_keys = _obs_keys(out)
    absent = [k for k in obs_keys if k not in adata.obs]
    if absent:
        raise InputError(
            f"The siVAE run used obs columns {absent}, which `adata` no longer has; {rerun}"
        )
    return out


def _obs_keys(settings: dict) -> list[str]:
    keys = [settings.get("batch_key"), settings.get("labels_key")]
    keys += settings.get("categorical_covariate_keys") or []
    keys += settings.get("continuous_covariate_keys") or []
    return list(dict.fromkeys(k for k in keys if k is not None))


def permute_genes(x, rng: np.random.Generator, groups: np.ndarray | None = None):
    """``x`` with every column (gene) permuted across rows (cells) independently.

    ``groups``: integer group per row; rows are permuted only within their group. A sparse
    matrix stays sparse: each column's stored entries move to distinct rows drawn uniformly
    (CSC index arithmetic, which is a uniform permutation of the column's values); the
    result has ``x``'s format and dtype.
    """
    n = x.shape[0]
    members = (
        [np.arange(n)]
        if groups is None
        else [np.flatnonzero(groups == g) for g in np.unique(groups)]
    )
    if not sparse.issparse(x):
        x = np.asarray(x)
        if groups is None:
            return rng.permuted(x, axis=0)
        out = np.empty_like(x)
        for rows in members:
            out[rows] = rng.permuted(x[rows], axis=0)
        return out
    fmt = x.format
    csc = sparse.csc_matrix(x, copy=True)
    csc.sum_duplicates()
    group_of = (
        np.zeros(n, dtype=np.int64)
        if groups is None
        else np.searchsorted(np.unique(groups), groups)
    )
    for j in range(csc.shape[1]):
        lo, hi = csc.indptr[j], csc.indptr[j + 1]
        if lo == hi:
            continue
        rows = csc.indices[lo:hi]
        new = np.empty_like(rows)
        for g, pool in enumerate(members):
            here = group_of[rows] == g
            k = int(here.sum())
            if k:
                new[here] = pool[rng.choice(pool.size, size=k, replace=False)]
        csc.indices[lo:hi] = new
    csc.has_sorted_indices = False
    csc.sort_indices()
    return csc.asformat(fmt)


def _matrix(adata: AnnData, layer: str | None):
    x = adata.layers[layer] if layer is not None else adata.X
    if is_backed(x):  # the permuted copy is built in memory (sparse stays sparse)
        x = x.to_memory() if hasattr(x, "to_memory") else x[()]
    return x


def _fit_shadow(adata: AnnData, settings: dict, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Centralities of the real genes and of their shadows in one extra fit (NaN: unscored)."""
    import multiviz.tl as tl

    layer = settings["layer"]
    x = _matrix(adata, layer)
    batch_key = settings["batch_key"]
    groups = None if batch_key is None else pd.factorize(adata.obs[batch_key])[0]
    shadow = permute_genes(x, np.random.default_rng(random_state), groups)
    both = (
        sparse.hstack([x, shadow], format=x.format)
        if sparse.issparse(x)
        else np.hstack([np.asarray(x), shadow])
    )
    n = adata.n_vars
    var = pd.DataFrame(
        index=pd.Index([*map(str, adata.var_names), *(f"{_SHADOW}{i}" for i in range(n))])
    )
    obs = adata.obs[_obs_keys(settings)].copy()
    work = (
        AnnData(X=both, obs=obs, var=var)
        if layer is None
        else AnnData(obs=obs, var=var, layers={layer: both})
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tl.sivae(work, key_added="null", **settings)
    for w in caught:  # constant-gene warnings repeat the user's run; fit health matters here
        if issubclass(w.category, FitQualityWarning):
            logg.warning(
                f"siVAE null fit for the centrality p-values: {w.message}",
                category=FitQualityWarning,
            )
    c = np.where(
        work.var["null_used"].to_numpy(dtype=bool),
        work.var["null_centrality"].to_numpy(dtype=float),
        np.nan,
    )
    return c[:n], c[n:]


def empirical_pvalues(c: np.ndarray, null: np.ndarray) -> np.ndarray:
    """``(1 + #{null >= c}) / (1 + n_null)`` per entry of ``c`` (NaN stays NaN)."""
    ref = np.sort(null[np.isfinite(null)])
    p = (1.0 + ref.size - np.searchsorted(ref, c, side="left")) / (1.0 + ref.size)
    return np.where(np.isfinite(c), p, np.nan)


def bh_qvalues(p: np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values over the finite entries of ``p`` (NaN stays NaN)."""
    from scipy.stats import false_discovery_control

    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    if ok.any():
        q[ok] = false_discovery_control(p[ok], method="bh")
    return q


def _cached(adata: AnnData, key: str, random_state: int) -> dict | None:
    run = adata.uns.get(key)
    null = run.get(_NULL_KEY) if isinstance(run, dict) else None
    if not isinstance(null, dict) or "random_state" not in null:
        return None
    real = np.asarray(null.get("centrality", []), dtype=float)
    if int(null["random_state"]) != random_state or real.shape != (adata.n_vars,):
        return None
    return null


def null_pvalues(
    adata: AnnData, key: str, random_state: int
) -> tuple[np.ndarray, np.ndarray, dict]:
    """P- and q-values per gene of ``adata`` (NaN: not scored) and the null to cache.

    Fits nothing when ``uns[key]["centrality_null"]`` holds a null of the same
    ``random_state``; writes nothing (the caller writes, once everything is computed).
    """
    random_state = check_random_state(random_state)
    null = _cached(adata, key, random_state)
    if null is None:
        settings = sivae_settings(adata, key)
        n = adata.n_vars
        start = time.perf_counter()
        with logg.timed(
            f"running siVAE null fit for the `{key}` centrality p-values ({n} genes + {n} permuted copies)"
        ):
            real, shadow = _fit_shadow(adata, settings, random_state)
        null = {
            "design": "siVAE refit on the genes plus a copy of them permuted across cells "
            "(each gene independently); p = (1 + #{shadow >= gene}) / (1 + n_shadow)",
            "random_state": random_state,
            "centrality": real,
            "shadow_centrality": shadow,
            "n_null": int(np.isfinite(shadow).sum()),
            "seconds": float(time.perf_counter() - start),
        }
    else:
        logg.info(
            f"    using the cached null in uns[{key!r}][{_NULL_KEY!r}] (random_state={random_state})"
        )
    real = np.asarray(null["centrality"], dtype=float)
    used_col = f"{key}_used"
    if used_col in adata.var:
        real = np.where(adata.var[used_col].to_numpy(dtype=bool), real, np.nan)
    p = empirical_pvalues(real, np.asarray(null["shadow_centrality"], dtype=float))
    return p, bh_qvalues(p), null
