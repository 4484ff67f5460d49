"""siVAE tools: decoder attributions (vectorised vs captum), network similarity, k-NN metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from anndata import AnnData

import multiviz as mv
from multiviz import InputError


@pytest.fixture(scope="module")
def tiny_model():
    torch.set_num_threads(1)
    adata = mv.datasets.simulate_gene_network(
        n_cells=300, n_communities=2, community_size=10, n_isolated=5
    )
    model = mv.tl.sivae(
        adata,
        n_latent=3,
        n_hidden=(16, 8),
        max_epochs=5,
        pretrain_epochs=5,
        feature_pretrain_epochs=5,
        return_model=True,
    )
    return adata, model


@pytest.mark.parametrize("method", ["saliency", "grad_x_input", "integrated_gradients", "deeplift"])
def test_vectorised_attributions_equal_captum(tiny_model, method):
    pytest.importorskip("captum")
    from multiviz.tl._decoder_attribution import _captum_attributions, per_cell_attributions

    _, model = tiny_model
    z = torch.as_tensor(model.get_latent_representation()[:20])
    ours = per_cell_attributions(model, z, None, method, n_steps=20)
    ref = _captum_attributions(model, z, None, method, n_steps=20)
    assert ours.shape == (20, model.module.n_input, 3)
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-3, atol=1e-5)


def test_decoder_attribution_summary_is_first_pc(tiny_model):
    from sklearn.decomposition import PCA

    from multiviz.tl._decoder_attribution import per_cell_attributions

    adata, model = tiny_model
    u = mv.tl.decoder_attribution(adata, model=model, method="grad_x_input", n_cells=100)
    assert u.shape == (adata.n_vars, 3) and "sivae_attribution_grad_x_input" in adata.varm
    idx = np.sort(np.random.default_rng(0).choice(adata.n_obs, 100, replace=False))
    z = torch.as_tensor(model.get_latent_representation(indices=idx))
    s = per_cell_attributions(model, z, None, "grad_x_input").numpy()
    for d in range(3):
        pc = PCA(n_components=1).fit(s[:, :, d]).components_[0]
        assert abs(abs(np.dot(pc, u.iloc[:, d])) - 1) < 1e-4
    with pytest.raises(InputError, match="method"):
        mv.tl.decoder_attribution(model, method="shap")
    with pytest.raises(InputError, match="trained model"):
        mv.tl.decoder_attribution(adata)


def _sample_with_communities(partition, rng, n_genes=60, noise=0.15):
    centers = rng.normal(size=(partition.max() + 1, 8)) * 2
    v = centers[partition] + noise * rng.normal(size=(n_genes, 8))
    ad = AnnData(np.zeros((2, n_genes), dtype=np.float32))
    ad.var_names = [f"g{i}" for i in range(n_genes)]
    ad.varm["sivae_loadings"] = v
    return ad


@pytest.mark.parametrize(
    ("graph", "node_labels", "sizes_b", "permute"),
    [("percentile", "degree", 20, False), ("knn", "gene", 10, True)],
)
def test_network_similarity_groups_samples_by_network(graph, node_labels, sizes_b, permute):
    pytest.importorskip("grakel")
    rng = np.random.default_rng(0)
    part_a = np.repeat(np.arange(6), 10)
    part_b = np.repeat(np.arange(60 // sizes_b), sizes_b)
    if permute:
        part_b = rng.permutation(part_b)
    samples = {f"a{i}": _sample_with_communities(part_a, rng) for i in range(3)}
    samples.update({f"b{i}": _sample_with_communities(part_b, rng) for i in range(3)})
    res = mv.tl.network_similarity(
        samples, graph=graph, percentile=10, n_neighbors=9, node_labels=node_labels
    )
    k = res["kernel"].to_numpy()
    np.testing.assert_allclose(np.diag(k), 1.0)
    within = np.mean([k[i, j] for i in range(6) for j in range(6) if i != j and (i < 3) == (j < 3)])
    across = np.mean([k[i, j] for i in range(3) for j in range(3, 6)])
    assert within > across + 0.1
    pc1 = res["embedding"]["PC1"].to_numpy()
    assert len(set(np.sign(pc1[:3]))) == 1 and len(set(np.sign(pc1[3:]))) == 1
    assert np.sign(pc1[0]) != np.sign(pc1[3])


@pytest.mark.slow
def test_network_similarity_groupby_separates_planted_networks(tmp_path):
    """Four donors: two share the annotated gene modules, two have their genes shuffled."""
    pytest.importorskip("grakel")
    torch.set_num_threads(1)
    parts, rng = [], np.random.default_rng(0)
    for i, donor in enumerate(["a1", "a2", "b1", "b2"]):
        sim = mv.datasets.simulate_gene_network(
            n_cells=200, n_communities=3, community_size=6, n_isolated=0, random_state=i
        )
        x = sim.X if donor.startswith("a") else sim.X[:, rng.permutation(sim.n_vars)]
        ad = AnnData(x, var=sim.var[["community"]].astype(str))
        ad.obs["donor"] = donor
        parts.append(ad)
    adata = ad_concat(parts)
    res = mv.tl.network_similarity(
        adata,
        groupby="donor",
        graph="knn",
        n_neighbors=5,  # a module of 6 genes becomes a clique when its loadings cluster
        node_labels="community",  # the planted annotation, true only for a1 and a2
        n_iter=1,
        sivae_kwargs={
            "n_latent": 4,
            "n_hidden": (32, 16),
            "max_epochs": 40,
            "batch_size": 32,
            "lr": 3e-3,
        },
    )
    k = res["kernel"].loc[["a1", "a2", "b1", "b2"], ["a1", "a2", "b1", "b2"]].to_numpy()
    # measured: a1-a2 0.79, every a-b pair 0.70-0.72 (iteration 0 is identical for all)
    assert k[0, 1] > max(k[0, 2], k[0, 3], k[1, 2], k[1, 3]) + 0.03
    assert "X_sivae" not in adata.obsm  # fitted on per-sample copies
    import mudata as md

    md.MuData({"rna": adata}).write_h5mu(tmp_path / "n.h5mu")
    back = md.read_h5mu(tmp_path / "n.h5mu")["rna"].uns["sivae_network_similarity"]
    np.testing.assert_allclose(back["kernel"], res["kernel"].to_numpy())
    with pytest.raises(InputError, match="groupby"):
        mv.tl.network_similarity(adata)


def ad_concat(parts):
    import anndata as ad

    out = ad.concat(parts, merge="same")
    out.obs_names_make_unique()
    return out


def test_knn_accuracy_matches_sklearn():
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 2)), rng.integers(0, 3, 200)
    x[:, 0] += y
    acc = mv.metrics.knn_accuracy(x[:150], y[:150], x[150:], y[150:], n_neighbors=15)
    pred = KNeighborsClassifier(15).fit(x[:150], y[:150]).predict(x[150:])
    assert acc == pytest.approx(balanced_accuracy_score(y[150:], pred))
    labels = np.repeat([0, 1], 10)
    pts = np.r_[np.zeros((10, 2)), np.ones((10, 2)) * 10] + rng.normal(size=(20, 2)) * 0.1
    assert mv.metrics.knn_purity(pts, labels, n_neighbors=5) == 1.0
    with pytest.raises(InputError, match="n_neighbors"):
        mv.metrics.knn_purity(pts, labels, n_neighbors=20)


def test_gene_neighbors_requires_sivae():
    ad = AnnData(np.zeros((3, 4), dtype=np.float32))
    with pytest.raises(InputError, match="run `mv.tl.sivae"):
        mv.tl.gene_neighbors(ad)
    assert not ad.varp


def test_centrality_table_sorted():
    ad = AnnData(np.zeros((2, 4), dtype=np.float32))
    ad.var["sivae_centrality"] = [0.1, 0.9, 0.5, -0.2]
    t = mv.tl.gene_centrality(ad)
    assert list(t.index) == ["1", "2", "0", "3"] and list(t["rank"]) == [1, 2, 3, 4]
    assert isinstance(t, pd.DataFrame)


def test_gene_minibatched_feature_branch_and_downsample_input():
    torch.set_num_threads(1)
    adata = mv.datasets.simulate_gene_network(
        n_cells=300, n_communities=2, community_size=10, n_isolated=5
    )
    adata.obs["type"] = np.repeat(["a", "b", "a"], 100)
    train, held_out = adata[:200].copy(), adata[200:].copy()
    r2 = {}
    for gbs in (7, None):
        ad = train.copy()
        mv.models.SIVAE.setup_anndata(ad, labels_key="type")
        model = mv.models.SIVAE(
            ad,
            n_latent=3,
            n_hidden=(32, 16),
            gene_batch_size=gbs,
            feature_input="downsample",
            n_feature_input=40,
        )
        assert model.module.gene_batch_size == gbs and model.module.n_feature_input == 40
        model.train(max_epochs=30, batch_size=32, lr=3e-3, enable_progress_bar=False)
        r2[gbs] = float(np.nanmean(model.get_gene_r2(held_out).to_numpy()))
        if gbs == 7:
            # the downsampled input comes from training cells only and keeps the type ratio
            feat = model.module.feature_input.numpy()
            x = ad.X
            cols = [
                np.flatnonzero((np.abs(x.T - feat[:, [j]]) < 1e-6).all(0))[0] for j in range(40)
            ]
            assert set(cols) <= set(model.train_indices.tolist())
            assert (ad.obs["type"].to_numpy()[cols] == "b").sum() == 20
    # on held-out cells, 7-gene minibatches of the feature branch reconstruct as well as all
    # genes per step, and both find the planted co-expression (R² of a gene from the rest)
    assert r2[None] > 0.1
    assert r2[7] >= r2[None] - 0.05


def test_plots_draw_into_given_axes(tmp_path):
    import matplotlib.pyplot as plt

    ad = AnnData(np.zeros((2, 6), dtype=np.float32))
    ad.varm["sivae_loadings"] = np.random.default_rng(0).normal(size=(6, 3))
    ad.var["community"] = pd.Categorical(["a", "a", "b", "b", "c", "c"])
    ad.var["sivae_centrality"] = np.linspace(0, 1, 6)
    fig, axes = plt.subplots(1, 2)
    out = mv.pl.loadings(ad, color="community", ax=axes[0], show=False)
    assert out is fig and len(axes[0].collections) == 3  # one scatter per community
    mv.pl.loadings(ad, color="sivae_centrality", dims=(1, 2), ax=axes[1], save=tmp_path / "l.png")
    assert (tmp_path / "l.png").exists()
    with pytest.raises(InputError, match="dims"):
        mv.pl.loadings(ad, dims=(0, 5))
    res = {
        "embedding": pd.DataFrame(
            [[0.0, 1.0], [1.0, 0.0]], index=["s1", "s2"], columns=["PC1", "PC2"]
        )
    }
    fig2 = mv.pl.network_similarity(res, color={"s1": 0.1, "s2": 0.9}, show=False)
    np.testing.assert_allclose(fig2.axes[0].collections[0].get_offsets(), [[0, 1], [1, 0]])
    plt.close("all")
