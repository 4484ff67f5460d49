"""siVAE's default schedule (issue 11, item 3) and the randomised PCA of the feature input."""

from __future__ import annotations

import math
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from anndata import AnnData
from sklearn.decomposition import PCA

import multiviz as mv
from multiviz import InputError
from multiviz.models import SIVAE
from multiviz.models.sivae import _schedule as sch
from multiviz.models.sivae._convergence import convergence_plan
from multiviz.models.sivae._feature_input import build_feature_input, centred_pca_scores

TINY = {"n_hidden": (32, 16)}


def _steps_bound(name: str) -> tuple[int, int]:
    """Documented step bounds of a training step at the default minibatches."""
    if name == "feature_pretrain":
        return sch.MIN_STEPS, sch.MAX_STEPS
    if name == "joint":
        draws = sch.MAX_STEPS * sch.REFERENCE_BATCH
        return math.ceil(sch.JOINT_MIN_DRAWS / sch.JOINT_BATCH), draws // sch.JOINT_BATCH
    return sch.MIN_STEPS, sch.MAX_STEPS


@pytest.mark.parametrize("n_cells, n_genes", [(12, 3), (300, 200), (4500, 2000)])
def test_default_schedule_gives_tiny_data_the_minimum_steps(n_cells, n_genes):
    sched = sch.default_schedule(n_cells, n_genes)
    for name, part in sched.items():
        low, _ = _steps_bound(name)
        assert part["steps"] >= low, name
    assert sched["cell_pretrain"]["steps"] >= sch.REFERENCE_STEPS  # the reference code's 2,000
    assert sched["joint"]["batch_size"] == sch.JOINT_BATCH


@pytest.mark.parametrize("n_cells, n_genes", [(200_000, 30_000), (1_000_000, 20_000)])
def test_default_schedule_caps_large_data(n_cells, n_genes):
    sched = sch.default_schedule(n_cells, n_genes)
    for name, part in sched.items():
        _, high = _steps_bound(name)
        n_items = n_genes if name == "feature_pretrain" else n_cells
        per_epoch = math.ceil(n_items / part["batch_size"])
        assert part["epochs"] >= 1
        assert part["steps"] < high + per_epoch, name  # whole epochs: at most one over


def test_default_schedule_numbers_at_4500_cells():
    sched = sch.default_schedule(4500, 2000)
    assert [v["steps"] for v in sched.values()] == [2016, 2016, 126]
    assert [v["epochs"] for v in sched.values()] == [56, 32, 14]


def test_default_schedule_mid_size_trains_reference_epochs():
    part = sch.default_schedule(60_000, 2000)["cell_pretrain"]
    assert part["epochs"] == sch.EPOCHS


def test_explicit_epochs_keep_the_old_schedule():
    rng = np.random.default_rng(0)
    ad = AnnData(rng.standard_normal((60, 8)).astype(np.float32))
    SIVAE.setup_anndata(ad)
    model = SIVAE(ad, **TINY)
    assert model._resolve_epochs(4, None, None, (128, 32, 128)) == (4, 4, 4)
    assert model._resolve_epochs(4, 2, 0, (128, 32, 128)) == (2, 0, 4)
    default = model._resolve_epochs(None, 3, None, (128, 32, 512))
    assert default[0] == 3 and default[1] >= 1 and default[2] >= 1
    model.train(max_epochs=1, batch_size=16, enable_progress_bar=False)
    assert model.joint_batch_size_ == 16  # explicit schedule: joint step at `batch_size`
    with pytest.raises(InputError, match="joint_batch_size"):
        model.train(max_epochs=1, joint_batch_size=0, enable_progress_bar=False)


@pytest.mark.parametrize("design", ["map_first", "joint"])
def test_step2_gene_minibatch_follows_the_design(design):
    """Step 2 draws 128 genes a step in the map-first design, the reference's 32 in the
    paper's; the step count of a step-2 epoch shows which was used."""
    rng = np.random.default_rng(0)
    ad = AnnData(rng.standard_normal((60, 300)).astype(np.float32))
    SIVAE.setup_anndata(ad)
    model = SIVAE(ad, design=design, **TINY)
    model.train(max_epochs=1, enable_progress_bar=False)
    genes = sch.FEATURE_BATCH if design == "map_first" else sch.GENE_BATCH
    assert model.gene_batch_size_pretrain_ == genes
    assert model.steps_["feature_pretrain"]["steps"] == math.ceil(300 / genes)
    model.train(max_epochs=1, gene_batch_size_pretrain=100, enable_progress_bar=False)
    assert model.steps_["feature_pretrain"]["steps"] == 3
    with pytest.raises(InputError, match="gene_batch_size_pretrain"):
        model.train(max_epochs=1, gene_batch_size_pretrain=0, enable_progress_bar=False)


def _low_rank_sparse(n_rows, n_cols, seed=0):
    rng = np.random.default_rng(seed)
    signal = np.abs(rng.standard_normal((n_rows, 4)) @ rng.standard_normal((4, n_cols))) * 3
    mask = rng.random((n_rows, n_cols)) < 0.3
    return sp.csr_matrix(np.where(mask, signal + rng.random((n_rows, n_cols)), 0.0))


