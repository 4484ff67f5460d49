"""Bad input gets an early, clear error naming the argument, and the object is left untouched."""

import numpy as np
import pytest
from _objects import assert_unchanged, snapshot
from anndata import AnnData

import multiviz as mv
from multiviz import InputError


@pytest.fixture
def mdata():
    return mv.datasets.simulate_patchseq(n_cells=120, n_genes=60, n_drivers=5, random_state=3)


def _expect(mdata, match, **kwargs):
    snap = snapshot(mdata)
    with pytest.raises(InputError, match=match):
        mv.pp.prepare_paired(mdata, **kwargs)
    assert_unchanged(mdata, snap)


def test_missing_modality_lists_available(mdata):
    _expect(
        mdata, r"`y='protein'` is not a modality.*\['rna', 'ephys'\]", y="protein", n_top_genes=20
    )


def test_missing_x_modality(mdata):
    _expect(mdata, r"`x='gex'` is not a modality", x="gex", n_top_genes=20)


def test_n_top_genes_larger_than_n_vars(mdata):
    _expect(
        mdata,
        r"`n_top_genes=100` is larger than the number of genes available \(60\)",
        n_top_genes=100,
    )


def test_n_top_genes_not_positive(mdata):
    _expect(mdata, r"`n_top_genes` must be at least 1, got 0", n_top_genes=0)


def test_nan_targets_when_dropping_is_off(mdata):
    mdata["ephys"].X[3, 1] = np.nan
    _expect(
        mdata, r"contains 1 NaN values in 1 cells.*drop_nan=True", n_top_genes=20, drop_nan=False
    )


def test_infinite_targets(mdata):
    mdata["ephys"].X[0, 0] = np.inf
    _expect(mdata, r"`mdata\['ephys'\].X` contains 1 infinite values", n_top_genes=20)


def test_negative_counts(mdata):
    mdata["rna"].X = mdata["rna"].X.astype(np.float32)
    mdata["rna"].X[0, 0] = -1.0
    _expect(mdata, r"negative values.*raw counts are needed.*layer='counts'", n_top_genes=20)


def test_non_integer_counts(mdata):
    X = mdata["rna"].X.astype(np.float32)
    X.data = np.log1p(X.data)
    mdata["rna"].X = X
    _expect(mdata, r"non-integer values.*raw counts", n_top_genes=20)


def test_misaligned_cells(mdata):
    ephys = mdata["ephys"]
    order = np.r_[1, 0, 2 : ephys.n_obs]
    mdata.mod["ephys"]._inplace_subset_obs(ephys.obs_names[order])
    mdata.update()
    snap = snapshot(mdata)
    with pytest.raises(InputError, match=r"not aligned"):
        mv.pp.prepare_paired(mdata, n_top_genes=20)
    assert_unchanged(mdata, snap)


def test_non_numeric_targets(mdata):
    with pytest.raises(InputError, match=r"must be numeric"):
        mv._validate.check_numeric(np.array([["a", "b"]]), "y")


def test_anndata_instead_of_mudata(mdata):
    rna = mdata["rna"]
    snap = snapshot(rna)
    with pytest.raises(InputError, match=r"`mdata` is an AnnData.*MuData"):
        mv.pp.prepare_paired(rna, n_top_genes=20)
    assert_unchanged(rna, snap)


def test_unknown_gene_selection(mdata):
    _expect(mdata, r"`gene_selection='pca'` is not supported", gene_selection="pca")


def test_log_feature_not_present(mdata):
    _expect(mdata, r"`log_features` names features not in", n_top_genes=20, log_features=["tau"])


def test_log_feature_not_positive(mdata):
    _expect(
        mdata,
        r"`log_features` must be strictly positive",
        n_top_genes=20,
        log_features=["feature_0"],
    )


def test_too_few_cells_after_dropping(mdata):
    mdata["ephys"].X[:-2, 0] = np.nan
    _expect(mdata, r"`mdata \(cells with complete `ephys` targets\)` has 2 cells", n_top_genes=20)


def test_same_modality_twice(mdata):
    _expect(mdata, r"`x` and `y` must be different", x="rna", y="rna", n_top_genes=20)


def test_gene_list_with_unknown_genes():
    adata = AnnData(np.ones((3, 2)))
    adata.var_names = ["a", "b"]
    with pytest.raises(InputError, match=r"1 genes in `genes` are not in `var_names`.*'zz'"):
        mv._validate.resolve_var_mask(adata, ["a", "zz"])


def test_read_paired_rejects_wrong_suffix(tmp_path):
    path = tmp_path / "x.h5ad"
    path.write_text("")
    with pytest.raises(InputError, match=r"`path` must be an .h5mu file.*'x.h5ad'"):
        mv.datasets.read_paired(path)


def test_simulator_arguments():
    with pytest.raises(InputError, match=r"`n_drivers=50` must be smaller than `n_genes=20`"):
        mv.datasets.simulate_patchseq(n_genes=20, n_drivers=50)
    with pytest.raises(InputError, match=r"`rho` must lie in \(0, 1\)"):
        mv.datasets.simulate_gene_network(rho=1.5)
