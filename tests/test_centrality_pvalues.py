"""siVAE hub significance: ``mv.tl.gene_centrality(pvalues=True)`` against planted truth."""

from __future__ import annotations

import warnings

import anndata
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from anndata import AnnData

import multiviz as mv
from multiviz import FitError, InputError
from multiviz.tl._centrality_null import empirical_pvalues, permute_genes, sivae_settings

# small fit, as the other hub tests: 500 cells, 5 hubs x 19 spokes, 100 isolated genes
# the default schedule; per-cell variance: on this 500-cell set the per-gene one ranked 4 of
# the 5 hubs first (see ``variance`` in mv.tl.sivae)
FAST = {"n_latent": 8, "n_hidden": (32, 16), "batch_size": 64, "variance": "cell"}


@pytest.fixture(scope="module")
def hubs():
    """The hub simulation fitted once, its siVAE results copied before the p-value call."""
    torch.set_num_threads(1)
    adata = mv.datasets.simulate_gene_network(
        n_cells=500, community_size=20, n_isolated=100, random_state=0
    )
    with warnings.catch_warnings():  # short schedule: below PCA, the hubs are still found
        warnings.simplefilter("ignore", mv.FitQualityWarning)
        mv.tl.sivae(adata, **FAST)
    before = {
        "obsm": adata.obsm["X_sivae"].copy(),
        "varm": adata.varm["sivae_loadings"].copy(),
        "var": adata.var[["sivae_centrality", "sivae_used"]].copy(),
        "uns": {k: v for k, v in adata.uns["sivae"].items() if k != "history"},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mv.FitQualityWarning)
        table = mv.tl.gene_centrality(adata, pvalues=True)
    return adata, table, before


def test_planted_hubs_are_significant_and_isolated_genes_are_not(hubs):
    adata, table, _ = hubs
    hub = adata.var["hub"].to_numpy()
    iso = (adata.var["community"] == "isolated").to_numpy()
    p = adata.var["sivae_centrality_pvalue"].to_numpy()
    q = adata.var["sivae_centrality_qvalue"].to_numpy()
    # measured: every hub at the resolution 1/201 = 0.005, q = 0.0098
    assert (p[hub] <= 0.05).all() and (q[hub] <= 0.1).all()
    # Isolated genes are the true negatives: no edge, no co-expression. Spokes are not:
    # they correlate with their hub (0.6) and 18 other spokes (0.36), which is what the
    # null ("no co-expression with any gene") tests, so they are significant too.
    # A calibrated test gives Binomial(100, 0.05) false positives (sd 2.2) plus the
    # null fit's own variation: 1-10 % measured over four permutation seeds, 1 % here.
    assert (p[iso] < 0.05).mean() <= 0.15
    assert (p[~hub & ~iso] < 0.05).mean() >= 0.8  # measured 1.0
    # the table: ranked, with p/q values; the resolution is 1/(n_genes + 1)
    assert list(table.columns) == ["centrality", "rank", "pvalue", "qvalue"]
    assert table["centrality"].is_monotonic_decreasing
    assert set(table.index[:5]) == set(adata.var_names[hub])
    assert p.min() == pytest.approx(1 / (adata.n_vars + 1))
    np.testing.assert_array_equal(
        table["pvalue"], adata.var.loc[table.index, "sivae_centrality_pvalue"]
    )
    null = adata.uns["sivae"]["centrality_null"]
    assert null["n_null"] == adata.n_vars and null["seconds"] > 0


def test_user_results_are_bitwise_unchanged(hubs):
    adata, _, before = hubs
    np.testing.assert_array_equal(adata.obsm["X_sivae"], before["obsm"])
    np.testing.assert_array_equal(adata.varm["sivae_loadings"], before["varm"])
    for col in before["var"]:
        np.testing.assert_array_equal(adata.var[col].to_numpy(), before["var"][col].to_numpy())
    assert adata.uns["sivae"]["params"] == before["uns"]["params"]
    assert adata.uns["sivae"]["r2_gene"] == before["uns"]["r2_gene"]
    assert "X_null" not in adata.obsm and "null_centrality" not in adata.var


def test_second_call_reuses_the_cached_null(hubs, monkeypatch):
    adata, table, _ = hubs

    def no_fit(*args, **kwargs):
        raise AssertionError("the null was refitted")

    monkeypatch.setattr(mv.tl, "sivae", no_fit)
    again = mv.tl.gene_centrality(adata, pvalues=True, n_top=10)
    np.testing.assert_array_equal(again["pvalue"], table["pvalue"].iloc[:10])
    with pytest.raises(AssertionError, match="refitted"):  # another seed is another null
        mv.tl.gene_centrality(adata, pvalues=True, random_state=1)


