"""siVAE's map-first design and its schedule by convergence (issue 20).

Planted truth: genes are a planted 2-d programme plus noise, so the map's least-squares
description is known to be linear, and a non-linear two-cluster set whose separation the
map must keep.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from anndata import AnnData

import multiviz as mv
from multiviz import FitQualityWarning
from multiviz.models import SIVAE
from multiviz.models.sivae._convergence import convergence_plan, scvi_default_epochs

SMALL = {"n_latent": 2, "n_hidden": (32, 16)}


def _planted(n=400, g=40, seed=0):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(g, 2))
    z = rng.normal(size=(n, 2))
    x = z @ w.T + 0.5 * rng.normal(size=(n, g))
    x = (x - x.mean(0)) / x.std(0)
    return AnnData(x.astype(np.float32)), w


def test_convergence_plan_scales_with_the_data():
    small = convergence_plan(1000, 1000, batch_sizes=(128, 32, 512), has_validation=True)
    large = convergence_plan(100_000, 2000, batch_sizes=(128, 32, 512), has_validation=True)
    # step 1 never trains longer than scvi-tools' own SCVI default
    assert small[1]["max_epochs"] == scvi_default_epochs(1000) == 400
    assert large[1]["max_epochs"] == scvi_default_epochs(100_000) == 80
    # patience in epochs shrinks as epochs grow (scvi-tools' 45 at 1,000 cells)
    assert small[1]["patience"] == 45 and large[1]["patience"] == 10
    # step 1 is judged only after its KL warm-up, and never stops before warm-up + patience
    assert small[1]["warmup_epochs"] == 100 and small[1]["min_epochs"] == 145
    assert small[2]["monitor"] == "train_loss" and small[3]["monitor"] == "validation_loss"
    no_val = convergence_plan(1000, 1000, batch_sizes=(128, 32, 512), has_validation=False)
    assert {p["monitor"] for p in no_val.values()} == {"train_loss"}


def test_map_first_keeps_the_step1_map_and_fits_loadings_to_it():
    torch.set_num_threads(1)
    adata, _ = _planted()
    SIVAE.setup_anndata(adata)
    model = SIVAE(adata, random_state=0, **SMALL)
    model.train(
        max_epochs=0, pretrain_epochs=100, feature_pretrain_epochs=0, enable_progress_bar=False
    )
    z_step1 = model.get_latent_representation()
    model.train(
        max_epochs=20, pretrain_epochs=0, feature_pretrain_epochs=20, enable_progress_bar=False
    )
    np.testing.assert_array_equal(model.get_latent_representation(), z_step1)
    # the loadings rank genes as the least-squares coefficients of X on the map do
    design = np.c_[np.ones(len(z_step1)), z_step1 - z_step1.mean(0)]
    coef = np.linalg.lstsq(design, adata.X, rcond=None)[0][1:].T
    from scipy.stats import spearmanr

    load = model.get_loadings().to_numpy()
    rho = [abs(spearmanr(load[:, d], coef[:, d])[0]) for d in range(2)]
    assert min(rho) >= 0.9


def test_default_fit_records_what_stopped_each_step_and_its_loadings_hold():
    adata, w = _planted(seed=1)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mv.tl.sivae(adata, random_state=0, **SMALL)
    # (PCA is the optimum on planted linear data, so only the loadings warning is excluded)
    assert not [w for w in caught if "loadings do not describe" in str(w.message)]
    steps = adata.uns["sivae"]["steps"]
    assert list(steps) == ["cell_pretrain", "feature_pretrain", "joint"]
    for name, step in steps.items():
        assert step["epochs"] >= 1 and step["steps"] >= step["epochs"]
        assert "did not improve" in step["stopped_by"] or "maximum" in step["stopped_by"], name
    assert adata.uns["sivae"]["rho_lstsq"] >= 0.9
    assert adata.uns["sivae"]["params"]["design"] == "map_first"


def test_unfaithful_loadings_warn():
    adata, _ = _planted(seed=2)
    fit = {"max_epochs": 10, "pretrain_epochs": 20, "feature_pretrain_epochs": 5}
    with pytest.warns(FitQualityWarning, match="loadings do not describe its map"):
        mv.tl.sivae(adata, design="joint", gamma=0.0, random_state=0, **SMALL, **fit)


def test_design_is_checked():
    adata, _ = _planted(n=50, g=10)
    with pytest.raises(mv.InputError, match="design"):
        mv.tl.sivae(adata, design="single", **SMALL)
