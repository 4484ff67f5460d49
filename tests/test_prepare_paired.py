import mudata as md
import numpy as np
import pytest
from scipy import sparse

import multiviz as mv


def _paper_recipe(counts: np.ndarray, targets: np.ndarray):
    """The sBNN recipe written out directly in numpy."""
    library = counts.sum(axis=1)
    logged = np.log2(counts / library[:, None] * np.median(library) + 1)
    x = (logged - logged.mean(axis=0)) / logged.std(axis=0)
    y = (targets - targets.mean(axis=0)) / targets.std(axis=0)
    return logged, x, y


def test_m1_matches_numpy_recipe(m1_path):
    mdata = md.read_h5mu(m1_path)
    counts = mdata["rna"].X.toarray().astype(np.float64)
    targets = mdata["ephys"].X.astype(np.float64)
    logged, x, y = _paper_recipe(counts, targets)

    mv.pp.prepare_paired(mdata, x="rna", y="ephys", n_top_genes=1000)

    assert mdata.n_obs == 1213
    assert mdata["rna"].n_vars == 1000
    np.testing.assert_allclose(mdata["rna"].X, x, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        mdata["rna"].layers["log2norm"].toarray(), logged, rtol=1e-6, atol=1e-6
    )
    np.testing.assert_allclose(mdata["ephys"].X, y, rtol=1e-6, atol=1e-6)
    # raw data kept, sparse stays sparse, fitted statistics stored
    assert sparse.issparse(mdata["rna"].layers["counts"])
    np.testing.assert_array_equal(mdata["rna"].layers["counts"].toarray(), counts)
    np.testing.assert_allclose(mdata["ephys"].layers["raw"], targets, rtol=1e-6)
    np.testing.assert_allclose(mdata["rna"].var["zscore_mean"], logged.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(mdata["ephys"].var["zscore_std"], targets.std(axis=0), rtol=1e-6)
    assert mdata.uns["prepare_paired"]["n_cells_dropped"] == 0
    assert mdata.uns["prepare_paired"]["params"]["threshold"] == 30.0  # read counts


def test_stored_zscore_refits_on_a_fold(m1_path):
    mdata = md.read_h5mu(m1_path)
    mv.pp.prepare_paired(mdata)
    train = np.arange(mdata.n_obs) % 10 != 0
    logged = mdata["rna"].layers["log2norm"]
    mean, std = mv.pp.fit_zscore(logged[train])
    dense = logged.toarray().astype(np.float64)
    np.testing.assert_allclose(mean, dense[train].mean(axis=0), rtol=1e-6)
    scaled = mv.pp.apply_zscore(logged[~train], mean, std)
    np.testing.assert_allclose(scaled, (dense[~train] - mean) / std, rtol=1e-5, atol=1e-5)


def test_nan_targets_dropped_and_log_features(m1_phys_temp_path):
    mdata = md.read_h5mu(m1_phys_temp_path)
    raw_y = mdata["ephys"].X.copy()
    n_nan_cells = int(np.isnan(raw_y).any(axis=1).sum())
    assert n_nan_cells == 2
    feature = "AP amplitude (mV)"
    mv.pp.prepare_paired(mdata, n_top_genes=500, log_features=[feature])
    assert mdata.n_obs == 184 - n_nan_cells
    assert mdata["rna"].n_obs == mdata["ephys"].n_obs == mdata.n_obs
    assert mdata.uns["prepare_paired"]["n_cells_dropped"] == n_nan_cells
    assert mdata["rna"].n_vars == 500
    j = list(mdata["ephys"].var_names).index(feature)
    kept = ~np.isnan(raw_y).any(axis=1)
    np.testing.assert_allclose(
        mdata["ephys"].layers["unscaled"][:, j], np.log(raw_y[kept, j]), rtol=1e-5
    )
    assert not np.isnan(mdata["ephys"].X).any()


def test_simulated_drivers_survive_gene_selection():
    mdata = mv.datasets.simulate_patchseq(n_cells=600, n_genes=400, random_state=1)
    mv.pp.prepare_paired(mdata, n_top_genes=150)
    assert mdata["rna"].n_vars == 150
    assert mdata["rna"].var["driver"].sum() == 10
    np.testing.assert_allclose(mdata["rna"].X.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(mdata["rna"].X.std(axis=0), 1, atol=1e-4)


def test_subset_false_keeps_all_genes():
    mdata = mv.datasets.simulate_patchseq(n_cells=300, n_genes=200, random_state=2)
    mv.pp.prepare_paired(mdata, n_top_genes=50, subset=False)
    assert mdata["rna"].n_vars == 200
    assert mdata["rna"].var["highly_variable"].sum() == 50


@pytest.mark.parametrize("flavor", ["seurat_v3", "seurat"])
def test_scanpy_gene_selection(pbmc10k_path, flavor):
    mdata = md.read_h5mu(pbmc10k_path)
    mv.pp.prepare_paired(mdata, y="protein", n_top_genes=300, gene_selection=flavor)
    assert mdata["rna"].n_vars == 300
    assert mdata.uns["prepare_paired"]["params"]["gene_selection"] == flavor


def test_detection_selection_hits_target_and_uses_umi_threshold(pbmc10k_path):
    mdata = md.read_h5mu(pbmc10k_path)
    mv.pp.prepare_paired(mdata, y="protein", n_top_genes=500)
    assert mdata["rna"].n_vars == 500
    assert mdata.uns["prepare_paired"]["params"]["threshold"] == 0.0  # UMI counts


def test_detection_statistics_match_definition():
    rng = np.random.default_rng(0)
    counts = rng.poisson(rng.gamma(0.5, 4.0, size=(200, 50))).astype(np.int32)
    adata = mv.datasets.simulate_patchseq(n_cells=10, n_genes=20)[
        "rna"
    ]  # only for the AnnData type
    adata = type(adata)(sparse.csr_matrix(counts))
    mv.pp.detection_gene_selection(adata, n_top_genes=10, threshold=1)
    detected = counts > 1
    zero_rate = 1 - detected.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_log = np.where(detected, np.log2(np.maximum(counts, 1)), 0).sum(0) / detected.sum(0)
    ok = detected.sum(axis=0) >= 10
    np.testing.assert_allclose(adata.var["detection_zero_rate"][ok], zero_rate[ok])
    np.testing.assert_allclose(adata.var["detection_mean_log2"][ok], mean_log[ok])
    assert adata.var["highly_variable"].sum() == 10
    assert not adata.var["highly_variable"][~ok].any()


def test_copy_returns_new_object():
    mdata = mv.datasets.simulate_patchseq(n_cells=200, n_genes=100)
    before = mdata["rna"].X.copy()
    out = mv.pp.prepare_paired(mdata, n_top_genes=50, copy=True)
    assert out is not None and out["rna"].n_vars == 50
    assert mdata["rna"].n_vars == 100
    assert (mdata["rna"].X != before).nnz == 0


def test_h5mu_roundtrip(tmp_path):
    mdata = mv.datasets.simulate_patchseq(n_cells=200, n_genes=100)
    mv.pp.prepare_paired(mdata, n_top_genes=50)
    path = tmp_path / "prepared.h5mu"
    mdata.write_h5mu(path)
    back = md.read_h5mu(path)
    np.testing.assert_allclose(back["rna"].X, mdata["rna"].X)
    assert back.uns["prepare_paired"]["n_genes_selected"] == 50
