"""Atlas-scale data paths (issue 12): streamed minibatches give the device path's fit.

The sBNN keeps small data as dense device tensors and streams larger data from the host
(sparse CSR stays sparse; a backed AnnData stays on disk); the same seed must give the
same genes and predictions either way. The coupled autoencoder's DDP options are checked
here for their errors (the 2-process fits are in ``test_ddp.py``, marked slow).
"""

from __future__ import annotations

import mudata as md
import numpy as np
import pytest
import scipy.sparse as sp
import torch

import multiviz as mv
from multiviz import InputError
from multiviz.models import SBNN
from multiviz.models.sbnn import _data

torch.set_num_threads(1)

TINY = {"pretrain_epochs": 2, "frozen_epochs": 2, "unfrozen_epochs": 2, "pruned_epochs": 3}


@pytest.fixture(scope="module")
def sim():
    m = mv.datasets.simulate_patchseq(n_cells=300, n_genes=100, random_state=0)
    mv.pp.prepare_paired(m, x="rna", y="ephys", gene_selection="none")
    m["rna"].layers["sparse"] = sp.csr_matrix(m["rna"].layers["log2norm"])
    return m


def _fit(m, **kw):
    SBNN.setup_mudata(m, x="rna", y="ephys", layer="sparse")
    model = SBNN(m, n_latent=2, random_state=0)
    model.train(n_genes=10, enable_progress_bar=False, **TINY, **kw)
    return model


@pytest.fixture(scope="module")
def on_device(sim):
    return _fit(sim, data_on_device=True)


def test_streamed_equals_device_path(sim, on_device):
    streamed = _fit(sim, data_on_device=False)
    np.testing.assert_array_equal(
        streamed.module.gene_index.numpy(), on_device.module.gene_index.numpy()
    )
    np.testing.assert_allclose(
        streamed.predict().to_numpy(), on_device.predict().to_numpy(), rtol=0, atol=1e-5
    )
    np.testing.assert_allclose(
        streamed.phase_history_["loss"], on_device.phase_history_["loss"], rtol=1e-5
    )


def test_streamed_rows_stay_sparse():
    X = sp.random(50, 20, density=0.1, format="csr", dtype=np.float32, random_state=0)
    rows = _data.StreamedRows(X)
    assert rows.X is X  # no dense copy
    idx = torch.tensor([7, 3, 41])
    np.testing.assert_array_equal(rows.rows(idx).numpy(), X[[7, 3, 41]].toarray())
    rows.keep_columns(np.array([2, 5]))
    assert sp.issparse(rows.X) and rows.shape == (50, 2)
    np.testing.assert_array_equal(rows.rows(idx).numpy(), X[[7, 3, 41]][:, [2, 5]].toarray())


def test_threshold_picks_the_path(monkeypatch):
    X = sp.random(100, 10, density=0.1, format="csr", dtype=np.float32, random_state=0)
    assert isinstance(_data.make_rows(X, None), _data.DeviceRows)
    monkeypatch.setattr(_data, "STREAM_ABOVE", 999)
    assert isinstance(_data.make_rows(X, None), _data.StreamedRows)
    assert isinstance(_data.make_rows(X, True), _data.DeviceRows)


def test_backed_mudata_streams(sim, on_device, tmp_path):
    path = tmp_path / "sim.h5mu"
    small = md.MuData({"rna": sim["rna"].copy(), "ephys": sim["ephys"].copy()})
    small.write_h5mu(path)
    backed = md.read_h5mu(path, backed="r")
    model = _fit(backed, data_on_device=False)
    np.testing.assert_array_equal(
        model.module.gene_index.numpy(), on_device.module.gene_index.numpy()
    )
    np.testing.assert_allclose(model.r2_train_, on_device.r2_train_, atol=1e-5)


def test_bf16_mixed_trains(sim):
    model = _fit(sim, data_on_device=True, precision="bf16-mixed")
    assert np.isfinite(model.predict().to_numpy()).all()
    assert model.r2_train_ > 0


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"data_on_device": "yes"}, "data_on_device"),
        ({"precision": "16-mixed"}, "precision"),
        ({"strategy": "ddp_spawn", "devices": 2}, "strategy"),
        ({"strategy": "ddp"}, "devices"),
        ({"strategy": "fsdp"}, "strategy"),
        ({"devices": 2}, "devices"),
    ],
)
def test_sbnn_device_arguments_rejected(sim, kwargs, arg):
    SBNN.setup_mudata(sim, x="rna", y="ephys", layer="sparse")
    model = SBNN(sim, n_latent=2, random_state=0)
    with pytest.raises(InputError, match=arg):
        model.train(n_genes=10, enable_progress_bar=False, **TINY, **kwargs)
    assert not model.is_trained_


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"strategy": "ddp_spawn", "devices": 2}, "strategy"),
        ({"strategy": "ddp", "devices": 1}, "devices"),
        ({"devices": 2}, "devices"),
    ],
)
def test_coupled_device_arguments_rejected(sim, kwargs, arg):
    from multiviz.models import CoupledAutoencoder

    model = CoupledAutoencoder(sim, modalities=("rna", "ephys"), random_state=0)
    with pytest.raises(InputError, match=arg):
        model.train(max_epochs=1, steps_per_epoch=2, enable_progress_bar=False, **kwargs)


def test_zscore_per_minibatch_matches_dense_zscored_x(sim, tmp_path):
    """Sparse ``log2norm`` z-scored per minibatch == the dense z-scored ``.X`` of prepare_paired."""
    SBNN.setup_mudata(sim, x="rna", y="ephys")
    dense = SBNN(sim, n_latent=2, random_state=0)
    dense.train(n_genes=10, enable_progress_bar=False, data_on_device=True, **TINY)
    SBNN.setup_mudata(sim, x="rna", y="ephys", layer="sparse", zscore=True)
    model = SBNN(sim, n_latent=2, random_state=0)
    model.train(n_genes=10, enable_progress_bar=False, data_on_device=False, **TINY)
    np.testing.assert_array_equal(model.module.gene_index.numpy(), dense.module.gene_index.numpy())
    pred = model.predict().to_numpy()
    np.testing.assert_allclose(pred, dense.predict().to_numpy(), rtol=0, atol=1e-3)
    model.save(tmp_path / "m", save_anndata=False)
    again = SBNN.load(tmp_path / "m", adata=sim)
    np.testing.assert_allclose(again.predict().to_numpy(), pred, rtol=0, atol=1e-6)


def test_zscore_needs_the_statistics(sim):
    bare = md.MuData({"rna": sim["rna"].copy(), "ephys": sim["ephys"].copy()})
    del bare["rna"].var["zscore_std"]
    with pytest.raises(InputError, match="zscore"):
        SBNN.setup_mudata(bare, x="rna", y="ephys", layer="sparse", zscore=True)
