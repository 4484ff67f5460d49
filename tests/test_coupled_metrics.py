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


def test_gmm_consistency(blobs):
    z, _ = blobs
    same = mv.metrics.gmm_consistency(z, z, z, n_components=4, n_init=2)
    assert same == {"ami": 1.0, "ari": 1.0}
    rng = np.random.default_rng(3)
    noisy = z + 0.3 * rng.normal(size=z.shape)
    got = mv.metrics.gmm_consistency(z, z, noisy, n_components=4, n_init=2, random_state=0)
    gmm = GaussianMixture(4, n_init=2, random_state=0).fit(z)
    assert got["ami"] == pytest.approx(
        adjusted_mutual_info_score(gmm.predict(z), gmm.predict(noisy))
    )
    assert 0.5 < got["ami"] <= 1.0


def test_metric_errors(blobs):
    z, y = blobs
    with pytest.raises(InputError, match="NaN"):
        mv.metrics.qda_accuracy(np.full_like(z, np.nan), y, z, y)
    with pytest.raises(InputError, match="Fewer than two classes"):
        mv.metrics.qda_accuracy(z, y, z, y, min_cells=100)
    with pytest.raises(InputError, match="same cells"):
        mv.metrics.gmm_consistency(z, z, z[:10], n_components=2)
