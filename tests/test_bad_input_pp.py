"""Issue 10 for mv.pp / mv.datasets / mv.tl.tsne: clear errors, untouched objects, no NaN.

Each bad call must raise the named exception type, name the argument in its message and
leave the user's object deep-unchanged (``tests/_objects.py``, sparse matrices included).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import mudata as md
import numpy as np
import pytest
from _objects import assert_all_finite, assert_unchanged, snapshot
from scipy import sparse

import multiviz as mv
from multiviz import InputError
from multiviz._mudata import quiet_update
from multiviz.datasets._pbmc import pbmc10k_cite_200


@pytest.fixture
def sim():
    return mv.datasets.simulate_patchseq(n_cells=120, n_genes=60, n_drivers=5, random_state=3)


def _refuses(obj, func, match, exc=InputError, **kwargs):
    before = snapshot(obj)
    with pytest.raises(exc, match=match):
        func(obj, **kwargs)
    assert_unchanged(obj, before)


# -- prepare_paired: containers -------------------------------------------------------------


def test_view_is_refused_before_anything_is_touched(sim):
    view = sim[:100]
    before_parent, before_view = snapshot(sim), snapshot(view)
    with pytest.raises(InputError, match=r"`mdata` is a view.*mdata = mdata.copy\(\)"):
        mv.pp.prepare_paired(view, n_top_genes=20)
    assert view.is_view
    assert_unchanged(view, before_view)
    assert_unchanged(sim, before_parent)


def test_view_with_copy_true_works_and_leaves_parent_alone(sim):
    before = snapshot(sim)
    out = mv.pp.prepare_paired(sim[:100], n_top_genes=20, copy=True)
    assert out.n_obs == 100 and out["rna"].n_vars == 20 and not out.is_view
    assert_unchanged(sim, before)
    assert_all_finite(out)


def test_backed_mudata_is_refused_with_that_word(sim, tmp_path):
    path = tmp_path / "sim.h5mu"
    with quiet_update():
        sim.write_h5mu(path)
    data = path.read_bytes()
    backed = md.read_h5mu(path, backed=True)
    with pytest.raises(InputError, match=r"is backed.*in memory.*read_h5mu"):
        mv.pp.prepare_paired(backed, n_top_genes=20)
    with pytest.raises(InputError, match=r"is backed"):
        mv.pp.prepare_paired(backed, n_top_genes=20, copy=True)
    backed.file.close()
    assert path.read_bytes() == data


@pytest.mark.parametrize("axis", ["obs", "var"])
def test_duplicated_names_are_refused_with_make_unique_hint(sim, axis):
    rna = sim.mod["rna"]
    if axis == "var":
        names = list(rna.var_names)
        names[1] = names[0]
        rna.var_names = names
    else:
        names = list(sim.obs_names)
        names[1] = names[0]
        for mod in sim.mod.values():
            mod.obs_names = names
    with quiet_update():
        sim.update()
    _refuses(
        sim,
        mv.pp.prepare_paired,
        rf"duplicated {axis}_names.*{axis}_names_make_unique\(\)",
        n_top_genes=20,
    )


def test_anndata_is_refused(sim):
    _refuses(sim["rna"], mv.pp.prepare_paired, r"`mdata` is an AnnData.*MuData", n_top_genes=20)


# -- prepare_paired: arguments --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_cells": -5}, r"`min_cells` must be at least 1, got -5"),
        ({"min_cells": 2.5}, r"`min_cells` must be an integer"),
        ({"n_top_genes": 2.5}, r"`n_top_genes` must be an integer"),
        ({"n_top_genes": -3}, r"`n_top_genes` must be at least 1"),
        ({"n_top_genes": True}, r"`n_top_genes` must be an integer"),
        ({"threshold": -1}, r"`threshold` must be >= 0"),
        ({"threshold": "high"}, r"`threshold` must be 'auto' or a number"),
        ({"threshold": float("nan")}, r"`threshold` must be finite"),
        ({"drop_nan": "yes"}, r"`drop_nan` must be True or False"),
        ({"subset": 1}, r"`subset` must be True or False"),
        ({"copy": None}, r"`copy` must be True or False"),
        ({"exclude_ribosomal": "no"}, r"`exclude_ribosomal` must be True or False"),
        ({"x": 3}, r"`x` must be a non-empty string"),
        ({"y": ""}, r"`y` must be a non-empty string or None"),
        ({"layer": 0}, r"`layer` must be a non-empty string or None"),
        ({"gene_selection": "hvg"}, r"`gene_selection='hvg'` is not supported"),
        ({"target_transform": "clr2"}, r"`target_transform='clr2'` is not supported"),
        ({"exclude_genes": "(MT-"}, r"`exclude_genes='\(MT-'` is not a valid regular expression"),
        ({"exclude_genes": 5}, r"`exclude_genes` must be a regular expression"),
        ({"log_features": "feature_0"}, r"`log_features` must be a list.*\['feature_0'\]"),
        ({"layer": "counts"}, r"`layer='counts'` is not a layer.*available layers: \[\]"),
        ({"exclude_genes": "."}, r"`exclude_genes='.'` excludes all 60 genes"),
    ],
)
def test_bad_arguments_name_the_argument(sim, kwargs, match):
    kwargs = {"n_top_genes": 20, **kwargs}
    _refuses(sim, mv.pp.prepare_paired, match, **kwargs)


def test_log_features_with_zeros_points_to_log1p(sim):
    sim["ephys"].X[:, 0] = np.abs(sim["ephys"].X[:, 0])
    sim["ephys"].X[:5, 0] = 0.0
    _refuses(
        sim,
        mv.pp.prepare_paired,
        r"`log_features` must be strictly positive.*'feature_0' \(5 values <= 0\).*log1p",
        n_top_genes=20,
        log_features=["feature_0"],
    )


def test_log_features_with_clr_is_a_conflict():
    mdata = pbmc10k_cite_200()
    _refuses(
        mdata,
        mv.pp.prepare_paired,
        r"`log_features`.*`target_transform='clr'` already log-transforms",
        y="protein",
        n_top_genes=50,
        target_transform="clr",
        log_features=["CD3_TotalSeqB"],
    )


def test_clr_of_negative_targets_is_refused(sim):
    _refuses(
        sim,
        mv.pp.prepare_paired,
        r"`target_transform='clr'` needs non-negative counts.*mdata\['ephys'\]",
        n_top_genes=20,
        target_transform="clr",
    )


def test_detection_gene_selection_arguments(sim):
    rna = sim["rna"].copy()
    for kwargs, match in [
        ({"decay": 0}, r"`decay` must be > 0"),
        ({"y_offset": 1}, r"`y_offset` must be < 1"),
        ({"max_iter": 0}, r"`max_iter` must be at least 1"),
        ({"min_cells": -5}, r"`min_cells` must be at least 1"),
        ({"layer": "counts"}, r"`layer='counts'` is not a layer"),
        ({"inplace": "no"}, r"`inplace` must be True or False"),
        ({"key_added": ""}, r"`key_added` must be a non-empty string"),
        ({"n_top_genes": 0}, r"`n_top_genes` must be a positive integer"),
    ]:
        _refuses(rna, mv.pp.detection_gene_selection, match, **kwargs)
    view = sim["rna"][:50]
    with pytest.raises(InputError, match=r"`adata` is a view"):
        mv.pp.detection_gene_selection(view, n_top_genes=10)


# -- datasets ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broken_files(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("broken")
    sim = mv.datasets.simulate_patchseq(n_cells=60, n_genes=40, n_drivers=4)
    good = tmp / "good.h5mu"
    with quiet_update():
        sim.write_h5mu(good)
    data = good.read_bytes()
    (tmp / "truncated.h5mu").write_bytes(data[: len(data) // 2])
    (tmp / "garbage.h5mu").write_bytes(b"not an hdf5 file\n" * 64)
    sim["rna"].write_h5ad(tmp / "rna.h5ad")
    shutil.copy(tmp / "rna.h5ad", tmp / "renamed.h5mu")
    return {p.stem: p for p in tmp.iterdir()}


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("truncated", r"truncated\.h5mu'` is not a readable HDF5 file: it is truncated"),
        ("garbage", r"garbage\.h5mu'` is not a readable HDF5 file"),
        ("renamed", r"renamed\.h5mu'` is .*not a MuData file.*\.h5ad\) file renamed.*read_h5ad"),
        ("rna", r"`path` must be an \.h5mu file.*'rna\.h5ad'.*anndata\.read_h5ad"),
    ],
)
def test_read_paired_damaged_or_wrong_files(broken_files, name, match):
    path = broken_files[name]
    before = path.read_bytes()
    with pytest.raises(InputError, match=match):
        mv.datasets.read_paired(path)
    assert path.read_bytes() == before


def test_read_paired_corrupted_payload(broken_files, tmp_path):
    data = bytearray(broken_files["good"].read_bytes())
    middle = len(data) // 2
    data[middle : middle + len(data) // 4] = b"\xff" * (len(data) // 4)
    path = tmp_path / "corrupted.h5mu"
    path.write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"corrupted\.h5mu'`"):
        mv.datasets.read_paired(path)


def test_read_paired_arguments(broken_files, tmp_path):
    with pytest.raises(InputError, match=r"`path` must be a file path"):
        mv.datasets.read_paired(3)
    with pytest.raises(InputError, match=r"`path=.*` is a directory"):
        mv.datasets.read_paired(tmp_path / "")
    with pytest.raises(InputError, match=r"`path=.*nothere\.h5mu'` does not exist"):
        mv.datasets.read_paired(tmp_path / "nothere.h5mu")
    with pytest.raises(InputError, match=r"good\.h5mu: `y='protein'` is not a modality"):
        mv.datasets.read_paired(broken_files["good"], y="protein")
    with pytest.raises(InputError, match=r"`x` must be a non-empty string"):
        mv.datasets.read_paired(broken_files["good"], x=None)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_cells": 0}, r"`n_cells` must be at least 4"),
        ({"n_genes": 2.0}, r"`n_genes` must be an integer"),
        ({"n_latent": 1}, r"`n_latent` must be at least 2"),
        ({"theta": 0}, r"`theta` must be > 0"),
        ({"noise": -0.1}, r"`noise` must be >= 0"),
        ({"marker_fraction": 1.5}, r"`marker_fraction` must be <= 1"),
        ({"random_state": None}, r"`random_state` must be an integer seed"),
    ],
)
def test_simulate_patchseq_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        mv.datasets.simulate_patchseq(**{"n_cells": 50, "n_genes": 30, "n_drivers": 3, **kwargs})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_isolated": -1}, r"`n_isolated` must be at least 0"),
        ({"community_size": 1}, r"`community_size` must be at least 2"),
        ({"community_size": 2.5}, r"`community_size` must be an integer"),
        ({"rho": "0.5"}, r"`rho` must be a number"),
        ({"n_cells": 1}, r"`n_cells` must be at least 2"),
    ],
)
def test_simulate_gene_network_arguments(kwargs, match):
    with pytest.raises(InputError, match=match):
        mv.datasets.simulate_gene_network(**{"n_cells": 50, **kwargs})


# -- tl.tsne ----------------------------------------------------------------------------------


@pytest.fixture
def with_rep(sim):
    rng = np.random.default_rng(0)
    sim.obsm["X_rand"] = rng.normal(size=(sim.n_obs, 3)).astype(np.float32)
    sim.obsm["X_same"] = np.ones((sim.n_obs, 2), dtype=np.float32)
    few = np.zeros((sim.n_obs, 2), dtype=np.float32)
    few[: sim.n_obs // 2, 0] = 1.0
    sim.obsm["X_two"] = few
    nan = sim.obsm["X_rand"].copy()
    nan[3, 1] = np.nan
    sim.obsm["X_nan"] = nan
    return sim


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"use_rep": "X_same"}, r"`use_rep='X_same'`: every cell has the same coordinates"),
        ({"use_rep": "X_two"}, r"`use_rep='X_two'` has only 2 distinct points"),
        ({"use_rep": "X_nan"}, r"`obsm\['X_nan'\]` contains 1 NaN"),
        ({"use_rep": "X_none"}, r"`use_rep='X_none'` is not in `obsm`"),
        ({"use_rep": "X_rand", "perplexity": -1}, r"`perplexity` must be > 0"),
        ({"use_rep": "X_rand", "n_jobs": 0}, r"`n_jobs` must be at least 1"),
        ({"use_rep": "X_rand", "n_iterr": 5}, r"`n_iterr` \(did you mean `n_iter`\?\)"),
        ({"use_rep": "X_rand", "random_state": 1.5}, r"`random_state` must be an integer"),
        ({"use_rep": "X_rand", "key_added": 3}, r"`key_added` must be a non-empty string"),
        ({"use_rep": "X_rand", "copy": "yes"}, r"`copy` must be True or False"),
    ],
)
def test_tsne_bad_input(with_rep, kwargs, match):
    _refuses(with_rep, mv.tl.tsne, match, **kwargs)


def test_tsne_view_is_refused_unless_copy(with_rep):
    view = with_rep[:60]
    before = snapshot(with_rep)
    with pytest.raises(InputError, match=r"`data` is a view"):
        mv.tl.tsne(view, use_rep="X_rand")
    assert_unchanged(with_rep, before)
    out = mv.tl.tsne(view, use_rep="X_rand", copy=True, n_iter=50)
    assert out.obsm["X_rand_tsne"].shape == (60, 2)
    assert np.isfinite(out.obsm["X_rand_tsne"]).all()
    assert_unchanged(with_rep, before)


# -- every valid pp call leaves only finite values -------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"subset": False},
        {"gene_selection": "none"},
        {"gene_selection": "seurat_v3"},
        {"target_transform": None},
        {"log_features": ["feature_0"], "_positive": True},
    ],
)
def test_prepare_paired_writes_only_finite_values(sim, kwargs):
    kwargs = dict(kwargs)
    if kwargs.pop("_positive", False):
        sim["ephys"].X[:, 0] = np.abs(sim["ephys"].X[:, 0]) + 1.0
    sim["ephys"].X[7, 2] = np.nan  # one cell dropped
    mv.pp.prepare_paired(sim, n_top_genes=30, **kwargs)
    assert sim.n_obs == 119
    assert_all_finite(sim)


@pytest.mark.parametrize("transform", ["auto", "clr", "log1p", "zscore", None])
def test_prepare_paired_on_real_cite_seq_is_finite(transform):
    mdata = pbmc10k_cite_200()
    mv.pp.prepare_paired(mdata, y="protein", n_top_genes=300, target_transform=transform)
    assert_all_finite(mdata)


def test_detection_gene_selection_writes_no_nan_for_undetected_genes(sim):
    rna = sim["rna"].copy()
    X = rna.X.toarray()
    X[:, :3] = 0  # genes no cell detects
    rna.X = sparse.csr_matrix(X)
    mv.pp.detection_gene_selection(rna, n_top_genes=10)
    assert_all_finite(rna)
    assert (rna.var["detection_zero_rate"].to_numpy()[:3] == 1.0).all()
    assert not rna.var["highly_variable"].to_numpy()[:3].any()


def test_tsne_valid_call_writes_only_finite_values(with_rep):
    del with_rep.obsm["X_nan"]
    mv.tl.tsne(with_rep, use_rep="X_rand", n_iter=100)
    assert with_rep.obsm["X_rand_tsne"].shape == (with_rep.n_obs, 2)
    assert_all_finite(with_rep)