def test_failed_null_fit_writes_nothing(hubs, monkeypatch):
    adata = hubs[0].copy()
    del adata.uns["sivae"]["centrality_null"]
    adata.var = adata.var.drop(columns=["sivae_centrality_pvalue", "sivae_centrality_qvalue"])

    def diverged(*args, **kwargs):
        raise FitError("diverged")

    monkeypatch.setattr(mv.tl, "sivae", diverged)
    with pytest.raises(FitError):
        mv.tl.gene_centrality(adata, pvalues=True)
    assert "centrality_null" not in adata.uns["sivae"]
    assert "sivae_centrality_pvalue" not in adata.var


def test_settings_survive_h5ad(hubs, tmp_path):
    adata = hubs[0]
    adata.write_h5ad(tmp_path / "a.h5ad")
    back = anndata.read_h5ad(tmp_path / "a.h5ad")
    assert sivae_settings(back, "sivae") == sivae_settings(adata, "sivae")
    settings = sivae_settings(adata, "sivae")
    epochs = list(adata.uns["sivae"]["params"]["epochs"])  # what the convergence ran
    assert [settings[k] for k in ("pretrain_epochs", "feature_pretrain_epochs")] == epochs[:2]
    assert settings["max_epochs"] == epochs[2] and settings["n_hidden"] == (32, 16)
    assert settings["design"] == "map_first" and settings["variance"] == "cell"
    assert settings["layer"] is None and settings["batch_key"] is None
    # the cached null reloads too: no refit
    p = mv.tl.gene_centrality(back, pvalues=True)["pvalue"]
    np.testing.assert_array_equal(p, hubs[1]["pvalue"])


@pytest.mark.filterwarnings("ignore::multiviz.FitQualityWarning")  # nothing to learn
def test_independent_genes_are_rarely_significant():
    torch.set_num_threads(1)
    rng = np.random.default_rng(3)
    adata = AnnData(rng.standard_normal((400, 80)).astype(np.float32))
    adata.var_names = [f"g{i}" for i in range(80)]
    mv.tl.sivae(adata, **{**FAST, "max_epochs": 40})
    p = mv.tl.gene_centrality(adata, pvalues=True)["pvalue"].to_numpy()
    # measured 0.07 on this size (every p uniform in expectation: genes and shadows are
    # exchangeable); 0.2 leaves room for one null fit's variation over 80 genes
    assert (p < 0.05).mean() <= 0.2


def test_permute_genes_keeps_columns_and_sparsity():
    rng = np.random.default_rng(0)
    dense = rng.standard_normal((300, 6)).astype(np.float32)
    dense[:, 1] = dense[:, 0]  # a perfectly correlated pair
    dense[rng.random(dense.shape) < 0.6] = 0
    csr = sp.csr_matrix(dense)
    groups = np.repeat([0, 1, 2], 100)
    for x in (dense, csr):
        for g in (None, groups):
            out = permute_genes(x, np.random.default_rng(1), g)
            assert type(out) is type(x) and out.dtype == x.dtype
            a = out.toarray() if sp.issparse(out) else out
            if sp.issparse(x):
                assert out.nnz == x.nnz and out.has_sorted_indices
            rows = (
                [np.arange(300)] if g is None else [np.flatnonzero(groups == k) for k in range(3)]
            )
            for r in rows:  # each column keeps its values (within each group)
                np.testing.assert_array_equal(np.sort(a[r], axis=0), np.sort(dense[r], axis=0))
            assert abs(np.corrcoef(a[:, 0], a[:, 1])[0, 1]) < 0.3  # the pair is broken
    assert not np.array_equal(permute_genes(dense, np.random.default_rng(1)), dense)


def test_empirical_pvalue_formula():
    null = np.array([0.0, 0.1, 0.2, 0.3, np.nan])
    p = empirical_pvalues(np.array([0.35, 0.2, -1.0, np.nan]), null)
    np.testing.assert_allclose(p[:3], [1 / 5, 3 / 5, 5 / 5])
    assert np.isnan(p[3])


def test_bad_input():
    adata = AnnData(np.zeros((20, 4), dtype=np.float32))
    with pytest.raises(InputError, match="run `mv.tl.sivae"):
        mv.tl.gene_centrality(adata, pvalues=True)
    adata.var["sivae_centrality"] = [0.1, 0.2, 0.3, 0.4]
    with pytest.raises(InputError, match="rerun `mv.tl.sivae"):  # no settings stored
        mv.tl.gene_centrality(adata, pvalues=True)
    adata.uns["sivae"] = {"params": {"n_latent": 2}}
    with pytest.raises(InputError, match="lacks .*'gamma'.*rerun"):
        mv.tl.gene_centrality(adata, pvalues=True)
    with pytest.raises(InputError, match="pvalues"):
        mv.tl.gene_centrality(adata, pvalues="yes")
    with pytest.raises(InputError, match="random_state"):
        mv.tl.gene_centrality(adata, pvalues=True, random_state=-1)
    with pytest.raises(InputError, match="view"):
        mv.tl.gene_centrality(adata[:10], pvalues=True)
    assert "sivae_centrality_pvalue" not in adata.var
    assert mv.tl.gene_centrality(adata)["rank"].tolist() == [1, 2, 3, 4]  # pvalues off: as before
