"""Bad input to the coupled-autoencoder family and CCA: clear errors, objects untouched.

Each case asserts the exception type, that the message names the argument (or says the
fix), and that the user's MuData is deep-unchanged afterwards (X, layers, obsm, varm, uns).
"""

from __future__ import annotations

import warnings

import anndata as ad
import mudata as md
import numpy as np
import pytest
import torch

import multiviz as mv
from multiviz import InputError
from multiviz.models import CoupledAutoencoder

torch.set_num_threads(1)
FAST = {"max_epochs": 4, "train_kwargs": {"steps_per_epoch": 25}, "batch_size": 64}


def _mdata(n=150, n_genes=40, n_feat=6, seed=0):
    rng = np.random.default_rng(seed)
    f = rng.normal(size=(n, 2))
    xr = np.tanh(f @ rng.normal(size=(2, n_genes))) + 0.3 * rng.normal(size=(n, n_genes))
    xe = f @ rng.normal(size=(2, n_feat)) + 0.3 * rng.normal(size=(n, n_feat))
    names = [f"cell{i}" for i in range(n)]
    rna = ad.AnnData(((xr - xr.mean(0)) / xr.std(0)).astype(np.float32))
    eph = ad.AnnData(((xe - xe.mean(0)) / xe.std(0)).astype(np.float32))
    rna.obs_names = eph.obs_names = names
    rna.var_names = [f"g{i}" for i in range(n_genes)]
    eph.var_names = [f"e{i}" for i in range(n_feat)]
    return md.MuData({"rna": rna, "ephys": eph})


def _snap(mdata: md.MuData) -> dict:
    def arr(x):
        return x.toarray() if hasattr(x, "toarray") else np.array(x, copy=True)

    out = {
        "obsm": {k: arr(v) for k, v in mdata.obsm.items()},
        "uns": sorted(mdata.uns.keys()),
        "obs_names": list(mdata.obs_names),
    }
    for m, a in mdata.mod.items():
        out[m] = {
            "X": arr(a.X),
            "layers": {k: arr(v) for k, v in a.layers.items()},
            "obsm": {k: arr(v) for k, v in a.obsm.items()},
            "varm": {k: arr(v) for k, v in a.varm.items()},
            "uns": sorted(a.uns.keys()),
            "var_names": list(a.var_names),
        }
    return out


def _same(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], dict):
            _same(a[k], b[k])
        elif isinstance(a[k], np.ndarray):
            np.testing.assert_array_equal(a[k], b[k])
        else:
            assert a[k] == b[k]


@pytest.fixture
def mdata():
    return _mdata()


@pytest.mark.parametrize(
    ("kwargs", "arg"),
    [
        ({"max_epochs": -1}, "max_epochs"),  # unbounded: rejected, never a hang
        ({"max_epochs": 0}, "max_epochs"),
        ({"max_epochs": 2.5}, "max_epochs"),
        ({"batch_size": 1}, "batch_size"),
        ({"lam": -1.0}, "lam"),
        ({"lam": float("nan")}, "lam"),
        ({"n_latent": 0}, "n_latent"),
        ({"early_stopping": "yes"}, "early_stopping"),
        ({"enable_progress_bar": "yes"}, "enable_progress_bar"),
        ({"strategy": "ddp"}, "strategy"),
        ({"coupling": "cosine"}, "coupling"),
        ({"train_kwargs": {"steps_per_epok": 10}}, "steps_per_epoch"),  # closest match named
        ({"train_kwargs": {"lr": 0.0}}, "lr"),
        ({"model_kwargs": {"dropout": 1.5}}, "dropout"),
        ({"model_kwargs": {"hidden": ()}}, "hidden"),
        ({"model_kwargs": {"n_hiden": 3}}, "n_hiden"),
        ({"key_added": ""}, "key_added"),
    ],
)
def test_coupled_autoencoder_rejects_bad_arguments(mdata, kwargs, arg):
    before = _snap(mdata)
    with pytest.raises(InputError, match=arg):
        mv.tl.coupled_autoencoder(mdata, **kwargs)
    _same(before, _snap(mdata))


