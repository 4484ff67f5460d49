"""The coupled autoencoder's data path holds no copy of the cells' values (issue 12).

The registered stack is an index over the modalities: its data blocks *are* the user's
matrices, minibatches gather rows from them with presence and NaN masks, and an on-disk
(``backed="r"``) modality trains to the same latents as the same data in memory.
"""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pytest
import torch
from scipy import sparse

from multiviz import InputError
from multiviz.models import CoupledAutoencoder
from multiviz.models.coupled._data import batcher_of, dense_batch, materialise

torch.set_num_threads(1)

N, N_GENES, N_FEAT = 180, 40, 5


def _planted(seed: int = 0):
    """Sparse RNA for all cells (in order), dense ephys for ~70 % of them in shuffled order."""
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(N, 2))
    X = sparse.random(N, N_GENES, density=0.3, format="csr", dtype=np.float32, random_state=seed)
    X = sparse.csr_matrix(X + sparse.csr_matrix(np.maximum(f @ rng.normal(size=(2, N_GENES)), 0)))
    X = X.astype(np.float32)
    E = (f @ rng.normal(size=(2, N_FEAT)) + 0.2 * rng.normal(size=(N, N_FEAT))).astype(np.float32)
    names = np.array([f"cell{i}" for i in range(N)])
    keep = rng.random(N) > 0.3
    order = rng.permutation(np.flatnonzero(keep))  # ephys rows in another order than rna
    E_rows = E[order].copy()
    E_rows[4, 1] = np.nan  # one missing value in a present cell
    return X, E, E_rows, names, keep, order


def _mudata(rna_X, E_rows, names, order):
    rna = ad.AnnData(rna_X)
    rna.obs_names = names
    eph = ad.AnnData(E_rows)
    eph.obs_names = names[order]
    return md.MuData({"rna": rna, "ephys": eph})


@pytest.fixture(scope="module")
def planted():
    X, E, E_rows, names, keep, order = _planted()
    return _mudata(X, E_rows, names, order), X, E, E_rows, names, keep, order


def test_stack_holds_no_copy_of_the_values(planted):
    mdata, X, _, E_rows, names, keep, _ = planted
    model = CoupledAutoencoder(mdata, hidden=(8,), random_state=0)
    stack = model.adata
    batcher = batcher_of(stack)
    # one block per modality, and each block *is* the user's matrix
    assert [b.matrix is m for b, m in zip(batcher.blocks, (mdata["rna"].X, mdata["ephys"].X))] == [
        True,
        True,
    ]
    assert np.shares_memory(batcher.blocks[0].matrix.data, X.data)
    assert np.shares_memory(batcher.blocks[1].matrix, E_rows)
    # the registered AnnData stores no values: an empty placeholder X, no layers
    assert stack.X.nnz == 0 and [k for k in stack.layers.keys() if k is not None] == []
    stored = stack.X.data.nbytes + sum(np.asarray(v).nbytes for v in stack.obsm.values())
    assert stored <= stack.n_obs * 2 * 4  # the float32 presence mask only
    # the index maps: rna in order (no map), ephys rows by name
    assert batcher.blocks[0].rows is None
    rows = batcher.blocks[1].rows
    np.testing.assert_array_equal(rows >= 0, keep)
    np.testing.assert_array_equal(mdata["ephys"].obs_names[rows[keep]], names[keep])
    # training and inference keep reading the same matrices (no copy made on the way)
    model.train(max_epochs=1, steps_per_epoch=5, batch_size=32, enable_progress_bar=False)
    model.get_latent_representation()
    after = batcher_of(model.adata)
    assert after is batcher and after.blocks[0].matrix is mdata["rna"].X
    assert model.adata.X.nnz == 0


