"""Issue 23, item 2: each bad input of ``mv.tl`` / ``mv.pl`` names the problem and the fix.

Every case asserts the exception type (or warning category), that the message names the
argument and the fix, and that the user's object is left deep-unchanged.
"""

from __future__ import annotations

import warnings

import mudata as md
import numpy as np
import pytest
from _objects import assert_unchanged, snapshot
from _sbnn_helpers import TINY
from anndata import AnnData

import multiviz as mv
from multiviz import DataWarning, FitQualityWarning, InputError


def _prepared(n_cells: int = 60, n_genes: int = 40) -> md.MuData:
    m = mv.datasets.simulate_patchseq(n_cells=n_cells, n_genes=n_genes, random_state=0)
    mv.pp.prepare_paired(m, n_top_genes=n_genes, gene_selection="none")
    return m


@pytest.fixture(scope="module")
def prepared() -> md.MuData:
    return _prepared()


def _raises(obj, match: str, func, *args, **kwargs) -> str:
    snap = snapshot(obj)
    with pytest.raises(InputError, match=match) as info:
        func(*args, **kwargs)
    assert_unchanged(obj, snap)
    return str(info.value)


@pytest.mark.parametrize("tool", [mv.tl.srrr, mv.tl.sbnn])
def test_two_cells_say_too_few_cells_not_zscoring(prepared, tool):
    m = prepared[:2].copy()
    msg = _raises(m, r"`mdata` has 2 cells.*too few cells", tool, m, n_genes=2)
    assert "z-scored" not in msg


def test_one_cell_is_too_few_before_any_other_check(prepared):
    m = prepared[:1].copy()
    _raises(m, r"`mdata` has 1 cells: too few cells.*Use more cells", mv.tl.srrr, m, n_genes=1)


def test_a_few_cells_of_prepared_data_are_not_blamed_on_zscoring(prepared):
    m = prepared[:5].copy()
    mv.tl.srrr(m, n_genes=3, rank=1)  # a small subset of z-scored cells is accepted
    assert "srrr" in m.uns


def test_constant_genes_named_when_n_genes_exceeds_the_varying_ones():
    m = _prepared()
    m["rna"].X[:, :30] = 0.0  # 30 of 40 genes constant
    msg = _raises(
        m, r"`n_genes`=15 exceeds the \d+ genes that vary", mv.tl.srrr, m, n_genes=15, rank=1
    )
    assert "30 of the 40 genes are constant" in msg
    assert "Lower `n_genes`" in msg and "drop the constant genes" in msg


@pytest.fixture(scope="module")
def sbnn_model():
    m = _prepared(n_cells=80)
    return mv.tl.sbnn(m, n_genes=5, gene_decoder_epochs=0, return_model=True, **TINY)


def test_project_nan_counts_say_nan(sbnn_model):
    new = mv.datasets.simulate_patchseq(n_cells=20, n_genes=40, random_state=1)
    new["rna"].X = new["rna"].X.astype(np.float32).toarray()
    new["rna"].X[3, 0] = np.nan
    msg = _raises(new, r"`mdata\['rna'\]\.X` contains 1 NaN", mv.tl.project, new, sbnn_model)
    assert "raw counts" not in msg and "Drop those cells" in msg


def test_project_zero_cells_says_no_cells(sbnn_model):
    new = mv.datasets.simulate_patchseq(n_cells=20, n_genes=40, random_state=1)
    empty = new[:0].copy()
    msg = _raises(empty, r"`mdata\['rna'\]` has no cells", mv.tl.project, empty, sbnn_model)
    assert "raw counts" not in msg


def test_cca_n_components_states_the_maximum(prepared):
    m = prepared.copy()
    _raises(
        m,
        r"`n_components=1000000` is more than these data allow: at most 8.*"
        r"Pass `n_components` <= 8",
        mv.tl.cca,
        m,
        n_components=10**6,
    )


def test_cca_n_components_at_the_maximum_fits(prepared):
    m = prepared.copy()
    mv.tl.cca(m, n_components=8)
    assert m["ephys"].obsm["X_cca"].shape == (60, 8)


def test_cca_n_pcs_above_the_cells_warns_with_the_value_used(prepared):
    m = prepared[:10].copy()
    with pytest.warns(DataWarning, match=r"`n_pcs=20` for 'rna' exceeds .*used n_pcs=9"):
        mv.tl.cca(m, n_pcs=20)
    assert m.uns["cca"]["params"]["n_pcs"][0] <= 9


