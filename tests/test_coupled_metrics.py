"""mv.metrics.qda_accuracy / cross_modal_accuracy / gmm_consistency against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
from sklearn.metrics import adjusted_mutual_info_score
from sklearn.mixture import GaussianMixture

import multiviz as mv
from multiviz import InputError


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=4, size=(5, 3))
    y = np.repeat(np.array(list("abcde")), [40, 40, 40, 40, 4])  # "e": 4 cells < 6
    z = centres[np.searchsorted(list("abcde"), y)] + rng.normal(size=(len(y), 3))
    return z, y


def test_qda_accuracy_drops_small_classes_in_train_and_test(blobs):
    z, y = blobs
    idx = np.random.default_rng(1).permutation(len(y))
    tr, te = idx[:120], idx[120:]
    got = mv.metrics.qda_accuracy(z[tr], y[tr], z[te], y[te])
    kept = [c for c, n in zip(*np.unique(y[tr], return_counts=True)) if n >= 6]
    assert "e" not in kept
    m_tr, m_te = np.isin(y[tr], kept), np.isin(y[te], kept)
    qda = QuadraticDiscriminantAnalysis(reg_param=1e-2).fit(z[tr][m_tr], y[tr][m_tr])
    expected = np.mean(qda.predict(z[te][m_te]) == y[te][m_te])
    assert got == pytest.approx(expected)
    assert got > 0.75  # measured 0.85 (overlapping blobs)


def test_cross_modal_accuracy_uses_source_fit_and_target_test(blobs):
    z, y = blobs
    rng = np.random.default_rng(2)
    z_other = z + 0.5 * rng.normal(size=z.shape)
    shuffled = z_other[rng.permutation(len(y))]
    good = mv.metrics.cross_modal_accuracy(z[:150], y[:150], z_other[150:], y[150:])
    bad = mv.metrics.cross_modal_accuracy(z[:150], y[:150], shuffled[150:], y[150:])
    assert good > 0.8 and bad < 0.6


def test_gmm_consistency_fits_one_mixture_per_arm(blobs):
    z, _ = blobs
    same = mv.metrics.gmm_consistency(z, z, z, z, n_components=4, n_init=2)
    assert same == {"ami": 1.0, "ari": 1.0}
    rng = np.random.default_rng(3)
    noisy = z + 0.3 * rng.normal(size=z.shape)
    got = mv.metrics.gmm_consistency(z, noisy, z, noisy, n_components=4, n_init=2, random_state=0)
    # the paper: separate mixtures fitted on each arm's training latents
    ga = GaussianMixture(4, n_init=2, random_state=0).fit(z)
    gb = GaussianMixture(4, n_init=2, random_state=0).fit(noisy)
    assert got["ami"] == pytest.approx(adjusted_mutual_info_score(ga.predict(z), gb.predict(noisy)))
    assert 0.5 < got["ami"] <= 1.0
    # unrelated arm B: no agreement
    junk = rng.normal(size=z.shape)
    low = mv.metrics.gmm_consistency(z, junk, z, junk, n_components=4, n_init=2)
    assert low["ami"] < 0.1


def test_qda_equal_priors_is_the_default(blobs):
    z, y = blobs
    rng = np.random.default_rng(5)
    # a big class overlapping a small one: frequency priors favour the big one
    zz = np.vstack([rng.normal(size=(300, 3)), rng.normal(size=(30, 3)) + 0.7])
    yy = np.array(["big"] * 300 + ["small"] * 30)
    idx = rng.permutation(len(yy))
    tr, te = idx[:200], idx[200:]
    eq = QuadraticDiscriminantAnalysis(reg_param=1e-2, priors=[0.5, 0.5]).fit(zz[tr], yy[tr])
    expected = np.mean(eq.predict(zz[te]) == yy[te])
    assert mv.metrics.qda_accuracy(zz[tr], yy[tr], zz[te], yy[te]) == pytest.approx(expected)
    emp = mv.metrics.qda_accuracy(zz[tr], yy[tr], zz[te], yy[te], priors="empirical")
    assert emp > expected  # frequency priors win accuracy by predicting "big"


def test_celltype_consistency_levels_and_shared_filter(blobs):
    from multiviz.metrics._consistency import celltype_consistency, kept_classes

    z, y = blobs
    fam = np.where(np.isin(y, ["a", "b"]), "F1", "F2")
    y = y.astype(object)
    y[:3] = ""  # missing labels never count
    rng = np.random.default_rng(7)
    ze = z + 0.3 * rng.normal(size=z.shape)
    idx = rng.permutation(len(y))
    tr, te = idx[:120], idx[120:]
    out = celltype_consistency(
        {"t": z[tr], "e": ze[tr]},
        {"t": z[te], "e": ze[te]},
        {"type": y[tr], "family": fam[tr]},
        {"type": y[te], "family": fam[te]},
        n_init=2,
    )
    assert set(out) == {"type", "family"}
    kept = kept_classes(y[tr])
    assert "" not in kept and "e" not in kept  # "e" has 4 cells < 6
    t = out["type"]
    assert t["n_classes"] == len(kept) and t["n_test"] == int(np.isin(y[te], kept).sum())
    assert t["qda_t"] == pytest.approx(mv.metrics.qda_accuracy(z[tr], y[tr], z[te], y[te]))
    assert t["qda_t_to_e"] == pytest.approx(
        mv.metrics.cross_modal_accuracy(z[tr], y[tr], ze[te], y[te])
    )
    assert t["qda_t"] > 0.75 and t["qda_t_to_e"] > 0.6 and t["gmm_ami"] > 0.5
    assert out["family"]["n_classes"] == 2 and out["family"]["qda_t"] > t["qda_t"]


def test_metric_errors(blobs):
    z, y = blobs
    with pytest.raises(InputError, match="NaN"):
        mv.metrics.qda_accuracy(np.full_like(z, np.nan), y, z, y)
    with pytest.raises(InputError, match="Fewer than two classes"):
        mv.metrics.qda_accuracy(z, y, z, y, min_cells=100)
    with pytest.raises(InputError, match="same cells"):
        mv.metrics.gmm_consistency(z, z, z, z[:10], n_components=2)
