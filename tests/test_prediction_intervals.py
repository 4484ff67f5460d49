"""Conformal prediction intervals at every fit and out of fold (issue 22, item 3).

Planted truth: `simulate_patchseq` cells are exchangeable, so a 90 % split-conformal
interval calibrated on a fit's held-out cells must cover 90 % of new cells' true targets
(within sampling error), over repeated splits; the out-of-fold intervals of
`cross_validate` likewise.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from _sbnn_helpers import one_torch_thread  # noqa: F401
from test_heldout_at_fit import TINY

import multiviz as mv
from multiviz.tl._intervals import conformal_halfwidth, out_of_fold_intervals


@pytest.fixture(scope="module")
def planted():
    m = mv.datasets.simulate_patchseq(n_cells=300, n_genes=150, random_state=0)
    mv.pp.prepare_paired(m, gene_selection="none")
    return m


def test_halfwidth_is_the_conformal_order_statistic():
    residuals = np.arange(1.0, 21.0)[:, None] * np.array([[1.0, -2.0]])  # 20 cells
    # ceil(21 * 0.9) = 19th smallest |residual|
    np.testing.assert_array_equal(conformal_halfwidth(residuals, 0.9), [19.0, 38.0])
    assert conformal_halfwidth(residuals[:8], 0.9) is None  # 9 cells needed for 90 %
    loo = out_of_fold_intervals(residuals[:, :1], 0.9)  # 18th of the 19 others
    assert loo[0, 0] == 19.0 and loo[19, 0] == 18.0


def _srrr_on_new_cells(m, n_new: int, seed: int):
    """Fit sRRR on all but ``n_new`` random cells; their predictions and the half-widths."""
    rng = np.random.default_rng(seed)
    new = np.zeros(m.n_obs, bool)
    new[rng.choice(m.n_obs, n_new, replace=False)] = True
    fit = m[~new].copy()
    mv.tl.srrr(fit, n_genes=10, random_state=seed)
    out, rna = fit.uns["srrr"], fit["rna"]
    pred = (m["rna"].X[new] - out["x_mean"]) @ rna.varm["srrr_loadings"] @ out["V"].T
    width = np.array([out["prediction_interval"]["halfwidth"][f] for f in m["ephys"].var_names])
    return fit, new, pred + out["y_mean"], width


def test_srrr_interval_covers_new_cells_over_repeated_splits(planted):
    """Average coverage of new cells over 30 splits is 0.90 within 0.03."""
    m = planted
    covered, widths = [], []
    for seed in range(30):
        fit, new, pred, width = _srrr_on_new_cells(m, 90, seed)
        record = fit.uns["srrr"]["prediction_interval"]
        assert record["level"] == 0.9 and record["n_calibration"] == 21
        covered.append(np.abs(m["ephys"].X[new] - pred) <= width)
        widths.append(width)
        lower, upper = (
            fit["ephys"].layers["srrr_pred_lower"],
            fit["ephys"].layers["srrr_pred_upper"],
        )
        np.testing.assert_allclose(
            upper - lower, np.broadcast_to(2 * width, lower.shape), rtol=1e-5
        )
    coverage = float(np.mean(covered))
    # split conformal with 21 calibration cells: expected ceil(22 * 0.9) / 22 = 0.909
    assert abs(coverage - 0.9) <= 0.03, coverage
    assert np.mean(covered, axis=(0, 1)).min() >= 0.8  # no feature far below
    assert np.median(widths) < 2.0  # informative: narrower than +-2 SD of a z-scored target


def test_sbnn_interval_is_calibrated_on_new_cells_and_travels_with_the_model(tmp_path):
    raw = mv.datasets.simulate_patchseq(n_cells=600, n_genes=150, random_state=0)
    m = raw[raw.obs_names[:300]].copy()
    query = raw[raw.obs_names[300:]].copy()  # raw counts, never prepared
    mv.pp.prepare_paired(m, gene_selection="none")
    model = mv.tl.sbnn(m, n_genes=10, train_size=0.8, return_model=True, **TINY)
    record = m.uns["sbnn"]["prediction_interval"]
    assert record["n_calibration"] == 60 and record == model.prediction_interval_
    pred = m["ephys"].layers["sbnn_pred"]
    assert (m["ephys"].layers["sbnn_pred_lower"] < pred).all()
    assert (m["ephys"].layers["sbnn_pred_upper"] > pred).all()
    model.save(tmp_path / "sbnn", overwrite=True)
    loaded = mv.models.SBNN.load(tmp_path / "sbnn", adata=m)
    assert loaded.prediction_interval_ == record
    mv.tl.project(query, loaded)
    # true targets of the new cells, z-scored with the training cells' statistics
    truth = query["ephys"].X
    mean = m["ephys"].var["zscore_mean"].to_numpy() if "zscore_mean" in m["ephys"].var else None
    if mean is None:
        pytest.skip("prepare_paired did not record the targets' z-scoring")
    z = (truth - mean) / m["ephys"].var["zscore_std"].to_numpy()
    lower = query["rna"].obsm["sbnn_pred_lower"].to_numpy()
    upper = query["rna"].obsm["sbnn_pred_upper"].to_numpy()
    coverage = float(((z >= lower) & (z <= upper)).mean())
    # one calibration draw of 60 cells: coverage ~ Beta, sd ~0.04 around 0.90
    assert 0.8 <= coverage <= 0.98, coverage


def test_small_data_hold_out_the_count_whose_coverage_is_exact(planted):
    """160 fit cells: 19 held out, not 16 (whose 90 % interval would cover 94 %), and the
    average coverage of new cells over 30 splits is 0.90 within 0.03."""
    m = planted
    covered = []
    for seed in range(30):
        fit, new, pred, width = _srrr_on_new_cells(m, 140, seed)
        out = fit.uns["srrr"]
        assert out["n_heldout"] == out["prediction_interval"]["n_calibration"] == 19
        covered.append(np.abs(m["ephys"].X[new] - pred) <= width)
    coverage = float(np.mean(covered))
    assert abs(coverage - 0.9) <= 0.03, coverage


def test_sixty_cells_hold_out_nine_and_get_an_interval(planted):
    m = planted[:60].copy()  # train_size=0.9 -> 6 held-out cells, too few for 90 %: 9
    mv.tl.srrr(m, n_genes=10)
    assert m.uns["srrr"]["n_heldout"] == m.uns["srrr"]["prediction_interval"]["n_calibration"] == 9
    mv.tl.srrr(m, n_genes=10, interval=None, key_added="plain")  # no interval: no nudge
    assert m.uns["plain"]["n_heldout"] == 6


def test_too_few_held_out_cells_write_no_interval(planted):
    m = planted[:40].copy()  # 4 held-out cells: 9 would be more than twice that
    mv.tl.srrr(m, n_genes=10)
    assert "prediction_interval" not in m.uns["srrr"]
    assert "srrr_pred_lower" not in m["ephys"].layers
    mv.tl.srrr(m, n_genes=10, interval=None, key_added="plain")
    assert "plain_pred_lower" not in m["ephys"].layers


@pytest.mark.parametrize("bad", [0.0, 1.0, 1.5, "0.9"])
def test_bad_level_is_refused(planted, bad):
    with pytest.raises(mv.InputError, match="interval"):
        mv.tl.srrr(planted.copy(), n_genes=10, interval=bad)


def test_out_of_fold_intervals_cover_and_spread_flags_far_cells(planted):
    m = planted.copy()
    # five cells planted far from the others: half their genes 30 times more expressed
    far, counts = np.arange(5), m["rna"].layers["counts"]
    half = counts.shape[1] // 2
    counts[far, :half] = counts[far, :half] * 30  # CV refits its preprocessing from counts
    df, pred, _ = mv.tl.cross_validate(m, method="srrr", n_genes=10, return_predictions=True)
    truth = m["ephys"].layers["unscaled"] if "unscaled" in m["ephys"].layers else m["ephys"].X
    lower, upper = m["ephys"].layers["cv_srrr_pred_lower"], m["ephys"].layers["cv_srrr_pred_upper"]
    inside = (truth >= lower) & (truth <= upper)
    normal = np.setdiff1d(np.arange(m.n_obs), far)
    assert abs(inside[normal].mean() - 0.9) <= 0.03
    record = m.uns["cv_srrr_prediction_interval"]
    assert record["n_calibration"] == m.n_obs and math.isclose(record["level"], 0.9)
    spread = m.obs["cv_srrr_latent_spread"].to_numpy()
    # every far cell is placed less reliably than 90 % of the others, at twice their median
    assert spread[far].min() > np.quantile(spread[normal], 0.9), spread[far]
    assert np.median(spread[far]) > 2 * np.median(spread[normal])
    assert m.obsm["X_cv_srrr_spread"].shape == m.obsm["X_cv_srrr"].shape
    fig = mv.pl.latent_spread(m, key="cv_srrr", return_fig=True)
    assert len(fig.axes[0].collections) == 2  # ellipses and dots


def test_align_to_puts_folds_into_the_full_fits_frame(planted):
    m = planted.copy()
    mv.tl.srrr(m, n_genes=10)
    rotated = m.copy()
    rotated.obsm["X_srrr"] = m.obsm["X_srrr"] @ np.array([[0.0, -1.0], [1.0, 0.0]])
    for obj in (m, rotated):
        mv.tl.cross_validate(
            obj, method="srrr", n_genes=10, return_predictions=True, align_to="X_srrr"
        )
    # the out-of-fold latents follow the reference's rotation
    np.testing.assert_allclose(
        rotated.obsm["X_cv_srrr"],
        m.obsm["X_cv_srrr"] @ np.array([[0.0, -1.0], [1.0, 0.0]]),
        atol=1e-6,
    )
    with pytest.raises(mv.InputError, match="align_to"):
        mv.tl.cross_validate(m, method="srrr", return_predictions=True, align_to="X_missing")


def test_coupled_cross_modal_interval_covers_new_cells():
    from test_coupled_model import _mdata, _planted

    xr, xe, names, _ = _planted(n=600)
    m = _mdata(xr[:300], xe[:300], names[:300])
    new = _mdata(xr[300:], xe[300:], names[300:])
    model = mv.tl.coupled_autoencoder(
        m,
        model_kwargs={"hidden": (16, 16)},
        train_kwargs={"steps_per_epoch": 40},
        random_state=0,
        max_epochs=10,
        batch_size=60,
        return_model=True,
    )
    record = m.uns["cae"]["prediction_interval"]
    assert record["level"] == 0.9 and set(record["halfwidth"]) == {"rna->ephys", "ephys->rna"}
    width = np.array([record["halfwidth"]["rna->ephys"][str(f)] for f in new["ephys"].var_names])
    pred = np.asarray(model.predict(new, source="rna", target="ephys"), dtype=float)
    coverage = float((np.abs(new["ephys"].X - pred) <= width).mean())
    assert 0.8 <= coverage <= 0.98, coverage  # one calibration draw of 30 cells
    mv.tl.cross_modal_predict(m, source="rna", target="ephys")
    layers = m["ephys"].layers
    np.testing.assert_allclose(
        layers["cae_from_rna_upper"] - layers["cae_from_rna"],
        width[None, :] + 0 * layers["cae_from_rna"],
        rtol=1e-5,
    )
    np.testing.assert_allclose(
        layers["cae_from_rna"] - layers["cae_from_rna_lower"],
        layers["cae_from_rna_upper"] - layers["cae_from_rna"],
        rtol=1e-4,
    )


def test_noise_feature_is_named_at_fit_and_at_prediction():
    """Issue 21, item 2: a planted pure-noise protein is predicted no better than its mean."""
    from test_coupled_model import _mdata, _planted

    xr, xe, names, _ = _planted(n=400)
    xe = xe.copy()
    xe[:, 0] = np.random.default_rng(5).standard_normal(len(names))  # feature 0: noise
    m = _mdata(xr, xe, names)
    noise = str(m["ephys"].var_names[0])
    kw = {
        "cross_modal": "off",  # the paper's loss: the default's noise-feature R² is +0.006
        "model_kwargs": {"hidden": (16, 16)},
        "train_kwargs": {"steps_per_epoch": 40},
        "random_state": 0,
        "max_epochs": 10,
        "batch_size": 60,
    }
    with pytest.warns(mv.FitQualityWarning, match="worse than their mean by rna->ephys") as fit:
        mv.tl.coupled_autoencoder(m, **kw)
    message = next(str(w.message) for w in fit if "rna->ephys" in str(w.message))
    assert f"{noise} " in message
    per_feature = m.uns["cae"]["r2_heldout_cross_modal_per_feature"]["rna->ephys"]
    assert per_feature[noise] <= 0 < min(v for f, v in per_feature.items() if f != noise)
    with pytest.warns(mv.FitQualityWarning, match=noise):
        mv.tl.cross_modal_predict(m, source="rna", target="ephys")
    r2 = m["ephys"].var["cae_from_rna_r2_heldout"]
    assert r2[noise] <= 0 and (r2.drop(noise) > 0).all()
