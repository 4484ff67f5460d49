import logging
import re

import mudata as md
import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import sparse

import multiviz as mv
from multiviz._mudata import quiet_update
from multiviz.datasets._pbmc import pbmc10k_cite_200
from multiviz.pp._args import RIBOSOMAL_GENES, TECHNICAL_GENES


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

    # the paper's recipe exactly: no technical-gene exclusion, raw ephys z-scored
    mv.pp.prepare_paired(mdata, x="rna", y="ephys", n_top_genes=1000, exclude_genes=None)

    assert mdata.uns["prepare_paired"]["params"]["target_transform"] == "zscore"
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


# -- CITE-seq targets (issue 13, item 6) ---------------------------------------------------------


def _tiny_cite(adt: np.ndarray, n_genes: int = 30, seed: int = 0) -> md.MuData:
    rng = np.random.default_rng(seed)
    n = adt.shape[0]
    counts = rng.poisson(3.0, size=(n, n_genes)).astype(np.int32)
    names = [f"cell{i}" for i in range(n)]
    rna = AnnData(sparse.csr_matrix(counts), obs=pd.DataFrame(index=names))
    rna.var_names = [f"G{j}" for j in range(n_genes)]
    prot = AnnData(adt.astype(np.float32), obs=pd.DataFrame(index=names))
    prot.var_names = ["CD3", "CD4", "CD14"]
    with quiet_update():
        return md.MuData({"rna": rna, "protein": prot})


