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

``mv.tl.sivae`` on a backed AnnData (the ``test_tl_*`` tests) is checked against the same
call in memory; its tolerances are stated per test.
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


# -- mv.tl.sivae on a backed AnnData --------------------------------------------------------

#: ``mv.tl.sivae`` settings of the backed-vs-in-memory comparisons (small, a few seconds).
TL_KW = dict(
    n_latent=2,
    n_hidden=(16, 8),
    max_epochs=5,
    batch_size=64,
    random_state=3,
    accelerator="cpu",
    enable_progress_bar=False,
    return_model=True,
)


def _write(tmp_path, x, name: str = "x.h5ad"):
    """Write ``x`` (cell names c0.., a constant ``batch`` column) and return the path."""
    import pandas as pd

    obs = pd.DataFrame(index=[f"c{i}" for i in range(x.shape[0])])
    path = tmp_path / name
    ad.AnnData(x, obs=obs).write_h5ad(path)
    return path


def _counting_reads(monkeypatch, x) -> list[int]:
    """Rows of every read of the on-disk matrix ``x``; loading all of it fails the test."""
    cls, reads = type(x), []
    orig = cls.__getitem__

    def getitem(self, idx):
        out = orig(self, idx)
        reads.append(out.shape[0])
        return out

    def no_to_memory(self, *args, **kwargs):
        raise AssertionError("the whole on-disk matrix was loaded")

    monkeypatch.setattr(cls, "__getitem__", getitem)
    monkeypatch.setattr(cls, "to_memory", no_to_memory)
    return reads


def _keys(adata) -> dict:
    return {
        "obsm": sorted(adata.obsm),
        "varm": sorted(adata.varm),
        "var": sorted(adata.var),
        "uns": sorted(adata.uns),
        "uns_sivae": sorted(adata.uns["sivae"]),
    }