def test_minibatch_masks_match_the_planted_pairing(planted):
    mdata, X, E, _, _, keep, order = planted
    stack = CoupledAutoencoder(mdata, hidden=(8,), random_state=0).adata
    idx = np.random.default_rng(1).choice(N, size=64, replace=False)
    b = {k: v.numpy() for k, v in dense_batch(stack, idx).items()}
    np.testing.assert_array_equal(b["presence"], np.c_[np.ones(64), keep[idx]].astype(np.float32))
    np.testing.assert_array_equal(b["X"][:, :N_GENES], X[idx].toarray())
    eph = slice(N_GENES, N_GENES + N_FEAT)
    here = keep[idx]
    np.testing.assert_array_equal(b["X"][~here, eph], 0)
    np.testing.assert_array_equal(b["observed"][~here, eph], 0)
    # present cells: the planted values, observed except the one NaN (stored as 0)
    nan_cell = order[4]
    expected = E[idx[here]].copy()
    expected_obs = np.ones_like(expected)
    hit = idx[here] == nan_cell
    expected[hit, 1], expected_obs[hit, 1] = 0.0, 0.0
    np.testing.assert_array_equal(b["X"][here, eph], expected)
    np.testing.assert_array_equal(b["observed"][here, eph], expected_obs)
    np.testing.assert_array_equal(b["observed"][:, :N_GENES], 1)
    # the NaN cell itself, whatever the draw
    full = {k: v.numpy() for k, v in dense_batch(stack, [nan_cell]).items()}
    assert full["observed"][0, N_GENES + 1] == 0 and full["X"][0, N_GENES + 1] == 0
    assert full["observed"][0, eph].sum() == N_FEAT - 1


def test_saved_values_and_a_copied_stack(planted, tmp_path):
    mdata = planted[0]
    model = CoupledAutoencoder(mdata, hidden=(8,), random_state=0)
    model.train(max_epochs=1, steps_per_epoch=5, batch_size=32, enable_progress_bar=False)
    z = model.get_latent_representation()
    # save_anndata writes the values (the only copy of all cells, made for the file)
    written = materialise(model.adata, chunk=50)
    np.testing.assert_array_equal(
        dense_batch(written)["X"].nan_to_num().numpy(), dense_batch(model.adata)["X"].numpy()
    )
    model.save(tmp_path / "m", save_anndata=True)
    loaded = CoupledAutoencoder.load(tmp_path / "m")
    for mod in z:
        np.testing.assert_array_equal(loaded.get_latent_representation()[mod], z[mod])
    # a copy of the stack has lost the link to the MuData: a clear error, not zeros
    with pytest.raises(InputError, match="lost the link"):
        CoupledAutoencoder(model.adata.copy(), hidden=(8,))


@pytest.mark.parametrize("kind", ["sparse", "dense"])
def test_backed_modality_trains_like_in_memory(planted, tmp_path, kind):
    _, X, _, E_rows, names, _, order = planted
    rna_X = X if kind == "sparse" else X.toarray()
    path = tmp_path / f"rna_{kind}.h5ad"
    rna = ad.AnnData(rna_X)
    rna.obs_names = names
    rna.write_h5ad(path)
    backed = ad.read_h5ad(path, backed="r")
    eph = ad.AnnData(E_rows)
    eph.obs_names = names[order]
    m_disk = md.MuData({"rna": backed, "ephys": eph})
    assert not isinstance(backed.X, np.ndarray) and not sparse.issparse(backed.X)
    lat = []
    for m in (_mudata(rna_X, E_rows, names, order), m_disk):
        model = CoupledAutoencoder(m, hidden=(8,), random_state=0)
        model.train(max_epochs=1, steps_per_epoch=8, batch_size=32, enable_progress_bar=False)
        lat.append(model.get_latent_representation())
    block = batcher_of(model.adata).blocks[0].matrix  # read from disk, never loaded whole
    assert type(block) is type(backed.X) and block.shape == (N, N_GENES)
    for mod in lat[0]:
        np.testing.assert_array_equal(lat[1][mod], lat[0][mod])
    backed.file.close()
