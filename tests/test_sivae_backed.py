"""siVAE on a backed (on-disk) ``.h5ad`` trains as on the same data in memory.

The model's own passes over the whole matrix (the count check, library sizes, the cells of
the feature-wise input) read a backed matrix in row blocks
(``multiviz.models.sivae._backed``); the minibatches come from scvi-tools' loader. The
blocks are made smaller than the data here so that several are read.

Tolerances, and why: the same trained weights give the same latent on the backed and the
in-memory object (``atol=1e-6``; measured: 0). Training on the backed object draws the
same cells into every minibatch for the same ``random_state``, but scvi-tools reads an
on-disk minibatch in sorted row order, so each cell meets a different reparameterisation
noise draw: the fits are not bit-equal. The feature-wise input is equal (``1e-5``) and the
per-epoch training loss of every step agrees within 3 % (measured: at most 1.0 %).
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest
from scipy import sparse

from multiviz._validate import InputError
from multiviz.models import SIVAE
from multiviz.models.sivae import _backed


def _counts(n: int = 300, g: int = 40, seed: int = 0) -> sparse.csr_matrix:
    """Counts of three cell groups with gene-wise log-normal means (~30 % zeros)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, 3, n)
    mean = 2.0 * np.exp(rng.normal(0.0, 1.0, (3, g)))
    return sparse.csr_matrix(rng.poisson(mean[group]).astype(np.float32))


def _fit(adata, likelihood: str) -> SIVAE:
    SIVAE.setup_anndata(adata)
    model = SIVAE(adata, n_latent=2, n_hidden=(16, 8), likelihood=likelihood, random_state=3)
    model.train(max_epochs=5, batch_size=64, enable_progress_bar=False, accelerator="cpu")
    return model


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(_backed, "ROW_CHUNK", 70)  # 300 cells: five blocks, the last partial


@pytest.mark.parametrize("likelihood", ["nb", "gaussian"])
def test_backed_h5ad_trains_like_in_memory(tmp_path, small_blocks, likelihood):
    x = _counts()
    if likelihood == "gaussian":
        x.data = np.log1p(x.data)
    path = tmp_path / "x.h5ad"
    ad.AnnData(x).write_h5ad(path)
    mem = _fit(ad.read_h5ad(path), likelihood)
    backed = ad.read_h5ad(path, backed="r")
    assert _backed.is_backed(backed.X)
    disk = _fit(backed, likelihood)
    np.testing.assert_allclose(
        disk.module.feature_input.numpy(), mem.module.feature_input.numpy(), rtol=0, atol=1e-5
    )
    for step, hist in mem.phase_history_.items():
        loss, loss_disk = hist["train_loss"], disk.phase_history_[step]["train_loss"]
        assert len(loss) == 5
        np.testing.assert_allclose(loss_disk, loss, rtol=0.03, err_msg=step)
    # the same weights give the same latent from the file as from memory
    z_mem = mem.get_latent_representation()
    z_file = mem.get_latent_representation(adata=ad.read_h5ad(path, backed="r"))
    np.testing.assert_allclose(z_file, z_mem, rtol=0, atol=1e-6)
    assert np.isfinite(disk.get_latent_representation()).all()


def test_block_helpers_match_in_memory(tmp_path, small_blocks):
    x = _counts(n=230)
    path = tmp_path / "x.h5ad"
    ad.AnnData(x).write_h5ad(path)
    disk = ad.read_h5ad(path, backed="r").X
    np.testing.assert_allclose(_backed.row_sums(disk), np.asarray(x.sum(1)).ravel())
    idx = np.array([0, 5, 69, 70, 71, 150, 229])  # across block edges
    np.testing.assert_array_equal(_backed.take_rows(disk, idx).toarray(), x[idx].toarray())


def test_backed_non_counts_rejected_for_nb(tmp_path, small_blocks):
    x = _counts(n=200)
    x.data[-1] = 0.5  # one non-integer value in the last block
    path = tmp_path / "bad.h5ad"
    ad.AnnData(x).write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    SIVAE.setup_anndata(backed)
    with pytest.raises(InputError, match="non-integer"):
        SIVAE(backed, likelihood="nb")
