"""Cross-modal prediction of the coupled autoencoder for cells that lack a modality (issue 21).

Planted truth: RNA and ephys are both non-linear functions of one shared 2-d latent; 30 %
of the cells have no ephys. The default fit (full cross-modal terms) must predict their
ephys from their RNA better than its linear twin, a regression on a PC-CCA latent of the
same size fitted on the paired cells. A planted pure-noise feature is named in a warning.
"""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression

import multiviz as mv
from multiviz import InputError
from multiviz.models import CoupledAutoencoder
from multiviz.tl._cca import PCCCA

torch.set_num_threads(1)
N_LATENT = 2
FIT = {
    "n_latent": N_LATENT,
    "random_state": 0,
    "max_epochs": 20,
    "batch_size": 100,
    "model_kwargs": {"hidden": (32, 32)},
    "train_kwargs": {"steps_per_epoch": 50, "train_size": 1.0},
}


def _shared_latent(n: int = 400, n_genes: int = 40, n_feat: int = 8, seed: int = 0):
    """RNA and ephys from one shared 2-d latent through different non-linear maps.

    RNA saturates (tanh), ephys oscillates (sin): a linear map of the RNA cannot recover
    the ephys, a decoder of the shared latent can. 30 % of the cells lack ephys.
    """
    rng = np.random.default_rng(seed)
    f = rng.uniform(-2, 2, size=(n, 2))
    xr = np.tanh(f @ rng.normal(size=(2, n_genes))) + 0.3 * rng.normal(size=(n, n_genes))
    xe = np.sin(1.5 * f @ rng.normal(size=(2, n_feat))) + 0.2 * rng.normal(size=(n, n_feat))
    xr, xe = ((x - x.mean(0)) / x.std(0) for x in (xr, xe))
    names = np.array([f"cell{i}" for i in range(n)])
    hidden = np.zeros(n, bool)
    hidden[rng.choice(n, int(0.3 * n), replace=False)] = True
    return xr.astype(np.float32), xe.astype(np.float32), names, hidden


def _partial(xr, xe, names, hidden) -> md.MuData:
    rna, eph = ad.AnnData(xr), ad.AnnData(xe[~hidden])
    rna.obs_names, eph.obs_names = names, names[~hidden]
    return md.MuData({"rna": rna, "ephys": eph})


def _r2(y, pred, mean) -> float:
    return float(1 - ((y - pred) ** 2).sum() / ((y - mean) ** 2).sum())


def _cca_r2(xr, xe, hidden) -> float:
    """The linear twin: regression of ephys on the RNA arm's PC-CCA latent (same size)."""
    cca = PCCCA(N_LATENT, (20, xe.shape[1])).fit(xr[~hidden], xe[~hidden])
    z = cca.transform(xr, 0)
    reg = LinearRegression().fit(z[~hidden], xe[~hidden])
    return _r2(xe[hidden], reg.predict(z[hidden]), xe[~hidden].mean(0))


def _coupled_r2(xr, xe, names, hidden, **kw) -> float:
    m = _partial(xr, xe, names, hidden)
    mv.tl.coupled_autoencoder(m, **{**FIT, **kw})
    mv.tl.cross_modal_predict(m, source="rna", target="ephys")
    pred = np.asarray(m.obsm["cae_from_rna_ephys"])  # all cells, those without ephys too
    rows = m.obs_names.get_indexer(names)
    return _r2(xe[hidden], pred[rows][hidden], xe[~hidden].mean(0))


def test_unpaired_cells_predicted_better_than_pc_cca():
    xr, xe, names, hidden = _shared_latent()
    cca = _cca_r2(xr, xe, hidden)
    coupled = _coupled_r2(xr, xe, names, hidden)  # measured: 0.65 vs 0.41
    assert coupled > cca + 0.02, (coupled, cca)


def test_cross_modal_modes_and_their_defaults():
    xr, xe, names, hidden = _shared_latent(n=60)
    m = _partial(xr, xe, names, hidden)
    drop = {}
    for mode in ("full", "decoder", "off", True, False):
        model = CoupledAutoencoder(m, cross_modal=mode, hidden=(8,))
        drop[mode] = model.module.arms[0].dropout.p
        assert model.module.cross_modal == {True: "decoder", False: "off"}.get(mode, mode)
    assert drop["full"] == 0.8 and drop["decoder"] == drop["off"] == 0.5  # paper's 0.5
    assert CoupledAutoencoder(m, hidden=(8,)).module.cross_modal == "full"
    with pytest.raises(InputError, match="cross_modal"):
        CoupledAutoencoder(m, cross_modal="both")
    with pytest.raises(InputError, match="cross_modal"):
        mv.tl.coupled_autoencoder(m, cross_modal="both")


def test_full_cross_modal_terms_reach_the_encoders():
    xr, xe, names, hidden = _shared_latent(n=60)
    model = CoupledAutoencoder(_partial(xr, xe, names, hidden), lam=0.0, hidden=(8,))
    from multiviz.models.coupled._data import dense_batch

    module = model.module.eval()
    _, _, out = module(dense_batch(model.adata))
    module.zero_grad()
    out.extra_metrics["cross_recon"].backward()
    grads = [p.grad for arm in module.arms for p in arm.encoder.parameters()]
    assert all(g is not None and float(g.abs().sum()) > 0 for g in grads)


def test_noise_feature_named_by_the_default_fit():
    xr, xe, names, _ = _shared_latent(n=300)
    xe = xe.copy()
    xe[:, 0] = np.random.default_rng(5).standard_normal(len(names))  # feature 0: pure noise
    m = _partial(xr, xe, names, np.zeros(len(names), bool))
    noise = str(m["ephys"].var_names[0])
    fit = {**FIT, "max_epochs": 10, "train_kwargs": {"steps_per_epoch": 40}}
    with pytest.warns(mv.FitQualityWarning, match="worse than their mean by rna->ephys") as rec:
        mv.tl.coupled_autoencoder(m, **fit)
    message = next(
        str(w.message) for w in rec if "worse than their mean by rna->ephys" in str(w.message)
    )
    assert f"{noise} " in message
    per_feature = m.uns["cae"]["r2_heldout_cross_modal_per_feature"]["rna->ephys"]
    assert per_feature[noise] <= 0
    with pytest.warns(mv.FitQualityWarning, match=noise):
        mv.tl.cross_modal_predict(m, source="rna", target="ephys")
