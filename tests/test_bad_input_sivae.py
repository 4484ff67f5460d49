"""siVAE tools on bad input: a clear error naming the argument, the object left unchanged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import torch
from _objects import assert_unchanged, snapshot
from anndata import AnnData

import multiviz as mv
from multiviz import FitError, InputError

TINY = {"n_latent": 2, "n_hidden": (8,), "max_epochs": 1}


@pytest.fixture
def adata():
    rng = np.random.default_rng(0)
    ad = AnnData(rng.normal(size=(40, 12)).astype(np.float32))
    ad.var_names = [f"g{i}" for i in range(12)]
    ad.obs["batch"] = pd.Categorical(np.repeat(["a", "b"], 20))
    ad.obs["depth"] = rng.normal(size=40)
    return ad


def _expect(obj, exc, match, fn=None, **kwargs):
    before = snapshot(obj)
    with pytest.raises(exc, match=match):
        (fn or mv.tl.sivae)(obj, **kwargs)
    assert_unchanged(obj, before)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_latent": 0}, "n_latent"),
        ({"n_latent": 2.5}, "n_latent"),
        ({"n_hidden": ()}, "n_hidden"),
        ({"n_hidden": (16, -4)}, "n_hidden"),
        ({"max_epochs": 0}, "max_epochs"),
        ({"max_epochs": -1}, "max_epochs"),
        ({"pretrain_epochs": -3}, "pretrain_epochs"),
        ({"feature_pretrain_epochs": -1}, "feature_pretrain_epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"joint_batch_size": 0}, "joint_batch_size"),
        ({"joint_batch_size": 2.5}, "joint_batch_size"),
        ({"lr": 0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"gamma": -0.1}, "gamma"),
        ({"train_size": 1.5}, "train_size"),
        ({"dropout_rate": 1.0}, "dropout_rate"),
        ({"likelihood": "poisson"}, "likelihood"),
        ({"feature_input": "umap"}, "feature_input"),
        ({"gene_batch_size": 0}, "gene_batch_size"),
        ({"random_state": None}, "random_state"),
        ({"key_added": ""}, "key_added"),
        ({"enable_progress_bar": "yes"}, "enable_progress_bar"),
        ({"early_stopping": 1}, "early_stopping"),
        ({"layer": "counts"}, "layer"),
        ({"batch_key": "nope"}, "batch_key"),
    ],
)
def test_bad_argument_names_the_argument(adata, kwargs, match):
    _expect(adata, InputError, match, **{**TINY, **kwargs})


def test_misspelt_keyword_suggests_the_right_one(adata):
    _expect(adata, InputError, "did you mean `pretrain_epochs`", pretrain_epoch=3)


def test_view_is_rejected_unless_copy(adata):
    view = adata[:30]
    _expect(view, InputError, r"view.*\.copy\(\)", **TINY)
    torch.set_num_threads(1)
    out = mv.tl.sivae(view, copy=True, **TINY)
    assert "X_sivae" in out.obsm and "X_sivae" not in adata.obsm


def test_empty_anndata(adata):
    _expect(adata[:0].copy(), InputError, "adata", **TINY)
    _expect(adata[:, :0].copy(), InputError, "genes", **TINY)


def test_duplicated_var_names(adata):
    adata.var_names = ["g0"] * 12
    _expect(adata, InputError, "var_names_make_unique", **TINY)


def test_nan_in_batch_key(adata):
    adata.obs["batch"] = adata.obs["batch"].cat.add_categories("c")
    adata.obs.loc[adata.obs_names[:3], "batch"] = np.nan
    _expect(adata, InputError, r"batch_key.*3 missing", batch_key="batch", **TINY)


def test_nan_in_continuous_covariate(adata):
    adata.obs.loc[adata.obs_names[:2], "depth"] = np.nan
    _expect(
        adata, InputError, r"continuous_covariate_keys.*2 NaN",
        continuous_covariate_keys=["depth"], **TINY,
    )  # fmt: skip


def test_nan_in_data(adata):
    adata.X[0, 0] = np.nan
    _expect(adata, InputError, "adata.X", **TINY)


def test_nb_needs_counts(adata):
    _expect(adata, InputError, "negative", likelihood="nb", **TINY)
    adata.X = sp.csr_matrix(np.abs(adata.X))
    _expect(adata, InputError, "non-integer", likelihood="nb", **TINY)


def test_all_genes_constant(adata):
    adata.X = np.zeros_like(adata.X)
    _expect(adata, InputError, "constant", **TINY)


def test_diverged_fit_raises_and_writes_nothing(adata):
    torch.set_num_threads(1)
    _expect(
        adata, FitError, r"siVAE diverged.*`lr`", n_latent=2, n_hidden=(16, 8), max_epochs=3,
        lr=1e8, batch_size=8,
    )  # fmt: skip


def test_gene_centrality_bad_n_top(adata):
    adata.var["sivae_centrality"] = np.linspace(0, 1, 12)
    _expect(adata, InputError, "n_top", fn=mv.tl.gene_centrality, n_top=-5)
    _expect(adata, InputError, "n_top", fn=mv.tl.gene_centrality, n_top=2.0)


def test_gene_neighbors_bad_arguments(adata):
    adata.varm["sivae_loadings"] = np.random.default_rng(0).normal(size=(12, 3))
    _expect(adata, InputError, "n_neighbors", fn=mv.tl.gene_neighbors, n_neighbors=0)
    _expect(adata, InputError, "n_neighbors", fn=mv.tl.gene_neighbors, n_neighbors=12)
    _expect(adata, InputError, "run `mv.tl.sivae", fn=mv.tl.gene_neighbors, key="other")
    _expect(adata[:5], InputError, "view", fn=mv.tl.gene_neighbors)


def test_network_similarity_nan_groupby_is_rejected(adata):
    pytest.importorskip("grakel")
    adata.obs["donor"] = pd.Categorical(np.repeat(["d1", "d2"], 20))
    adata.obs.loc[adata.obs_names[:4], "donor"] = np.nan
    _expect(adata, InputError, r"groupby.*4 missing", fn=mv.tl.network_similarity, groupby="donor")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_neighbors": 0}, "n_neighbors"),
        ({"percentile": 100}, "percentile"),
        ({"n_iter": -1}, "n_iter"),
        ({"n_components": 0}, "n_components"),
        ({"graph": "full"}, "graph"),
    ],
)
def test_network_similarity_bad_arguments(adata, kwargs, match):
    adata.obs["donor"] = np.repeat(["d1", "d2"], 20)
    _expect(adata, InputError, match, fn=mv.tl.network_similarity, groupby="donor", **kwargs)


def test_decoder_attribution_bad_arguments(adata):
    torch.set_num_threads(1)
    model = mv.tl.sivae(adata.copy(), return_model=True, **TINY)
    for kwargs, match in [
        ({"n_cells": 0}, "n_cells"),
        ({"n_steps": -1}, "n_steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"method": "shap"}, "method"),
    ]:
        _expect(adata, InputError, match, fn=mv.tl.decoder_attribution, model=model, **kwargs)
    _expect(adata, InputError, "trained model", fn=mv.tl.decoder_attribution)


def test_model_train_rejects_bad_schedules(adata):
    from multiviz.models import SIVAE

    SIVAE.setup_anndata(adata)
    model = SIVAE(adata, n_latent=2, n_hidden=(8,))
    for kwargs, match in [
        ({"max_epochs": -1}, "max_epochs"),
        ({"max_epochs": 0, "pretrain_epochs": 0, "feature_pretrain_epochs": 0}, "0 epochs"),
        ({"max_epochs": 2, "pretrain_epochs": 0}, "pretrain_epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"lr": -1.0}, "lr"),
    ]:
        with pytest.raises(InputError, match=match):
            model.train(**kwargs)
    assert not model.is_trained_
