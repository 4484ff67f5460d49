"""Coupling functions (Gala et al. 2019, eqs. 2-6) and the degenerate-representation experiment."""

from __future__ import annotations

import anndata as ad
import mudata as md
import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from multiviz.models import CoupledAutoencoder
from multiviz.models.coupled import batchnorm, euclidean, fullcov, msv
from multiviz.models.coupled._coupling import min_variance

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 3)) @ np.diag([3.0, 1.0, 0.2])
    b = a + 0.1 * rng.normal(size=(50, 3))
    return a, b


def test_euclidean_and_batchnorm_match_numpy(pair):
    a, b = pair
    ta, tb = torch.tensor(a), torch.tensor(b)
    assert float(euclidean(ta, tb)) == pytest.approx(np.mean(np.sum((a - b) ** 2, axis=1)))

    def std(x):
        return (x - x.mean(0)) / x.std(0, ddof=1)

    expected = np.mean(np.sum((std(a) - std(b)) ** 2, axis=1))
    assert float(batchnorm(ta, tb)) == pytest.approx(expected, rel=1e-4)  # eps 1e-6 on the SD


def test_fullcov_matches_numpy_whitening(pair):
    a, b = pair

    def whiten(x):
        c = x - x.mean(0)
        evals, evecs = np.linalg.eigh(np.cov(c, rowvar=False))
        return c @ evecs @ np.diag(evals**-0.5) @ evecs.T

    expected = np.mean(np.sum((whiten(a) - whiten(b)) ** 2, axis=1))
    got = float(fullcov(torch.tensor(a), torch.tensor(b)))
    assert got == pytest.approx(expected, rel=1e-4)


@pytest.mark.parametrize("method", ["svd", "eigh"])
def test_msv_matches_numpy(pair, method):
    a, b = pair
    ta, tb = torch.tensor(a), torch.tensor(b)
    mins = [np.linalg.eigvalsh(np.cov(x, rowvar=False)).min() for x in (a, b)]
    # smallest squared singular value of the centred batch / (B - 1) = smallest covariance eigenvalue
    sv = np.linalg.svd(a - a.mean(0), compute_uv=False)[-1] ** 2 / (len(a) - 1)
    assert float(min_variance(ta, method)) == pytest.approx(sv, rel=1e-6)
    expected = np.mean(np.sum((a - b) ** 2, axis=1)) / max(min(mins), 0.01)
    assert float(msv(ta, tb, method=method)) == pytest.approx(expected, rel=1e-6)
    # the floor: a collapsed arm (zero smallest variance) divides by 0.01, not by 0
    flat = ta.clone()
    flat[:, 2] = 0.0
    expected = np.mean(np.sum((flat.numpy() - b) ** 2, axis=1)) / 0.01
    assert float(msv(flat, tb, method=method, floor=0.01)) == pytest.approx(expected, rel=1e-6)


def test_msv_is_differentiable():
    z = torch.randn(40, 3, requires_grad=True)
    msv(z, torch.randn(40, 3)).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


@pytest.fixture(scope="module")
def digits_twice():
    X = load_digits().data.astype(np.float32)
    X = (X - X.mean(0)) / (X.std(0) + 1.0)
    names = [f"d{i}" for i in range(len(X))]
    a, b = ad.AnnData(X.copy()), ad.AnnData(X.copy())
    a.obs_names = b.obs_names = names
    return md.MuData({"a": a, "b": b})


def _fit_digits(mdata, coupling, lam):
    model = CoupledAutoencoder(
        mdata,
        modalities=("a", "b"),
        n_latent=2,
        coupling=coupling,
        lam=lam,
        alpha=1.0,
        hidden=(64, 32),
        dropout=0.2,
        noise=0.0,
        random_state=0,
    )
    model.train(max_epochs=6, train_size=1.0)  # 600 steps of batch 200
    z = model.get_latent_representation()["a"]
    s = np.linalg.svd(z - z.mean(0), compute_uv=False)
    return z.std(0).mean(), s[1] / s[0]


def test_degenerate_representations_fig1b(digits_twice):
    """Paper Fig. 1B on sklearn digits, both arms fed the same data, λ = 10."""
    scale0, _ = _fit_digits(digits_twice, "euclidean", 0.0)
    scale_euc, _ = _fit_digits(digits_twice, "euclidean", 10.0)
    _, ratio_bn = _fit_digits(digits_twice, "batchnorm", 10.0)
    _, ratio_fc = _fit_digits(digits_twice, "fullcov", 10.0)
    _, ratio_msv = _fit_digits(digits_twice, "msv", 10.0)
    # (i) plain distance: the latent shrinks towards 0 (measured ~0.09 vs ~3.9 uncoupled)
    assert scale_euc < 0.1 * scale0
    # (ii) per-dimension batch norm: collapse towards one dimension (measured ratio ~0.11)
    assert ratio_bn < 0.3
    # (iii, iv) full covariance and minimum singular value keep a 2-d spread (~0.9, ~0.98)
    assert ratio_fc > 0.6
    assert ratio_msv > 0.6
