from __future__ import annotations

import numpy as np
import pytest
from _sbnn_helpers import TINY, one_torch_thread, same, simulated, snapshot  # noqa: F401

import multiviz as mv
from multiviz import InputError
from multiviz.linear import srrr_budget
from multiviz.metrics import jaccard, mean_pairwise_jaccard, r2_per_feature, r2_score
from multiviz.tl._paired_data import fold_arrays


@pytest.fixture(scope="module")
def sim():
    return simulated(n_cells=300, n_genes=150)


def test_r2_matches_numpy():
    rng = np.random.default_rng(0)
    Y, P, mu = rng.normal(size=(50, 4)), rng.normal(size=(50, 4)), rng.normal(size=4)
    Yc, Pc = Y - mu, P - mu
    assert r2_score(Y, P, train_mean=mu) == pytest.approx(
        1 - np.sum((Yc - Pc) ** 2) / np.sum(Yc**2)
    )
    np.testing.assert_allclose(
        r2_per_feature(Y, P, train_mean=mu), 1 - ((Yc - Pc) ** 2).sum(0) / (Yc**2).sum(0)
    )


def test_folds_identical_and_cover_every_cell(sim):
    f1 = mv.tl.cv_folds(sim.n_obs, 5, random_state=1)
    f2 = mv.tl.cv_folds(sim.n_obs, 5, random_state=1)
    np.testing.assert_array_equal(f1, f2)
    assert np.bincount(f1).sum() == sim.n_obs and set(f1) == set(range(5))
    m = sim.copy()
    df = mv.tl.cross_validate(m, method="srrr", n_folds=5, random_state=1, rank=2, n_genes=10)
    assert sorted(df["fold"].unique()) == list(range(5))
    assert set(df["feature"]) == {"all", *map(str, m["ephys"].var_names)}
    assert (df[df.feature == "all"]["n_genes"] == 10).all()
    assert m.uns["cv_srrr"].equals(df)
    assert df[df.feature == "all"]["r2"].mean() > 0.5  # planted signal is predictable


def test_cv_r2_equals_direct_computation(sim):
    m = sim.copy()
    df = mv.tl.cross_validate(m, method="srrr", n_folds=5, folds=[2], rank=2, n_genes=10)
    fold_of = mv.tl.cv_folds(m.n_obs, 5, 0)
    tr, te = fold_arrays(m, np.flatnonzero(fold_of != 2), np.flatnonzero(fold_of == 2))
    # training-fold z-scoring: training targets have mean 0, so eq. (3) centring is implicit
    np.testing.assert_allclose(tr.Y.mean(0), 0, atol=1e-5)
    res, _ = srrr_budget(tr.X, tr.Y, rank=2, n_genes=10)
    P = res.predict(te.X)
    direct = 1 - np.sum((te.Y - P) ** 2) / np.sum(te.Y**2)
    got = df[(df.fold == 2) & (df.feature == "all")]["r2"].item()
    assert got == pytest.approx(direct, rel=1e-6)


def test_signal_planted_in_test_fold_cannot_raise_score(sim):
    """A gene equal to the target only in the test fold is noise to a leakage-free fit."""
    m = sim.copy()
    k = 0
    fold_of = mv.tl.cv_folds(m.n_obs, 5, 0)
    base = mv.tl.cross_validate(m, method="srrr", n_folds=5, folds=[k], rank=2, n_genes=10)
    planted = m.copy()
    rna = planted["rna"]
    rng = np.random.default_rng(1)
    target = planted["ephys"].X[:, 0]
    expr = rna.layers["log2norm"]
    expr = np.asarray(expr.toarray() if hasattr(expr, "toarray") else expr, dtype=np.float32)
    col = rng.normal(size=m.n_obs)
    col[fold_of == k] = 5 * target[fold_of == k]
    expr[:, 5] = col
    rna.layers["log2norm"] = expr
    del rna.layers["counts"]  # force the fold preprocessing onto the planted log2norm layer
    leak = mv.tl.cross_validate(planted, method="srrr", n_folds=5, folds=[k], rank=2, n_genes=10)
    r_base = base[base.feature == "all"]["r2"].item()
    r_leak = leak[leak.feature == "all"]["r2"].item()
    assert str(rna.var_names[5]) not in leak["genes"].iloc[0].split(";")
    assert r_leak <= r_base + 0.02
    # the same gene WOULD help if it were visible in training: a sanity check of the design
    assert np.corrcoef(col[fold_of == k], target[fold_of == k])[0, 1] > 0.99


def test_sbnn_cv_is_leakage_free_and_stability(sim):
    """sBNN CV (batched ensemble): a gene equal to the target only in the test fold is noise."""
    k, short = 0, {**TINY, "pretrain_epochs": 6, "unfrozen_epochs": 12, "pruned_epochs": 6}
    fold_of = mv.tl.cv_folds(sim.n_obs, 3, 0)
    planted = sim.copy()
    rna = planted["rna"]
    expr = rna.layers["log2norm"]
    expr = np.asarray(expr.toarray() if hasattr(expr, "toarray") else expr, dtype=np.float32)
    col = np.random.default_rng(1).normal(size=sim.n_obs)
    col[fold_of == k] = 5 * planted["ephys"].X[fold_of == k, 0]
    expr[:, 5] = col
    rna.layers["log2norm"] = expr
    del rna.layers["counts"]
    m = planted.copy()
    m["rna"].layers["log2norm"][:, 5] = np.random.default_rng(1).normal(size=sim.n_obs)
    kw = {"n_folds": 3, "folds": [k], "n_genes": 10, "lr": 1e-3, **short}
    base = mv.tl.cross_validate(m, **kw)
    leak = mv.tl.cross_validate(planted, **kw)
    r_base = base[base.feature == "all"]["r2"].item()
    r_leak = leak[leak.feature == "all"]["r2"].item()
    assert r_base > 0.3  # the planted drivers are learnt on held-out cells
    assert str(rna.var_names[5]) not in leak["genes"].iloc[0].split(";")
    assert r_leak <= r_base + 0.02
    out = mv.tl.selection_stability(
        sim.copy(), method="srrr", over="folds", n_folds=3, rank=2, n_genes=10
    )
    assert 0 <= out["mean_jaccard"] <= 1
    drivers = set(sim["rna"].var_names[sim["rna"].var["driver"]])
    assert len(drivers & set(out["always_selected"])) >= 6


def test_stability_metrics():
    assert jaccard({"a", "b"}, {"b", "c"}) == pytest.approx(1 / 3)
    assert mean_pairwise_jaccard([["a"], ["a"], ["b"]]) == pytest.approx(1 / 3)


def test_bad_input(sim):
    m = sim.copy()
    before = snapshot(m)
    with pytest.raises(InputError, match="at least 10"):
        mv.tl.cross_validate(m[:6].copy(), method="srrr", n_folds=10)
    with pytest.raises(InputError, match="method"):
        mv.tl.cross_validate(m, method="pca")
    with pytest.raises(InputError, match="exceeds"):
        mv.tl.cross_validate(m, method="srrr", n_genes=10_000)
    with pytest.raises(InputError, match="not a modality"):
        mv.tl.cross_validate(m, method="srrr", y="protein")
    assert same(before, snapshot(m))