def test_raw_counts_and_unscaled_features_are_refused():
    m = _mdata()
    counts = np.random.default_rng(0).poisson(30, size=m["rna"].shape).astype(np.float32)
    m.mod["rna"].X = counts
    before = _snap(m)
    with pytest.raises(InputError, match="prepare_paired"):
        mv.tl.coupled_autoencoder(m, **FAST)
    _same(before, _snap(m))
    m = _mdata()
    m.mod["ephys"].X = m["ephys"].X * 300 + 1000  # raw ephys (e.g. R_input in MOhm)
    with pytest.raises(InputError, match="not standardised"):
        mv.tl.coupled_autoencoder(m, **FAST)


def test_views_backed_and_duplicated_names(mdata, tmp_path):
    view = mdata[:100]
    with pytest.raises(InputError, match=r"view.*\.copy\(\)"):
        mv.tl.coupled_autoencoder(view, **FAST)
    with pytest.raises(InputError, match="view"):
        mv.tl.cca(view)
    dup = _mdata()
    dup.mod["rna"].var_names = ["g0"] * 2 + [f"g{i}" for i in range(2, 40)]
    before = _snap(dup)
    with pytest.raises(InputError, match="var_names_make_unique"):
        mv.tl.coupled_autoencoder(dup, **FAST)
    with pytest.raises(InputError, match="var_names_make_unique"):
        mv.tl.cca(dup)
    _same(before, _snap(dup))


def test_diverging_fit_raises_fit_error_and_writes_nothing(mdata):
    before = _snap(mdata)
    with pytest.raises(mv.FitError, match="lr"):
        mv.tl.coupled_autoencoder(
            mdata,
            max_epochs=4,
            batch_size=64,
            train_kwargs={"steps_per_epoch": 25, "lr": 1e4},
        )
    _same(before, _snap(mdata))


def test_model_train_bounds_and_early_stopping(mdata):
    model = CoupledAutoencoder(mdata, hidden=(8,))
    for bad in (-1, 0):
        with pytest.raises(InputError, match="max_epochs"):
            model.train(max_epochs=bad)
    with pytest.raises(InputError, match="train_size=0.9"):
        model.train(max_epochs=2, early_stopping=True)
    with pytest.raises(InputError, match="gradient_clip_val"):
        model.train(max_epochs=2, gradient_clip_vall=1.0)


def test_cca_arguments_and_constant_feature(mdata):
    before = _snap(mdata)
    for kwargs, arg in (
        ({"n_components": 0}, "n_components"),
        ({"n_pcs": [5]}, "n_pcs"),
        ({"n_pcs": -2}, "n_pcs"),
        ({"modalities": ("rna",)}, "modalities"),
        ({"n_components": 30}, "n_components"),
    ):
        with pytest.raises(InputError, match=arg):
            mv.tl.cca(mdata, **kwargs)
    _same(before, _snap(mdata))
    # a constant feature is dropped with a warning naming it; nothing NaN is written
    mdata.mod["ephys"].X[:, 2] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mv.tl.cca(mdata, n_pcs=5)
    assert mdata.uns["cca"]["dropped_features"]["ephys"] == ["e2"]
    assert np.isfinite(mdata.obsm["X_cca_ephys"]).all()
    assert np.isfinite(mdata.uns["cca"]["correlations"]).all()
    assert np.all(mdata["ephys"].varm["cca_weights"][2] == 0)


def test_cross_modal_predict_arguments(mdata):
    before = _snap(mdata)
    with pytest.raises(InputError, match="run `mv.tl.coupled_autoencoder"):
        mv.tl.cross_modal_predict(mdata)
    with pytest.raises(InputError, match="batch_size"):
        mv.tl.cross_modal_predict(mdata, batch_size=0)
    with pytest.raises(InputError, match="key_added"):
        mv.tl.cross_modal_predict(mdata, key_added="")
    _same(before, _snap(mdata))
