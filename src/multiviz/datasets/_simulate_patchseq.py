"""Simulated Patch-seq data: negative-binomial counts whose planted driver genes set the ephys."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData
from mudata import MuData
from scipy import sparse

from .._mudata import quiet_update
from .._validate import (
    InputError,
    check_float,
    check_int,
    check_positive_int,
    check_random_state,
)


def _negative_binomial(rng: np.random.Generator, mean: np.ndarray, theta: float) -> np.ndarray:
    """Gamma–Poisson draws with the given mean and inverse dispersion ``theta``."""
    rate = rng.gamma(shape=theta, scale=mean / theta)
    return rng.poisson(rate)


def simulate_patchseq(
    n_cells: int = 1000,
    n_genes: int = 500,
    *,
    n_features: int = 8,
    n_drivers: int = 10,
    n_types: int = 6,
    n_latent: int = 2,
    marker_fraction: float = 0.3,
    theta: float = 10.0,
    noise: float = 0.1,
    random_state: int = 0,
) -> MuData:
    """Paired RNA counts and ephys features with planted driver genes.

    Generative model:

    - each cell belongs to one of ``n_types`` types and has a continuous latent state
      ``u`` (``n_latent``-d) drawn around its type's centre (types sit on a circle), so
      ``u`` varies both between and within types;
    - ``n_drivers`` driver genes have log-means linear in ``u``; a ``marker_fraction`` of
      the other genes have type-specific log-fold changes (markers); the rest are noise;
    - counts are negative binomial (inverse dispersion ``theta``) around the log-means
      scaled by a log-normal library size;
    - each ephys feature is a smooth non-linear function (``tanh`` units and their squares)
      of the drivers' log-means, plus Gaussian noise of ``noise`` × its SD.

    Only the drivers carry the within-type part of ``u``, so a sparse model that predicts
    the ephys well must select them; ``var["driver"]`` is the ground truth.

    Parameters
    ----------
    n_cells, n_genes
        Size of the RNA modality.
    n_features
        Ephys features.
    n_drivers
        Planted driver genes (must be < ``n_genes``).
    n_types
        Cell types (``obs["cell_type"]``).
    n_latent
        Dimension of the latent state behind the drivers (at least 2: types sit on a circle).
    marker_fraction
        Fraction of non-driver genes with type-specific expression.
    theta
        Negative-binomial inverse dispersion.
    noise
        Ephys noise as a fraction of each feature's SD.
    random_state
        Seed.

    Returns
    -------
    MuData with ``"rna"`` (raw counts, int32 CSR; ``var["driver"]``, ``var["marker"]``) and
    ``"ephys"`` (float32), ``obs["cell_type"]``, the true latent in ``obsm["latent_truth"]``
    and the parameters in ``uns["simulation"]``.

    Examples
    --------
    >>> import multiviz as mv
    >>> mdata = mv.datasets.simulate_patchseq(n_cells=500, n_genes=300, random_state=0)
    >>> mdata["rna"].shape, mdata["ephys"].shape
    ((500, 300), (500, 8))
    >>> len(mdata.uns["simulation"]["drivers"])  # the planted ground truth
    10
    """
    n_cells, n_genes, n_latent, n_drivers, marker_fraction, theta, noise = _check_args(
        n_cells, n_genes, n_features, n_types, n_latent, n_drivers, marker_fraction, theta, noise
    )
    rng = np.random.default_rng(check_random_state(random_state))

    angles = 2 * np.pi * np.arange(n_types) / n_types
    centres = np.zeros((n_types, n_latent))
    centres[:, 0], centres[:, 1 % n_latent] = 1.5 * np.cos(angles), 1.5 * np.sin(angles)
    cell_type = rng.integers(n_types, size=n_cells)
    latent = centres[cell_type] + 0.7 * rng.standard_normal((n_cells, n_latent))

    driver_idx = np.sort(rng.choice(n_genes, size=n_drivers, replace=False))
    is_driver = np.zeros(n_genes, dtype=bool)
    is_driver[driver_idx] = True
    others = np.flatnonzero(~is_driver)
    is_marker = np.zeros(n_genes, dtype=bool)
    is_marker[rng.choice(others, size=int(marker_fraction * others.size), replace=False)] = True

    base = rng.normal(1.0, 1.5, size=n_genes)
    log_mean = np.tile(base, (n_cells, 1))
    type_effect = rng.normal(0.0, 2.0, size=(n_types, n_genes)) * is_marker
    log_mean += type_effect[cell_type]
    loadings = rng.normal(0.0, 1.0, size=(n_latent, n_drivers))
    loadings /= np.linalg.norm(loadings, axis=0, keepdims=True)
    log_mean[:, driver_idx] = 2.0 + 1.5 * latent @ loadings

    library = np.exp(rng.normal(0.0, 0.3, size=n_cells))
    counts = _negative_binomial(rng, library[:, None] * np.exp(log_mean), theta).astype(np.int32)
    ephys = _ephys_features(rng, log_mean[:, driver_idx], n_features, noise)

    gene_names = [f"driver_{i}" if d else f"gene_{i}" for i, d in enumerate(is_driver)]
    mdata = _as_mudata(counts, ephys, gene_names, is_driver, is_marker, cell_type, n_types)
    mdata.obsm["latent_truth"] = latent.astype(np.float32)
    mdata.uns["simulation"] = {
        "design": "NB counts; drivers linear in a latent state; ephys non-linear in drivers",
        "drivers": [gene_names[i] for i in driver_idx],
        "n_types": n_types,
        "n_latent": n_latent,
        "theta": theta,
        "noise": noise,
        "random_state": random_state,
    }
    return mdata


def _check_args(
    n_cells: int,
    n_genes: int,
    n_features: int,
    n_types: int,
    n_latent: int,
    n_drivers: int,
    marker_fraction: float,
    theta: float,
    noise: float,
) -> tuple[int, int, int, int, float, float, float]:
    """The sizes and rates of :func:`simulate_patchseq`, checked."""
    n_cells = check_int(n_cells, "n_cells", minimum=4)
    n_genes = check_int(n_genes, "n_genes", minimum=2)
    check_positive_int(n_features, "n_features")
    check_positive_int(n_types, "n_types")
    n_latent = check_int(n_latent, "n_latent", minimum=2)
    n_drivers = check_positive_int(n_drivers, "n_drivers")
    marker_fraction = check_float(marker_fraction, "marker_fraction", low=0, high=1)
    theta = check_float(theta, "theta", low=0, low_open=True)
    noise = check_float(noise, "noise", low=0)
    if n_drivers >= n_genes:
        raise InputError(f"`n_drivers={n_drivers}` must be smaller than `n_genes={n_genes}`.")
    return n_cells, n_genes, n_latent, n_drivers, marker_fraction, theta, noise


def _ephys_features(
    rng: np.random.Generator, drivers: np.ndarray, n_features: int, noise: float
) -> np.ndarray:
    """Ephys features: ``tanh`` units of the drivers' log-means and their squares, plus noise."""
    n_drivers = drivers.shape[1]
    drivers = (drivers - drivers.mean(axis=0)) / drivers.std(axis=0)
    n_hidden = 4
    w_in = rng.normal(0.0, 1.0 / np.sqrt(n_drivers), size=(n_drivers, n_hidden))
    hidden = np.tanh(1.5 * drivers @ w_in)
    basis = np.hstack([hidden, hidden**2 - (hidden**2).mean(axis=0)])
    w_out = rng.normal(0.0, 1.0, size=(basis.shape[1], n_features))
    ephys = basis @ w_out
    ephys += noise * ephys.std(axis=0) * rng.standard_normal(ephys.shape)
    return ephys * rng.uniform(0.5, 20.0, size=n_features) + rng.uniform(-50, 50, size=n_features)


def _as_mudata(
    counts: np.ndarray,
    ephys: np.ndarray,
    gene_names: list[str],
    is_driver: np.ndarray,
    is_marker: np.ndarray,
    cell_type: np.ndarray,
    n_types: int,
) -> MuData:
    """``"rna"`` (CSR counts, ``var["driver"]``, ``var["marker"]``), ``"ephys"`` and the types."""
    n_cells, n_features = ephys.shape
    obs_names = [f"cell_{i}" for i in range(n_cells)]
    types = pd.Categorical(
        [f"type_{k}" for k in cell_type], categories=[f"type_{k}" for k in range(n_types)]
    )
    rna = AnnData(
        sparse.csr_matrix(counts),
        obs=pd.DataFrame(index=obs_names),
        var=pd.DataFrame({"driver": is_driver, "marker": is_marker}, index=gene_names),
    )
    ephys_adata = AnnData(
        ephys.astype(np.float32),
        obs=pd.DataFrame(index=obs_names),
        var=pd.DataFrame(index=[f"feature_{j}" for j in range(n_features)]),
    )
    with quiet_update():
        mdata = MuData({"rna": rna, "ephys": ephys_adata})
    mdata.obs["cell_type"] = types
    return mdata