def test_selection_stability_fewer_cells_than_folds(prepared):
    m = prepared[:4].copy()
    msg = _raises(
        m,
        r"`n_folds`=10 is more than the 4 cells.*Lower `n_folds` to at most 4",
        mv.tl.selection_stability,
        m,
        method="srrr",
        over="folds",
        n_genes=3,
    )
    assert "n_splits" not in msg


def test_cv_folds_fewer_cells_than_folds():
    with pytest.raises(InputError, match=r"`n_folds`=5 is more than the 3 cells"):
        mv.tl.cv_folds(3, 5)


def _with_text_target(m: md.MuData) -> md.MuData:
    e = m["ephys"]
    values = e.X.astype(object)
    values[:, 2] = "n/a"
    return md.MuData({"rna": m["rna"].copy(), "ephys": AnnData(values, obs=e.obs, var=e.var)})


@pytest.mark.parametrize(
    "call",
    [
        lambda m: mv.tl.srrr(m, n_genes=3),
        lambda m: mv.tl.cca(m),
        lambda m: mv.tl.cross_validate(m, method="srrr", n_folds=3, n_genes=3),
    ],
    ids=["srrr", "cca", "cross_validate"],
)
def test_text_targets_name_the_features(prepared, call):
    m = _with_text_target(prepared)
    msg = _raises(m, r"must be numeric.*non-numeric features: \['feature_2'\]", call, m)
    assert "pd.to_numeric" in msg and ">=" not in msg


def test_cross_modal_plot_unknown_layer_lists_layers(prepared):
    m = prepared.copy()
    msg = _raises(
        m,
        r"`layer='nope'` is not a layer.*available layers",
        mv.pl.cross_modal,
        m,
        target="rna",
        layer="nope",
    )
    assert "counts" in msg


@pytest.fixture(scope="module")
def with_cca() -> md.MuData:
    m = _prepared()
    mv.tl.cca(m)
    return m


def test_cca_project_duplicated_names(with_cca):
    new = with_cca["ephys"].copy()
    new.var_names = ["feature_0", "feature_0", *new.var_names[2:]]
    _raises(
        new,
        r"duplicated feature names.*\['feature_0'\].*var_names_make_unique\(\)",
        mv.tl.cca_project,
        new,
        with_cca,
        "ephys",
    )


def test_cca_project_unscaled_features_warn(with_cca):
    new = with_cca["ephys"].copy()
    new.X = new.layers["raw"].copy()  # the features before z-scoring
    snap = snapshot(new)
    with pytest.warns(DataWarning, match=r"not on the scale of the reference.*Z-score"):
        mv.tl.cca_project(new, with_cca, "ephys")
    assert_unchanged(new, snap)


def test_cca_project_reference_cells_do_not_warn(with_cca):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        z = mv.tl.cca_project(with_cca["ephys"], with_cca, "ephys")
    np.testing.assert_allclose(z, with_cca["ephys"].obsm["X_cca"], atol=1e-5)


def test_cross_validate_target_constant_in_a_test_fold():
    m = _prepared()
    fold = mv.tl.cv_folds(m.n_obs, 5, 0)
    for values in (m["ephys"].X, m["ephys"].layers["unscaled"]):
        values[fold == 2, 1] = values[fold != 2, 1].mean() + 0.05
    with pytest.warns(FitQualityWarning, match=r"feature_1.*fold 2|fold 2.*feature_1"):
        df = mv.tl.cross_validate(m, method="srrr", n_folds=5, n_genes=5, rank=1)
    row = df[(df["fold"] == 2) & (df["feature"] == "feature_1")]
    assert row["r2"].isna().all()
    assert np.isfinite(df.loc[df["feature"] == "all", "r2"]).all()


def test_every_target_constant_in_tl(prepared):
    m = prepared.copy()
    m["ephys"].X[:] = 0.0
    _raises(m, r"Every feature of `mdata\['ephys'\]` is constant", mv.tl.srrr, m, n_genes=3)


def test_nan_target_message_names_the_matrix_and_the_fix_once():
    m = mv.datasets.simulate_patchseq(n_cells=60, n_genes=50, random_state=0)
    mv.pp.prepare_paired(m, gene_selection="none")
    m["ephys"].X[0, 0] = np.nan
    with pytest.raises(mv.InputError) as err:
        mv.tl.srrr(m)
    text = str(err.value)
    assert text.startswith("`mdata['ephys'].X` contains 1 NaN values in 1 cells (first row 0)")
    assert text.count("drop_nan=True") == 1
