from __future__ import annotations

import mudata as md
import numpy as np
import pytest
from _sbnn_helpers import one_torch_thread, same, simulated, snapshot  # noqa: F401

import multiviz as mv
from multiviz import InputError
from multiviz.linear import srrr_budget, srrr_fit


@pytest.fixture(scope="module")
def sim():
    return simulated()


def test_planted_drivers_recovered(sim):
    m = sim.copy()
    mv.tl.srrr(m, rank=2, n_genes=10)
    rna = m["rna"]
    drivers = set(rna.var_names[rna.var["driver"]])
    selected = set(rna.var_names[rna.var["srrr_selected"]])
    assert rna.var["srrr_selected"].sum() == 10
    assert len(drivers & selected) >= 8
    assert m.obsm["X_srrr"].shape == (m.n_obs, 2)
    assert rna.varm["srrr_loadings"].shape == (rna.n_vars, 2)
    V = m.uns["srrr"]["V"]
    np.testing.assert_allclose(V.T @ V, np.eye(2), atol=1e-8)
    # prediction = X W V' + mean; the stored R² is eq. (3) on the training cells
    train = ~m.obs_names.isin(m.uns["srrr"]["heldout_cells"])
    assert (~train).sum() == m.uns["srrr"]["n_heldout"] == round(0.1 * m.n_obs)
    pred = m["ephys"].layers["srrr_pred"]
    Y = m["ephys"].X
    Yt, pt = Y[train], pred[train]
    direct = 1 - np.sum((Yt - pt) ** 2) / np.sum((Yt - Yt.mean(0)) ** 2)
    assert m.uns["srrr"]["r2_train"] == pytest.approx(direct, rel=1e-4)
    # and the held-out R² is eq. (3) on the other cells, centred by the training mean
    Yh, ph = Y[~train], pred[~train]
    direct = 1 - np.sum((Yh - ph) ** 2) / np.sum((Yh - Yt.mean(0)) ** 2)
    assert m.uns["srrr"]["r2_heldout"] == pytest.approx(direct, rel=1e-4)


def test_objective_and_orthogonality(sim):
    X, Y = sim["rna"].X, sim["ephys"].X
    res = srrr_fit(X, Y, rank=3, lam=0.05, relaxed=False)
    # loss decreases monotonically across the alternation and V stays orthonormal
    assert np.all(np.diff(res.loss) <= 1e-9)
    np.testing.assert_allclose(res.V.T @ res.V, np.eye(3), atol=1e-8)
    # deterministic sign convention: the largest |V| entry of each component is positive
    idx = np.argmax(np.abs(res.V), axis=0)
    assert np.all(res.V[idx, np.arange(3)] > 0)
    res2 = srrr_fit(X, Y, rank=3, lam=0.05, relaxed=False)
    np.testing.assert_array_equal(res.W, res2.W)


def test_relaxed_with_fewer_genes_than_rank(sim):
    X, Y = sim["rna"].X, sim["ephys"].X
    res, path = srrr_budget(X, Y, rank=3, n_genes=2)
    assert res.selected.sum() == 2
    # the relaxed ridge refit ran (not silently skipped): it beats the unrelaxed fit
    unrelaxed, _ = srrr_budget(X, Y, rank=3, n_genes=2, relaxed=False)
    err = np.sum((Y - res.predict(X)) ** 2)
    assert err < np.sum((Y - unrelaxed.predict(X)) ** 2)
    # the budget search ended at a penalty selecting the two genes kept
    assert (path["n_selected"] >= 2).any()


def test_held_out_against_planted_truth():
    """Fitted on 300 cells, sRRR-2 predicts 100 held-out cells and finds the drivers."""
    from multiviz.metrics import r2_score
    from multiviz.tl._paired_data import fold_arrays
    from multiviz.tl._srrr import fit_srrr

    m = simulated()
    perm = np.random.default_rng(0).permutation(m.n_obs)
    test, train = np.sort(perm[:100]), np.sort(perm[100:])
    tr, te = fold_arrays(m, train, test)
    res, _ = fit_srrr(tr, rank=2, n_genes=10)
    assert r2_score(te.Y, res.predict(te.X)) > 0.5
    drivers = set(m["rna"].var_names[m["rna"].var["driver"]])
    assert len(drivers & set(tr.gene_names[res.selected])) >= 8
    # the rank-2 latent carries the planted 2-d state of the held-out cells
    truth = m.obsm["latent_truth"]
    z_tr, z_te = res.transform(tr.X), res.transform(te.X)
    coef = np.linalg.lstsq(np.c_[z_tr, np.ones(len(train))], truth[train], rcond=None)[0]
    fit = np.c_[z_te, np.ones(len(test))] @ coef
    assert r2_score(truth[test], fit, train_mean=truth[train].mean(0)) > 0.5


def test_projection_from_stored_loadings(sim):
    """The documented projection (z-score, subtract x_mean, loadings, V) reproduces the fit."""
    m = sim.copy()
    mv.tl.srrr(m, rank=2, n_genes=10)
    uns, rna = m.uns["srrr"], m["rna"]
    X = np.asarray(rna.X, dtype=np.float64)
    latent = (X - uns["x_mean"]) @ rna.varm["srrr_loadings"]
    np.testing.assert_allclose(latent, m.obsm["X_srrr"], rtol=1e-10, atol=1e-10)
    pred = latent @ uns["V"].T + uns["y_mean"]
    np.testing.assert_allclose(pred, m["ephys"].layers["srrr_pred"], rtol=1e-5, atol=1e-5)


def test_fixed_lambda_and_roundtrip(sim, tmp_path):
    m = sim.copy()
    mv.tl.srrr(m, rank=2, n_genes=None, lam=0.05, key_added="s")
    assert m.uns["s"]["lam"] == 0.05
    path = tmp_path / "s.h5mu"
    m.write_h5mu(path)
    back = md.read_h5mu(path)
    np.testing.assert_array_equal(back.obsm["X_s"], m.obsm["X_s"])
    np.testing.assert_array_equal(back["rna"].var["s_selected"], m["rna"].var["s_selected"])


def test_bad_input_leaves_object_untouched(sim):
    m = sim.copy()
    before = snapshot(m)
    with pytest.raises(InputError, match="exceeds"):
        mv.tl.srrr(m, n_genes=m["rna"].n_vars + 1)
    with pytest.raises(InputError, match="rank"):
        mv.tl.srrr(m, rank=50)
    with pytest.raises(InputError, match="exactly one"):
        mv.tl.srrr(m, n_genes=5, lam=0.1)
    with pytest.raises(InputError, match="not a modality"):
        mv.tl.srrr(m, x="atac")
    assert same(before, snapshot(m))


def test_m1_ion_channel_restriction(m1_path, ion_channel_path):
    import pandas as pd

    m = md.read_h5mu(m1_path)
    mv.pp.prepare_paired(m, x="rna", y="ephys")
    symbols = set(pd.read_csv(ion_channel_path, sep="\t")["symbol"])
    ion = [g for g in m["rna"].var_names if g in symbols]
    assert len(ion) == m["rna"].var["ion_channel_go0005216"].sum()
    mv.tl.srrr(m, rank=2, n_genes=10, genes=ion)
    selected = set(m["rna"].var_names[m["rna"].var["srrr_selected"]])
    assert len(selected) == 10 and selected <= set(ion)
    # the boolean var column works as well and gives the same genes
    m2 = m.copy()
    mv.tl.srrr(m2, rank=2, n_genes=10, genes="ion_channel_go0005216")
    assert set(m2["rna"].var_names[m2["rna"].var["srrr_selected"]]) == selected
