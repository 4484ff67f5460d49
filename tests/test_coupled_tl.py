"""mv.tl.coupled_autoencoder, mv.tl.cross_modal_predict, mv.tl.cca: storage, prediction, round trip."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pytest
import torch

import multiviz as mv
from multiviz import InputError

torch.set_num_threads(1)
FAST = {"max_epochs": 8, "train_kwargs": {"steps_per_epoch": 50}, "batch_size": 100}


@pytest.fixture(scope="module")
def sim():
    mdata = mv.datasets.simulate_patchseq(n_cells=400, n_genes=200, n_features=8, random_state=0)
    mv.pp.prepare_paired(mdata, n_top_genes=100)
    return mdata


@pytest.fixture(scope="module")
def held_out(sim):
    """Test cells (every 4th) keep only their ephys; their rna is held out."""
    test = np.zeros(sim.n_obs, bool)
    test[::4] = True
    names = sim.obs_names.to_numpy()
    rna = ad.AnnData(np.asarray(sim["rna"].X)[~test].copy())
    rna.obs_names = names[~test]
    rna.var_names = sim["rna"].var_names
    eph = ad.AnnData(np.asarray(sim["ephys"].X).copy())
    eph.obs_names = names
    eph.var_names = sim["ephys"].var_names
    mdata = md.MuData({"rna": rna, "ephys": eph})
    mv.tl.coupled_autoencoder(mdata, lam=1.0, random_state=0, **FAST)
    return mdata, np.asarray(sim["rna"].X)[test], test


def test_storage_of_partially_paired_run(held_out):
    mdata, _, test = held_out
    z_rna, z_e = mdata.obsm["X_cae_rna"], mdata.obsm["X_cae_ephys"]
    assert z_rna.shape == z_e.shape == (mdata.n_obs, 3)
    rows = mdata.obsmap["rna"] > 0
    assert np.isnan(z_rna[~rows]).all() and np.isfinite(z_rna[rows]).all()
    assert np.isfinite(z_e).all()
    # per-modality obsm rows are the same latents, in the modality's own order
    pos = mdata.obs_names.get_indexer(mdata["rna"].obs_names)
    np.testing.assert_array_equal(mdata["rna"].obsm["X_cae"], z_rna[pos])
    assert test.sum() == (~rows).sum()
    uns = mdata.uns["cae"]
    assert uns["params"]["lam"] == 1.0 and uns["params"]["coupling"] == "msv"
    assert uns["n_steps"] == 400
    assert len(uns["history"]["train_loss"]) == 8
    assert set(uns["decoders"]) == {"rna", "ephys"}


def test_cross_modal_prediction_beats_mean(held_out):
    mdata, truth, test = held_out
    mv.tl.cross_modal_predict(mdata, source="ephys", target="rna")
    # test cells are absent from rna: their predictions go to mdata.obsm
    pred_all = mdata.obsm["cae_from_ephys_rna"]
    assert pred_all.shape == (mdata.n_obs, mdata["rna"].n_vars)
    pred = pred_all[mdata.obs_names.get_indexer(mdata["ephys"].obs_names[test])]
    mean = mdata["rna"].X.mean(axis=0)
    r2 = mv.metrics.r2_score(truth, pred, train_mean=mean)
    assert r2 > 0.1, r2  # measured 0.20; the training-mean predictor scores 0
    assert mv.metrics.r2_score(truth, np.tile(mean, (len(truth), 1)), train_mean=mean) == 0
    # rna cells get the layer (their own ephys latent decoded)
    layer = mdata["rna"].layers["cae_from_ephys"]
    assert layer.shape == mdata["rna"].shape and np.isfinite(layer).all()


def test_h5mu_round_trip(held_out, tmp_path):
    mdata, _, _ = held_out
    mv.tl.cross_modal_predict(mdata, source="rna", target="ephys")
    path = tmp_path / "cae.h5mu"
    mdata.write_h5mu(path)
    back = md.read_h5mu(path)
    for key in ("X_cae_rna", "X_cae_ephys"):
        np.testing.assert_array_equal(back.obsm[key], mdata.obsm[key])
    np.testing.assert_array_equal(
        back["ephys"].layers["cae_from_rna"], mdata["ephys"].layers["cae_from_rna"]
    )
    # the stored decoders reproduce the predictions after reading back
    mv.tl.cross_modal_predict(back, source="rna", target="ephys", key_added="again")
    np.testing.assert_allclose(
        back["ephys"].layers["again"], mdata["ephys"].layers["cae_from_rna"], rtol=1e-5, atol=1e-6
    )


def test_tl_copy_and_bad_input(sim):
    before = (sorted(sim.obsm.keys()), sorted(sim.uns.keys()))
    with pytest.raises(InputError, match="not one of the coupled"):
        sim.uns["tmp_cae"] = {"params": {"modalities": ["rna", "ephys"]}, "decoders": {}}
        try:
            mv.tl.cross_modal_predict(sim, source="protein", target="rna", key="tmp_cae")
        finally:
            del sim.uns["tmp_cae"]
    with pytest.raises(InputError, match="run `mv.tl.coupled_autoencoder"):
        mv.tl.cross_modal_predict(sim, key="nothing")
    with pytest.raises(InputError, match="lam"):
        mv.tl.coupled_autoencoder(sim, lam=-1.0)
    with pytest.raises(InputError, match="at least two"):
        mv.tl.coupled_autoencoder(sim, modalities=("rna",))
    assert (sorted(sim.obsm.keys()), sorted(sim.uns.keys())) == before


def test_cca_baseline(sim):
    out = mv.tl.cca(sim, n_components=3, n_pcs=8, copy=True)
    assert "X_cca_rna" not in sim.obsm  # copy=True leaves the input alone
    za, zb = out.obsm["X_cca_rna"], out.obsm["X_cca_ephys"]
    # whitened: identity covariance per arm on the (fully paired) fitting cells
    np.testing.assert_allclose(np.cov(za, rowvar=False), np.eye(3), atol=1e-4)
    np.testing.assert_allclose(np.cov(zb, rowvar=False), np.eye(3), atol=1e-4)
    corr = out.uns["cca"]["correlations"]
    np.testing.assert_allclose(
        corr, [np.corrcoef(za[:, i], zb[:, i])[0, 1] for i in range(3)], rtol=1e-6
    )
    assert corr[0] > 0.5  # ephys is a function of planted driver genes
    assert np.all(np.diff(corr) <= 1e-6)
    np.testing.assert_array_equal(out["rna"].obsm["X_cca"], za)


@pytest.mark.slow
def test_m1_end_to_end(m1_path):
    """Real M1 Patch-seq: paper recipe → coupled AE (λ = 1) → cross-modal prediction."""
    mdata = md.read_h5mu(m1_path)
    mv.pp.prepare_paired(mdata, gene_selection="none")
    mv.tl.coupled_autoencoder(mdata, lam=1.0, random_state=0)
    fam = mdata.obs["rna_family"].astype(str).to_numpy()
    z_t, z_e = mdata.obsm["X_cae_rna"], mdata.obsm["X_cae_ephys"]
    half = np.arange(mdata.n_obs) % 2 == 0
    # families from z_E with a classifier fitted on z_T (in-sample latents; CV in the benchmark)
    acc = mv.metrics.cross_modal_accuracy(z_t[half], fam[half], z_e[~half], fam[~half])
    assert acc > 0.6
    mv.tl.cross_modal_predict(mdata, source="ephys", target="rna")
    pred = mdata["rna"].layers["cae_from_ephys"]
    assert mv.metrics.r2_score(np.asarray(mdata["rna"].X), pred) > 0