def test_tl_sivae_backed_csr_matches_in_memory(tmp_path, small_blocks, monkeypatch):
    """CSR on disk: the same keys and, to float rounding, the same results as in memory.

    The model is registered on a light AnnData holding anndata's on-disk dataset; that
    object is not itself backed, so scvi-tools reads every minibatch in the same shuffled
    order as in memory: same cells, same noise draws. Measured: feature input, loss
    history, used genes, scores and loadings equal (difference 0; bounds 1e-5 leave room
    for BLAS differences); centrality within 1e-4 (measured 2.3e-6: the R² sums run over
    larger inference minibatches on disk, :func:`~multiviz.models.sivae._backed.
    inference_batch_size`).
    """
    import multiviz as mv

    dense = _counts().toarray()
    dense[:, 7] = 0  # one all-zero gene: constant, found across all five blocks
    x = sparse.csr_matrix(dense)
    path = _write(tmp_path, x)
    mem = ad.read_h5ad(path)
    model_mem = mv.tl.sivae(mem, likelihood="nb", **TL_KW)
    disk = ad.read_h5ad(path, backed="r")
    reads = _counting_reads(monkeypatch, disk.X)
    model_disk = mv.tl.sivae(disk, likelihood="nb", **TL_KW)

    assert disk.isbacked and _backed.is_backed(disk.X)  # still on disk, nothing loaded
    assert 0 < max(reads) < disk.n_obs  # every read is a block or a minibatch
    assert not [c for c in disk.obs if c.startswith("_scvi")]  # the user's object untouched
    assert _keys(disk) == _keys(mem)
    np.testing.assert_array_equal(disk.var["sivae_used"], mem.var["sivae_used"])
    assert not disk.var["sivae_used"].iloc[7] and disk.uns["sivae"]["n_genes_used"] == 39
    np.testing.assert_allclose(
        model_disk.module.feature_input.numpy(),
        model_mem.module.feature_input.numpy(),
        rtol=0,
        atol=1e-5,
    )
    h_mem, h_disk = mem.uns["sivae"]["history"], disk.uns["sivae"]["history"]
    np.testing.assert_array_equal(h_disk["phase"], h_mem["phase"])
    np.testing.assert_allclose(h_disk["train_loss"], h_mem["train_loss"], rtol=1e-5)
    np.testing.assert_allclose(disk.obsm["X_sivae"], mem.obsm["X_sivae"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        disk.varm["sivae_loadings"], mem.varm["sivae_loadings"], rtol=0, atol=1e-5
    )
    np.testing.assert_allclose(
        disk.var["sivae_centrality"], mem.var["sivae_centrality"], rtol=0, atol=1e-4
    )
    for key in ("r2_gene", "r2_linear"):
        assert abs(disk.uns["sivae"][key] - mem.uns["sivae"][key]) < 1e-4, key
    assert disk.uns["sivae"]["params"] == mem.uns["sivae"]["params"]


def test_tl_sivae_backed_rejects_bad_input(tmp_path, small_blocks):
    """Clear errors on backed input: non-integer counts (with where), copy=True, a view."""
    import multiviz as mv

    x = _counts(n=200)
    x.data[-1] = 0.5  # one non-integer value in the last block (cells 140-199)
    disk = ad.read_h5ad(_write(tmp_path, x, "bad.h5ad"), backed="r")
    with pytest.raises(InputError, match=r"non-integer.*cells 140-199"):
        mv.tl.sivae(disk, likelihood="nb", **TL_KW)
    assert "X_sivae" not in disk.obsm and "sivae" not in disk.uns  # nothing written
    x.data[-1] = np.inf
    disk = ad.read_h5ad(_write(tmp_path, x, "inf.h5ad"), backed="r")
    with pytest.raises(InputError, match="infinite"):
        mv.tl.sivae(disk, **TL_KW)
    with pytest.raises(InputError, match="copy=True"):
        mv.tl.sivae(disk, copy=True, **TL_KW)
    with pytest.raises(InputError, match="view of a backed"):
        mv.tl.sivae(disk[:100], **TL_KW)


def _knn_overlap(a: np.ndarray, b: np.ndarray, k: int = 15) -> float:
    """Mean fraction of each cell's ``k`` nearest neighbours shared by two embeddings."""
    from sklearn.neighbors import NearestNeighbors

    na, nb = (
        NearestNeighbors(n_neighbors=k + 1).fit(z).kneighbors(z, return_distance=False)[:, 1:]
        for z in (a, b)
    )
    return float(np.mean([len(set(r) & set(s)) / k for r, s in zip(na, nb, strict=True)]))


def test_tl_sivae_backed_dense_gaussian(tmp_path, small_blocks):
    """Dense ``X`` on disk (an HDF5 dataset), Gaussian: same keys, inputs and PCA baseline.

    HDF5 reads a dense dataset's rows only in increasing order, so here the model is
    registered on a backed light object and scvi-tools reads each minibatch sorted: the
    same cells, other noise draws, so the fit is a different draw of the same model.
    Asserted: the feature input and the PCA baseline (read in blocks) equal the in-memory
    ones; R² within 0.03 (measured: 0.006); 15-NN agreement of the 2-d scores > 0.35
    (measured 0.56; a 2-d latent can rotate between draws); the training loss of each
    step's last epoch within 10 % (measured: 0.01 %, 5.5 %, 0.1 % for steps 1-3; single
    epochs differ more, up to 10 % in step 1, as two draws do).
    """
    import multiviz as mv

    counts = _counts().toarray()
    counts[:, 7] = 0
    logs = np.log1p(counts)
    sd = logs.std(0)
    sd[sd == 0] = 1.0
    x = ((logs - logs.mean(0)) / sd).astype(np.float32)  # z-scored, as the docs ask
    path = _write(tmp_path, x)
    kw = {**TL_KW, "n_hidden": (64, 32), "batch_size": 32}  # default schedule: converged draws
    kw.pop("max_epochs", None)
    mem = ad.read_h5ad(path)
    model_mem = mv.tl.sivae(mem, **kw)
    disk = ad.read_h5ad(path, backed="r")
    model_disk = mv.tl.sivae(disk, **kw)

    assert type(disk.X).__name__ == "Dataset" and disk.isbacked
    assert not [c for c in disk.obs if c.startswith("_scvi")]
    assert _keys(disk) == _keys(mem)
    np.testing.assert_array_equal(disk.var["sivae_used"], mem.var["sivae_used"])
    np.testing.assert_allclose(
        model_disk.module.feature_input.numpy(),
        model_mem.module.feature_input.numpy(),
        rtol=0,
        atol=1e-5,
    )
    np.testing.assert_allclose(disk.uns["sivae"]["r2_pca"], mem.uns["sivae"]["r2_pca"], rtol=1e-12)
    for key in ("r2_gene", "r2_linear"):
        assert abs(disk.uns["sivae"][key] - mem.uns["sivae"][key]) < 0.03, key
    assert disk.uns["sivae"]["r2_gene"] > 0.3  # a real fit, not a collapsed one
    assert _knn_overlap(disk.obsm["X_sivae"], mem.obsm["X_sivae"]) > 0.35
    h_mem, h_disk = mem.uns["sivae"]["history_phases"], disk.uns["sivae"]["history_phases"]
    for step, hist in h_mem.items():  # the last epoch of every step
        last, last_disk = hist["train_loss"][-1], h_disk[step]["train_loss"][-1]
        np.testing.assert_allclose(last_disk, last, rtol=0.1, err_msg=step)


def test_list_of_rows_reads_only_those_rows(tmp_path, monkeypatch):
    """scvi-tools asks for a minibatch with a Python list; anndata 0.13 alone would load it all."""
    from multiviz._ondisk import list_indexable

    x = sparse.random(60, 9, density=0.3, format="csr", dtype=np.float32, random_state=0)
    path = _write(tmp_path, x)
    disk = ad.read_h5ad(path, backed="r")
    view = list_indexable(disk.X)
    assert list_indexable(view) is view and type(disk.X) is not type(view)
    reads = _counting_reads(monkeypatch, view)  # patches the view's base class
    rows = [41, 3, 17]
    got = view[rows]
    np.testing.assert_array_equal(got.toarray(), x[rows].toarray())
    np.testing.assert_array_equal(view[rows, :].toarray(), x[rows].toarray())
    assert reads and max(reads) == 3
    assert list_indexable(x) is x  # in memory: unchanged