def test_clr_with_zeros_matches_hand_computation():
    adt = np.array([[0, 3, 15], [0, 0, 0], [7, 7, 7], [1, 0, 8], [2, 5, 0]], dtype=float)
    mdata = _tiny_cite(adt)
    mv.pp.prepare_paired(mdata, y="protein", gene_selection="none")
    unscaled = mdata["protein"].layers["unscaled"]
    # row 0: geometric mean of (1, 4, 16) is 4 -> log1p(0/4), log1p(3/4), log1p(15/4)
    np.testing.assert_allclose(unscaled[0], [0.0, np.log(1.75), np.log(4.75)], rtol=1e-6)
    np.testing.assert_allclose(unscaled[1], 0.0)  # an all-zero cell stays 0, not NaN
    np.testing.assert_allclose(unscaled[2], np.log1p(7 / 8), rtol=1e-6)  # equal counts
    hand = np.log1p(adt / np.exp(np.log1p(adt).mean(axis=1, keepdims=True)))
    np.testing.assert_allclose(unscaled, hand, rtol=1e-6, atol=1e-7)
    z = (hand - hand.mean(0)) / hand.std(0)
    np.testing.assert_allclose(mdata["protein"].X, z, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(mdata["protein"].layers["raw"], adt)
    assert mdata.uns["prepare_paired"]["params"]["target_transform"] == "clr"


def test_clr_is_the_default_for_protein_counts_and_matches_muon_axis_1(pbmc10k_path):
    mdata = md.read_h5mu(pbmc10k_path)
    raw = np.asarray(mdata["protein"].X, dtype=np.float64)
    assert (raw == 0).any()  # the real fixture has zero ADT counts
    mv.pp.prepare_paired(mdata, y="protein", n_top_genes=300)
    assert mdata.uns["prepare_paired"]["params"]["target_transform"] == "clr"
    # muon: log1p(x / exp(sum(log1p(x), axis) / n)) with axis=1 (per cell)
    muon_axis1 = np.log1p(raw / np.exp(np.log1p(raw).sum(axis=1, keepdims=True) / raw.shape[1]))
    np.testing.assert_allclose(mdata["protein"].layers["unscaled"], muon_axis1, rtol=1e-5)


@pytest.mark.parametrize(
    ("transform", "expected"),
    [("log1p", np.log1p), ("zscore", lambda a: a), (None, lambda a: a)],
)
def test_other_target_transforms(transform, expected):
    adt = np.array([[0, 3, 15], [4, 0, 2], [7, 7, 7], [1, 0, 8], [2, 5, 0]], dtype=float)
    mdata = _tiny_cite(adt)
    mv.pp.prepare_paired(mdata, y="protein", gene_selection="none", target_transform=transform)
    unscaled = mdata["protein"].layers["unscaled"]
    np.testing.assert_allclose(unscaled, expected(adt), rtol=1e-6)
    if transform is None:  # left as it is: no z-scoring either
        np.testing.assert_allclose(mdata["protein"].X, adt, rtol=1e-6)
        assert mdata.uns["prepare_paired"]["params"]["target_transform"] == "none"
    else:
        np.testing.assert_allclose(mdata["protein"].X.mean(0), 0, atol=1e-6)


def test_auto_keeps_zscore_for_normalised_protein_values():
    adt = np.array([[0.5, 3, 15], [4, 0, 2], [7, 7, 7], [1, 0, 8], [2, 5, 0]], dtype=float)
    mdata = _tiny_cite(adt)
    mv.pp.prepare_paired(mdata, y="protein", gene_selection="none")
    assert mdata.uns["prepare_paired"]["params"]["target_transform"] == "zscore"


def test_auto_with_log_features_is_the_users_recipe():
    adt = np.array([[1, 3, 15], [4, 2, 2], [7, 7, 7], [1, 3, 8], [2, 5, 1]], dtype=float)
    mdata = _tiny_cite(adt)
    mv.pp.prepare_paired(mdata, y="protein", gene_selection="none", log_features=["CD3", "CD4"])
    assert mdata.uns["prepare_paired"]["params"]["target_transform"] == "zscore"
    np.testing.assert_allclose(mdata["protein"].layers["unscaled"][:, 0], np.log(adt[:, 0]))


def test_log_features_takes_the_natural_log_before_zscoring():
    adt = np.array([[1, 3, 15], [4, 2, 2], [7, 7, 7], [1, 3, 8], [2, 5, 1]], dtype=float)
    mdata = _tiny_cite(adt)
    mv.pp.prepare_paired(
        mdata, y="protein", gene_selection="none", target_transform="zscore", log_features=["CD4"]
    )
    unscaled = mdata["protein"].layers["unscaled"]
    np.testing.assert_allclose(unscaled[:, 1], np.log(adt[:, 1]), rtol=1e-6)
    np.testing.assert_allclose(unscaled[:, [0, 2]], adt[:, [0, 2]], rtol=1e-6)
    assert mdata["protein"].var["log_transformed"].tolist() == [False, True, False]


# -- technical genes (issue 13, item 6) ----------------------------------------------------------

TECHNICAL = re.compile(r"^(MT-|mt-|ERCC-)")


def test_mt_and_ercc_excluded_by_default_and_included_on_request(m1_path, caplog):
    mdata = md.read_h5mu(m1_path)
    technical = [g for g in mdata["rna"].var_names if TECHNICAL.match(g)]
    assert len(technical) == 8 and any(g.startswith("ERCC-") for g in technical)
    with caplog.at_level(logging.INFO, logger="multiviz"):
        mv.pp.prepare_paired(mdata)
    assert not any(TECHNICAL.match(g) for g in mdata["rna"].var_names)
    assert mdata["rna"].n_vars == 992  # n_top_genes=1000 capped at what remains, with a warning
    info = mdata.uns["prepare_paired"]
    assert sorted(info["excluded_genes"]) == sorted(technical)
    assert info["n_genes_excluded"] == 8
    assert info["params"]["exclude_genes"] == TECHNICAL_GENES  # MT-, ERCC- and rRNA genes
    assert "excluded 8 technical genes (ERCC-00009" in caplog.text
    assert "only 992 genes remain after excluding 8 technical genes" in caplog.text

    kept = md.read_h5mu(m1_path)
    mv.pp.prepare_paired(kept, exclude_genes=None)
    assert set(technical) <= set(kept["rna"].var_names)
    assert kept.uns["prepare_paired"]["n_genes_excluded"] == 0


def test_pbmc_mitochondrial_and_ribosomal_genes(pbmc10k_path):
    mdata = md.read_h5mu(pbmc10k_path)
    names = mdata["rna"].var_names
    n_mt = int(names.str.startswith("MT-").sum())
    n_ribo = int(names.str.match(RIBOSOMAL_GENES).sum())
    assert "RPS6KA1" in names and not re.match(RIBOSOMAL_GENES, "RPS6KA1")  # a kinase
    assert n_mt == 13 and n_ribo > 50
    included = mv.pp.prepare_paired(
        mdata, y="protein", n_top_genes=2000, exclude_genes=None, copy=True
    )
    assert included["rna"].var_names.str.startswith("MT-").any()  # selected when allowed
    default = mv.pp.prepare_paired(mdata, y="protein", n_top_genes=2000, copy=True)
    assert not default["rna"].var_names.str.startswith("MT-").any()
    assert default["rna"].var_names.str.match(RIBOSOMAL_GENES).any()  # ribosomal: optional
    no_ribo = mv.pp.prepare_paired(
        mdata, y="protein", n_top_genes=2000, exclude_ribosomal=True, copy=True
    )
    assert not no_ribo["rna"].var_names.str.match(RIBOSOMAL_GENES).any()
    assert not no_ribo["rna"].var_names.str.startswith("MT-").any()
    assert no_ribo.uns["prepare_paired"]["n_genes_excluded"] == n_mt + n_ribo


def test_subset_false_never_flags_excluded_genes(pbmc10k_path):
    mdata = md.read_h5mu(pbmc10k_path)
    mv.pp.prepare_paired(mdata, y="protein", n_top_genes=2000, subset=False)
    var = mdata["rna"].var
    assert abs(int(var["highly_variable"].sum()) - 2000) <= 5  # ties in the detection curve
    assert not var.loc[var.index.str.startswith("MT-"), "highly_variable"].any()


def test_shipped_fixture_equals_shared_file(pbmc10k_path):
    shipped, shared = pbmc10k_cite_200(), md.read_h5mu(pbmc10k_path)
    assert (shipped["rna"].X != shared["rna"].X).nnz == 0
    np.testing.assert_array_equal(shipped["protein"].X, shared["protein"].X)
