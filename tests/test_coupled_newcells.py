"""New cells into a trained coupled autoencoder / PC-CCA; return_model; load onto a MuData.

Projecting the training cells through the new-data path reproduces the stored latents
exactly; genes are matched by name (order and extra genes do not matter, a missing gene
is a clear error); held-out cells get the latents and predictions of the CV path.
"""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pytest
import scvi
import torch

import multiviz as mv
from multiviz import InputError
from multiviz.models import CoupledAutoencoder
from multiviz.tl._cca import cca_project

torch.set_num_threads(1)
FAST = {"max_epochs": 6, "train_kwargs": {"steps_per_epoch": 25}, "batch_size": 64}


def _planted(n=200, n_genes=40, n_feat=6, seed=0):
    """Both modalities driven by one shared 2-d factor with 4 cell types."""
    rng = np.random.default_rng(seed)
    types = rng.integers(0, 4, n)
    centres = np.array([[2, 0], [-2, 0], [0, 2], [0, -2]], float)
    f = centres[types] + 0.3 * rng.normal(size=(n, 2))
    xr = np.tanh(f @ rng.normal(size=(2, n_genes))) + 0.3 * rng.normal(size=(n, n_genes))
    xe = f @ rng.normal(size=(2, n_feat)) + 0.3 * rng.normal(size=(n, n_feat))
    xr, xe = ((x - x.mean(0)) / x.std(0) for x in (xr, xe))
    return xr.astype(np.float32), xe.astype(np.float32), types


def _mdata(xr, xe, names, genes=None):
    rna, eph = ad.AnnData(xr), ad.AnnData(xe)
    rna.obs_names = eph.obs_names = names
    rna.var_names = genes if genes is not None else [f"g{i}" for i in range(xr.shape[1])]
    eph.var_names = [f"e{i}" for i in range(xe.shape[1])]
    return md.MuData({"rna": rna, "ephys": eph})


@pytest.fixture(scope="module")
def trained():
    xr, xe, types = _planted()
    names = np.array([f"c{i}" for i in range(len(types))])
    train = np.arange(len(types)) % 5 != 0
    mdata = _mdata(xr[train], xe[train], names[train])
    torch_state = torch.random.get_rng_state()
    seed_before = scvi.settings.seed
    model = mv.tl.coupled_autoencoder(mdata, lam=1.0, return_model=True, **FAST)
    # no global seeding side effect
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    assert scvi.settings.seed == seed_before
    return mdata, model, (xr, xe, types, names, train)


def test_return_model_writes_only_serialisable_results(trained, tmp_path):
    mdata, model, _ = trained
    assert isinstance(model, CoupledAutoencoder)
    assert "model" not in mdata.uns["cae"]
    mdata.write_h5mu(tmp_path / "x.h5mu")  # would fail on an object in uns
    assert md.read_h5mu(tmp_path / "x.h5mu").uns["cae"]["n_steps"] == 150


def test_training_cells_reproduce_stored_latent_exactly(trained):
    mdata, model, (xr, xe, _, names, train) = trained
    z = model.get_latent_representation(adata=mdata)
    np.testing.assert_array_equal(z["rna"], mdata.obsm["X_cae_rna"])
    np.testing.assert_array_equal(z["ephys"], mdata.obsm["X_cae_ephys"])
    # genes in another order plus an extra gene: matched by name, same latents
    perm = np.random.default_rng(1).permutation(xr.shape[1])
    genes = np.array([f"g{i}" for i in range(xr.shape[1])])
    extra = np.hstack([xr[train][:, perm], np.ones((train.sum(), 1), np.float32)])
    shuffled = _mdata(extra, xe[train], names[train], genes=[*genes[perm], "extra"])
    z2 = model.get_latent_representation(shuffled)
    np.testing.assert_array_equal(z2["rna"], z["rna"])


def test_held_out_cells_and_missing_gene(trained):
    mdata, model, (xr, xe, types, names, train) = trained
    new = _mdata(xr[~train], xe[~train], names[~train])
    z = model.get_latent_representation(new)
    assert z["rna"].shape == (int((~train).sum()), 3) and np.isfinite(z["rna"]).all()
    # predictions of the new-data path equal decoding its latents (the CV path)
    pred = model.predict(new, source="ephys", target="rna")
    np.testing.assert_array_equal(pred, model.decode(z["ephys"], "rna"))
    # held-out cells land among their types: QDA fitted on training z_t, scored on new z_e
    acc = mv.metrics.cross_modal_accuracy(
        mdata.obsm["X_cae_rna"], types[train], z["ephys"], types[~train]
    )
    assert acc > 0.7
    # new cells may lack a modality entirely
    eph_only = md.MuData({"ephys": new["ephys"].copy(), "rna": new["rna"][:0].copy()})
    z_e = model.get_latent_representation(eph_only)["ephys"]
    np.testing.assert_array_equal(z_e, z["ephys"])
    missing = _mdata(
        xr[~train][:, 1:], xe[~train], names[~train], genes=[f"g{i}" for i in range(1, 40)]
    )
    with pytest.raises(InputError, match=r"missing.*'g0'"):
        model.get_latent_representation(missing)


def test_load_onto_users_mudata(trained, tmp_path):
    mdata, model, (xr, xe, _, names, train) = trained
    model.save(tmp_path / "cae", overwrite=True)
    user = _mdata(xr[train], xe[train], names[train])
    loaded = CoupledAutoencoder.load(tmp_path / "cae", adata=user)
    z = loaded.get_latent_representation()
    np.testing.assert_array_equal(z["rna"], mdata.obsm["X_cae_rna"])
    np.testing.assert_array_equal(z["ephys"], mdata.obsm["X_cae_ephys"])


def test_cca_projects_new_cells(trained):
    _, _, (xr, xe, types, names, train) = trained
    ref = _mdata(xr[train], xe[train], names[train])
    mv.tl.cca(ref, n_pcs=5)
    for mod in ("rna", "ephys"):
        z = cca_project(ref[mod], ref, mod)
        np.testing.assert_array_equal(z, ref[mod].obsm["X_cca"])
    new = _mdata(xr[~train], xe[~train], names[~train])
    z_new = cca_project(new["ephys"], ref, "ephys")
    W, b = ref["ephys"].varm["cca_weights"], ref.uns["cca"]["offset"]["ephys"]
    np.testing.assert_allclose(z_new, xe[~train] @ W + b, rtol=1e-5, atol=1e-5)
    acc = mv.metrics.cross_modal_accuracy(
        ref["rna"].obsm["X_cca"], types[train], z_new, types[~train]
    )
    assert acc > 0.7
    with pytest.raises(InputError, match="missing"):
        cca_project(new["rna"][:, 1:], ref, "rna")