def test_randomised_pca_matches_dense_pca_up_to_sign():
    a = _low_rank_sparse(300, 400)
    k = 20
    ours = centred_pca_scores(a, k, random_state=0)
    ref = PCA(k, svd_solver="full").fit_transform(a.toarray())
    for j in range(4):  # the planted components
        corr = np.corrcoef(ours[:, j], ref[:, j])[0, 1]
        assert abs(corr) > 0.999, (j, corr)
        scale = np.abs(ref[:, j]).max()
        np.testing.assert_allclose(np.abs(ours[:, j]), np.abs(ref[:, j]), atol=0.03 * scale)
    # the same subspace: projecting the dense scores on ours keeps ~all of their norm
    q, _ = np.linalg.qr(ours[:, :4])
    kept = np.linalg.norm(q.T @ ref[:, :4]) / np.linalg.norm(ref[:, :4])
    assert kept > 0.999
    np.testing.assert_array_equal(ours, centred_pca_scores(a, k, random_state=0))


@pytest.mark.parametrize("keep", [1.0, 0.1])  # dense row blocks / scipy sparse products
def test_feature_input_dense_and_sparse_agree(keep):
    x = _low_rank_sparse(200, 150, seed=1)  # cells x genes, 30 % non-zero
    if keep < 1:
        x = x.multiply(np.random.default_rng(2).random(x.shape) < keep).tocsr()
    idx = np.arange(200)
    s = build_feature_input(x, idx, kind="pca", n_components=10)
    d = build_feature_input(x.toarray(), idx, kind="pca", n_components=10)
    np.testing.assert_allclose(s, d, rtol=1e-4, atol=1e-4)
    assert s.dtype == np.float32 and s.shape == (150, 10)
    assert float(s[:, 0].std()) == pytest.approx(1.0, rel=1e-4)  # one global rescale


def test_feature_input_never_densifies_the_sparse_matrix():
    n_cells, n_genes = 20_000, 20_000  # dense float64 would be 3.2 GB
    rng = np.random.default_rng(0)
    nnz = 80_000
    rows, cols = rng.integers(n_cells, size=nnz), rng.integers(n_genes, size=nnz)
    vals = rng.integers(1, 10, size=nnz).astype(np.float32)
    x = sp.csr_matrix((vals, (rows, cols)), shape=(n_cells, n_genes))
    tracemalloc.start()
    feat = build_feature_input(
        x, np.arange(n_cells), kind="pca", n_components=8, log_normalise=True
    )
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert feat.shape == (n_genes, 8) and np.isfinite(feat).all()
    assert peak < 200e6, f"peak {peak / 1e6:.0f} MB"


def _planted(n_cells=600, n_genes=150, seed=0):
    mdata = mv.datasets.simulate_patchseq(
        n_cells=n_cells, n_genes=n_genes, n_types=4, random_state=seed
    )
    x = mdata["rna"].X.toarray().astype(np.float64)
    lib = x.sum(1, keepdims=True)
    logx = np.log1p(x / np.maximum(lib, 1) * np.median(lib))
    logx = (logx - logx.mean(0)) / np.maximum(logx.std(0), 1e-6)
    return logx.astype(np.float32), mdata.obs["cell_type"].astype(str).to_numpy()


@pytest.mark.slow
def test_default_schedule_fit_beats_pca_on_held_out_cells():
    torch.set_num_threads(1)
    x, labels = _planted()
    tr, te = np.arange(0, 480), np.arange(480, 600)
    ad_tr, ad_te = AnnData(x[tr]), AnnData(x[te])
    with warnings.catch_warnings():
        warnings.simplefilter("error", mv.FitQualityWarning)  # no "does not beat PCA"
        model = mv.tl.sivae(ad_tr, return_model=True, enable_progress_bar=False, **TINY)
    sizes = (128, model.gene_batch_size_pretrain_, model.joint_batch_size_)
    plan = convergence_plan(
        len(model._train_idx), x.shape[1], batch_sizes=sizes, has_validation=True
    )
    assert list(model.epochs_per_phase_.values()) == [p["max_epochs"] for p in plan.values()]
    assert ad_tr.uns["sivae"]["r2_gene"] > ad_tr.uns["sivae"]["r2_pca"]
    z_tr, z_te = ad_tr.obsm["X_sivae"], model.get_latent_representation(ad_te)
    pca = PCA(2, random_state=0).fit(x[tr])
    acc = mv.metrics.knn_accuracy(z_tr, labels[tr], z_te, labels[te], n_neighbors=15)
    acc_pca = mv.metrics.knn_accuracy(
        pca.transform(x[tr]), labels[tr], pca.transform(x[te]), labels[te], n_neighbors=15
    )
    assert acc >= 0.9 and acc >= acc_pca - 0.02, (acc, acc_pca)
    # the held-out gene R² written at the fit (validation cells) estimates the R² on the
    # outer test cells, which the fit never saw
    fit = ad_tr.uns["sivae"]
    assert fit["n_heldout"] == len(model.validation_indices) > 0
    used = ad_tr.var["sivae_used"].to_numpy()
    r2_test = model._pooled_r2(None, used, adata=ad_te)
    assert abs(fit["r2_gene_heldout"] - r2_test) < 0.05, (fit["r2_gene_heldout"], r2_test)
    assert fit["r2_gene_heldout"] > ad_tr.uns["sivae"]["r2_pca"] - 0.05


def test_heldout_warning_fires_when_the_decoder_does_not_generalise():
    """Pure noise (no structure to learn): on the held-out cells the decoder is no better
    than PCA fitted on the training cells, and the fit says so with held-out numbers."""
    torch.set_num_threads(1)
    x = np.random.default_rng(0).standard_normal((150, 40)).astype(np.float32)
    ad = AnnData(x)
    with pytest.warns(mv.FitQualityWarning, match="held-out cells siVAE's reconstruction"):
        mv.tl.sivae(ad, n_hidden=(256, 128), max_epochs=150, enable_progress_bar=False)
    fit = ad.uns["sivae"]
    assert fit["n_heldout"] == 15
    assert fit["r2_gene_heldout"] < fit["r2_pca_heldout"] <= 0.0
