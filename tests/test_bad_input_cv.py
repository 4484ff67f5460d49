"""Bad input to ``cross_validate`` / ``selection_stability``: an early, clear error naming the
argument, before any fit, and the user's object deep-unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from _objects import assert_unchanged, snapshot

import multiviz as mv
from multiviz import InputError


@pytest.fixture(scope="module")
def prepared():
    m = mv.datasets.simulate_patchseq(n_cells=120, n_genes=60, n_drivers=5, random_state=3)
    mv.pp.prepare_paired(m, x="rna", y="ephys", gene_selection="none")
    return m


def _expect(m, func, match, **kwargs):
    snap = snapshot(m)
    with pytest.raises(InputError, match=match):
        func(m, **kwargs)
    assert_unchanged(m, snap)


@pytest.mark.parametrize(
    ("folds", "match"),
    [
        ([7], r"`folds`.*0\.\.2.*invalid: \[7\]"),
        ([], r"`folds` must be a non-empty"),
        ([0, 0], r"`folds` has repeated"),
        ([-1], r"`folds`.*invalid: \[-1\]"),
        (["a"], r"`folds`"),
        ([True], r"`folds`"),
        (1.5, r"`folds`"),
    ],
)
def test_malformed_folds(prepared, folds, match):
    m = prepared.copy()
    _expect(m, mv.tl.cross_validate, match, method="srrr", n_folds=3, folds=folds)


@pytest.mark.parametrize("n_folds", [1, 0, -2, 2.5, True])
def test_bad_n_folds(prepared, n_folds):
    _expect(prepared.copy(), mv.tl.cross_validate, "n_folds", method="srrr", n_folds=n_folds)


def test_one_seed_has_no_jaccard(prepared):
    _expect(prepared.copy(), mv.tl.selection_stability, r"n_seeds", n_seeds=1)


def test_unknown_keyword_named_with_closest_match(prepared):
    m = prepared.copy()
    _expect(m, mv.tl.cross_validate, r"pruned_epoch.*pruned_epochs", pruned_epoch=3)
    _expect(m, mv.tl.selection_stability, r"bottlenek.*bottleneck", bottlenek=2)
    _expect(m, mv.tl.cross_validate, r"lam", method="sbnn", lam=0.1)


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"lr": 0}, "lr"),
        ({"lr": float("nan")}, "lr"),
        ({"lasso": -1}, "lasso"),
        ({"pruned_epochs": -3}, "pruned_epochs"),
        ({"batch_size": 0}, "batch_size"),
        ({"bottleneck": 0}, "bottleneck"),
        ({"n_genes": 10_000}, "exceeds"),
        ({"ensemble": "yes"}, "ensemble"),
        ({"gene_decoder_epochs": 5}, "gene_decoder_epochs"),
    ],
)
def test_bad_sbnn_settings_rejected_before_training(prepared, kw, match):
    _expect(prepared.copy(), mv.tl.cross_validate, match, n_folds=3, **kw)


def test_too_few_training_cells_like_tl_sbnn(prepared):
    """10 folds of 40 cells leave 36 training cells: below mv.tl.sbnn's minimum of 40."""
    small = prepared[:40].copy()
    _expect(small, mv.tl.cross_validate, r"36 training cells.*at least 40", n_folds=10)
    _expect(
        small, mv.tl.selection_stability, r"36 training cells|at least 40", over="folds", n_folds=10
    )


def test_constant_target_dropped_not_nan(prepared):
    """As in mv.tl.sbnn: a constant feature is dropped with a warning, never a NaN R²."""
    m = prepared.copy()
    if "unscaled" in m["ephys"].layers:
        m["ephys"].layers["unscaled"][:, 2] = 1.0
    m["ephys"].X[:, 2] = 0.0
    feature = str(m["ephys"].var_names[2])
    df, pred, _ = mv.tl.cross_validate(
        m, method="srrr", n_folds=3, rank=2, n_genes=5, return_predictions=True
    )
    assert feature not in set(df.feature)
    assert np.isfinite(df[["r2", "r2_train"]].to_numpy()).all()
    assert np.isfinite(pred.to_numpy()).all() and np.allclose(pred[feature], pred[feature].iloc[0])


def test_view_rejected(prepared):
    view = prepared[:100]
    with pytest.raises(InputError, match=r"view.*\.copy\(\)"):
        mv.tl.cross_validate(view, method="srrr", n_folds=3)


def test_duplicated_gene_names(prepared):
    m = prepared.copy()
    names = m["rna"].var_names.to_numpy().copy()
    names[1] = names[0]
    m["rna"].var_names = names
    _expect(m, mv.tl.cross_validate, r"var_names_make_unique", method="srrr", n_folds=3)


def test_predictions_need_every_fold(prepared):
    _expect(
        prepared.copy(),
        mv.tl.cross_validate,
        r"return_predictions.*every fold",
        method="srrr",
        n_folds=3,
        folds=[0],
        return_predictions=True,
    )


def test_srrr_has_no_seeds(prepared):
    _expect(prepared.copy(), mv.tl.selection_stability, r"over='folds'", method="srrr")


def test_consensus_is_sbnn_only(prepared):
    _expect(
        prepared.copy(),
        mv.tl.selection_stability,
        r"consensus",
        method="srrr",
        over="folds",
        n_folds=3,
        consensus=True,
    )


def test_nothing_nan_in_results(prepared):
    m = prepared.copy()
    df = mv.tl.cross_validate(m, method="srrr", n_folds=3, rank=2, n_genes=5)
    assert np.isfinite(df[["r2", "r2_train"]].to_numpy()).all()
    assert sorted(df.fold.unique()) == [0, 1, 2]
