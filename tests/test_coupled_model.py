"""CoupledAutoencoder: partially paired data, masking, determinism, save/load, bad input."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pytest
import torch

from multiviz import InputError
from multiviz.models import CoupledAutoencoder
from multiviz.models.coupled import msv
from multiviz.models.coupled._data import dense_batch, stack_mudata

torch.set_num_threads(1)


def _planted(n=240, n_genes=30, n_feat=6, seed=0):
    """Two modalities driven by one shared 2-d factor (4 types)."""
    rng = np.random.default_rng(seed)
    types = rng.integers(0, 4, n)
    centres = np.array([[2, 0], [-2, 0], [0, 2], [0, -2]], float)
    f = centres[types] + 0.3 * rng.normal(size=(n, 2))
    xr = np.tanh(f @ rng.normal(size=(2, n_genes))) + 0.3 * rng.normal(size=(n, n_genes))
    xe = f @ rng.normal(size=(2, n_feat)) + 0.3 * rng.normal(size=(n, n_feat))
    names = np.array([f"cell{i}" for i in range(n)])
    return xr.astype(np.float32), xe.astype(np.float32), names, types


def _mdata(xr, xe, names, ephys_keep=None):
    rna = ad.AnnData(xr)
    rna.obs_names = names
    keep = np.ones(len(names), bool) if ephys_keep is None else ephys_keep
    eph = ad.AnnData(xe[keep])
    eph.obs_names = names[keep]
    return md.MuData({"rna": rna, "ephys": eph})


@pytest.fixture(scope="module")
def partial():
    xr, xe, names, types = _planted()
    keep = np.ones(len(names), bool)
    keep[::3] = False  # a third of the cells have no ephys
    return _mdata(xr, xe, names, keep), keep, types


def _small(mdata, **kw):
    kw.setdefault("hidden", (16, 16))
    return CoupledAutoencoder(mdata, random_state=kw.pop("random_state", 0), **kw)


def test_stack_pads_and_masks(partial):
    mdata, keep, _ = partial
    stack = stack_mudata(mdata, ("rna", "ephys"))
    assert stack.n_obs == mdata.n_obs == len(keep)
    np.testing.assert_array_equal(stack.obsm["presence"][:, 1], keep.astype(np.float32))
    ephys_cols = slice(30, 36)
    from scipy import sparse

    assert sparse.issparse(stack.X)  # no dense padded copy of the cells
    batch = {k: v.numpy() for k, v in dense_batch(stack).items()}
    assert np.all(batch["X"][~keep, ephys_cols] == 0)
    assert np.all(batch["observed"][~keep, ephys_cols] == 0)
    assert np.all(batch["observed"][keep] == 1)
    np.testing.assert_array_equal(batch["X"][keep, ephys_cols], mdata["ephys"].X)


def test_unpaired_cells_never_enter_the_coupling(partial):
    mdata, keep, _ = partial
    model = _small(mdata, lam=1.0)
    stack = model.adata
    module = model.module.eval()  # eval: no dropout/noise, batch norm from running stats
    batch = dense_batch(stack)
    _, _, out = module(batch)
    # equals the coupling of the paired rows alone, computed directly
    z = module.inference(batch["X"], batch["presence"])["z"]
    direct = msv(z[0][torch.as_tensor(keep)], z[1][torch.as_tensor(keep)])
    assert float(out.extra_metrics["coupling"]) == pytest.approx(float(direct), rel=1e-6)
    # scrambling the rna input of the rna-only cells leaves the coupling unchanged ...
    x2 = batch["X"].clone()
    x2[torch.as_tensor(~keep), :30] = torch.randn(int((~keep).sum()), 30) * 10
    _, _, out2 = module({**batch, "X": x2})
    assert float(out2.extra_metrics["coupling"]) == float(out.extra_metrics["coupling"])
    # ... and its gradient w.r.t. the unpaired rows is exactly zero
    x3 = batch["X"].clone().requires_grad_(True)
    z3 = module.inference(x3, batch["presence"])["z"]
    paired = batch["presence"].bool().all(1)
    module.coupling_term(z3[0], z3[1], paired).backward()
    assert torch.all(x3.grad[torch.as_tensor(~keep)] == 0)
    assert x3.grad[torch.as_tensor(keep)].abs().sum() > 0


def test_partial_training_latents_and_masks(partial):
    mdata, keep, types = partial
    model = _small(mdata, lam=1.0)
    model.train(max_epochs=4, steps_per_epoch=50, batch_size=64)
    lat = model.get_latent_representation()
    assert np.isnan(lat["ephys"][~keep]).all() and np.isfinite(lat["ephys"][keep]).all()
    assert np.isfinite(lat["rna"]).all()
    assert model.n_steps_ == 200
    # rna-only cells land among their types: nearest paired z_E neighbour has the same type
    ze, zt = lat["ephys"][keep], lat["rna"][~keep]
    d = ((zt[:, None, :] - ze[None, :, :]) ** 2).sum(-1)
    acc = np.mean(types[keep][d.argmin(1)] == types[~keep])
    assert acc > 0.8


def test_nan_values_are_masked():
    xr, xe, names, _ = _planted(n=120)
    xe_nan = xe.copy()
    xe_nan[5, 2] = np.nan
    mdata = _mdata(xr, xe_nan, names)
    model = _small(mdata)
    stack = model.adata
    col = 30 + 2
    dense = {k: v.numpy() for k, v in dense_batch(stack).items()}
    assert dense["X"][5, col] == 0 and dense["observed"][5, col] == 0
    assert dense["observed"][5].sum() == stack.n_vars - 1
    module = model.module.eval()
    batch = dense_batch(stack)
    _, gen, out = module(batch)
    # the ephys reconstruction error ignores the masked entry: changing the decoder output there
    # does not matter, and the value equals a direct masked computation
    xh = gen["x_hat"][1].detach().numpy()
    obs = dense["observed"][:, 30:]
    err = ((dense["X"][:, 30:] - xh) ** 2 * obs).sum(1) / obs.sum(1)
    assert float(out.extra_metrics["recon_1"]) == pytest.approx(err.mean(), rel=1e-5)
    model.train(max_epochs=1, steps_per_epoch=20, batch_size=64)
    assert np.isfinite(model.history["train_loss"].to_numpy(dtype=float)).all()


def test_determinism_and_save_load(tmp_path, partial):
    mdata, _, _ = partial
    lats = []
    for _ in range(2):
        model = _small(mdata, lam=1.0, random_state=3)
        model.train(max_epochs=2, steps_per_epoch=25, batch_size=64)
        lats.append(model.get_latent_representation())
    for mod in ("rna", "ephys"):
        np.testing.assert_array_equal(lats[0][mod], lats[1][mod])
    other = _small(mdata, lam=1.0, random_state=4)
    other.train(max_epochs=2, steps_per_epoch=25, batch_size=64)
    assert not np.allclose(other.get_latent_representation()["rna"], lats[0]["rna"])
    model.save(tmp_path / "cae", overwrite=True, save_anndata=True)
    loaded = CoupledAutoencoder.load(tmp_path / "cae")
    for mod in ("rna", "ephys"):
        np.testing.assert_array_equal(loaded.get_latent_representation()[mod], lats[1][mod])
        np.testing.assert_array_equal(loaded.get_latent_representation(mdata)[mod], lats[1][mod])
    assert loaded.modalities == ["rna", "ephys"]


def _snapshot(mdata):
    return (
        sorted(mdata.obsm.keys()),
        sorted(mdata.uns.keys()),
        {
            m: (sorted(a.obsm.keys()), sorted(a.layers.keys()), a.X.copy())
            for m, a in mdata.mod.items()
        },
    )


def _same(a, b):
    assert a[0] == b[0] and a[1] == b[1]
    for m in a[2]:
        assert a[2][m][:2] == b[2][m][:2]
        np.testing.assert_array_equal(a[2][m][2], b[2][m][2])


def test_bad_input_errors_leave_object_untouched():
    xr, xe, names, _ = _planted(n=60)
    # no paired cells
    rna = ad.AnnData(xr[:30])
    rna.obs_names = names[:30]
    eph = ad.AnnData(xe[30:])
    eph.obs_names = names[30:]
    unpaired = md.MuData({"rna": rna, "ephys": eph})
    before = _snapshot(unpaired)
    with pytest.raises(InputError, match="share 0 cells"):
        CoupledAutoencoder(unpaired)
    _same(before, _snapshot(unpaired))
    # a single modality
    mdata = _mdata(xr, xe, names)
    before = _snapshot(mdata)
    with pytest.raises(InputError, match="at least two modalities"):
        CoupledAutoencoder(mdata, modalities=("rna",))
    with pytest.raises(InputError, match="not a modality"):
        CoupledAutoencoder(mdata, modalities=("rna", "protein"))
    with pytest.raises(InputError, match="coupling"):
        CoupledAutoencoder(mdata, coupling="cosine")
    _same(before, _snapshot(mdata))
    # a cell whose ephys row is all NaN, and infinite values
    bad = xe.copy()
    bad[4] = np.nan
    mdata = _mdata(xr, bad, names)
    before = _snapshot(mdata)
    with pytest.raises(InputError, match="no measured value"):
        CoupledAutoencoder(mdata)
    _same(before, _snapshot(mdata))
    bad = xe.copy()
    bad[1, 1] = np.inf
    mdata = _mdata(xr, bad, names)
    with pytest.raises(InputError, match="infinite"):
        CoupledAutoencoder(mdata)
    with pytest.raises(InputError, match="MuData"):
        CoupledAutoencoder(mdata["rna"])


def test_cross_modal_terms_train_decoders_only(partial):
    mdata, keep, _ = partial
    model = _small(mdata, lam=0.0, cross_modal=True)
    stack = model.adata
    module = model.module.eval()
    batch = dense_batch(stack)
    _, _, out = module(batch)
    cross = out.extra_metrics["cross_recon"]
    # direct: alpha_rna * MSE(rna | decoder_rna(z_ephys)) + alpha_ephys * MSE(ephys | decoder_ephys(z_rna))
    z = module.inference(batch["X"], batch["presence"])["z"]
    k = torch.as_tensor(keep)
    xr, xe = batch["X"][k, :30], batch["X"][k, 30:]
    expected = (
        1.0 * (xr - module.decode(z[1][k], 0)).pow(2).mean()
        + 0.1 * (xe - module.decode(z[0][k], 1)).pow(2).mean()
    )
    assert float(cross) == pytest.approx(float(expected), rel=1e-5)
    module.zero_grad()
    cross.backward()
    enc = [p.grad for arm in module.arms for p in arm.encoder.parameters()]
    dec = [p.grad for arm in module.arms for p in arm.decoder.parameters()]
    assert all(g is None or torch.all(g == 0) for g in enc)  # latent gradient stopped
    assert sum(float(g.abs().sum()) for g in dec if g is not None) > 0
