"""Bad input to ``mv.tl.sbnn`` / ``mv.tl.srrr`` / ``SBNN.train``: a clear error, nothing changed."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from _sbnn_helpers import (  # noqa: F401
    TINY,
    deep_same,
    deep_snapshot,
    one_torch_thread,
    simulated,
)

import multiviz as mv
from multiviz import InputError
from multiviz._validate import FitError


@pytest.fixture(scope="module")
def sim():
    m = simulated(n_cells=120, n_genes=60)
    m["rna"].layers["counts"] = sp.csr_matrix(m["rna"].layers["counts"])  # sparse included
    return m


SBNN_CASES = [
    ({"bottleneck": 0}, "bottleneck"),
    ({"lasso": -1}, "lasso"),
    ({"pruned_epochs": -3}, "pruned_epochs"),
    ({"lr": 0}, "lr"),
    ({"lr_finetune": -1e-4}, "lr_finetune"),
    ({"batch_size": 0}, "batch_size"),
    ({"pruned_epoch": 10}, "pruned_epochs"),  # misspelt: the valid name is suggested
    ({"early_stopping": True}, "early_stopping"),
    ({"max_epochs": 0}, "max_epochs"),
    ({"val_fraction": 1.0}, "val_fraction"),
    ({"handover": "middle"}, "handover"),
    ({"precision": 16}, "precision"),
    ({"gene_decoder_epochs": -1}, "gene_decoder_epochs"),
    ({"n_genes": 0}, "n_genes"),
    (
        {"pretrain_epochs": 0, "frozen_epochs": 0, "unfrozen_epochs": 0, "pruned_epochs": 0},
        "pretrain_epochs",
    ),
    ({"random_state": None}, "random_state"),
]


@pytest.mark.parametrize(("kwargs", "arg"), SBNN_CASES, ids=[c[1] for c in SBNN_CASES])
def test_sbnn_rejects_bad_arguments(sim, kwargs, arg):
    m = sim.copy()
    before = deep_snapshot(m)
    with pytest.raises(InputError, match=arg):
        mv.tl.sbnn(m, **kwargs)
    assert deep_same(before, deep_snapshot(m))


SRRR_CASES = [
    ({"rank": 0}, "rank"),
    ({"n_genes": None, "lam": -1.0}, "lam"),
    ({"alpha": 2.0}, "alpha"),
    ({"n_genes": 0}, "n_genes"),
    ({"relaxed": "yes"}, "relaxed"),
]


@pytest.mark.parametrize(("kwargs", "arg"), SRRR_CASES, ids=[c[1] for c in SRRR_CASES])
def test_srrr_rejects_bad_arguments(sim, kwargs, arg):
    m = sim.copy()
    before = deep_snapshot(m)
    with pytest.raises(InputError, match=arg):
        mv.tl.srrr(m, **kwargs)
    assert deep_same(before, deep_snapshot(m))


def test_train_rejects_unknown_keyword_listing_valid_names(sim):
    from multiviz.tl._paired_data import full_arrays
    from multiviz.tl._sbnn import _internal_mudata

    data = full_arrays(sim)
    inner = _internal_mudata(data.X, data.Y, data.gene_names, data.feature_names)
    mv.models.SBNN.setup_mudata(inner, x="rna", y="y")
    model = mv.models.SBNN(inner)
    with pytest.raises(InputError, match="pruned_epochs") as err:
        model.train(pruned_epoch=3)
    assert "Valid names" in str(err.value)


@pytest.mark.parametrize("tool", ["sbnn", "srrr"])
def test_duplicated_names_rejected(sim, tool):
    for axis in ("var", "obs"):
        m = sim.copy()
        names = list(getattr(m["rna"], f"{axis}_names"))
        names[1] = names[0]
        if axis == "var":
            m["rna"].var_names = names
        else:
            for mod in m.mod.values():
                mod.obs_names = names
            m.update()
        before = deep_snapshot(m)
        with pytest.raises(InputError, match=f"{axis}_names_make_unique"):
            getattr(mv.tl, tool)(m)
        assert deep_same(before, deep_snapshot(m))


@pytest.mark.parametrize("tool", ["sbnn", "srrr"])
def test_view_rejected_with_fix(sim, tool):
    view = sim[:100]
    with pytest.raises(InputError, match=r"\.copy\(\)"):
        getattr(mv.tl, tool)(view)


@pytest.mark.parametrize("tool", ["sbnn", "srrr"])
def test_raw_counts_refused(tool):
    """Raw counts never give a training R²: the call refuses and names the fix."""
    raw = mv.datasets.simulate_patchseq(n_cells=120, n_genes=60, random_state=0)
    before = deep_snapshot(raw)
    with pytest.raises(InputError, match="prepare_paired"):
        getattr(mv.tl, tool)(raw)
    assert deep_same(before, deep_snapshot(raw))
    assert "sbnn" not in raw.uns and "srrr" not in raw.uns


def test_unscaled_targets_refused(sim):
    m = sim.copy()
    m["ephys"].X = m["ephys"].X * 50.0 + 100.0
    with pytest.raises(InputError, match="not z-scored"):
        mv.tl.srrr(m)


def test_constant_target_dropped_with_warning(sim, caplog):
    m = sim.copy()
    m["ephys"].X[:, 2] = 0.0
    name = m["ephys"].var_names[2]
    mv.tl.srrr(m, rank=2, n_genes=5)
    assert name in caplog.text and "constant" in caplog.text
    assert np.isfinite(m.uns["srrr"]["r2_train"])
    assert name not in m.uns["srrr"]["r2_train_per_feature"]
    assert list(m.uns["srrr"]["features_dropped"]) == [name]
    np.testing.assert_array_equal(m["ephys"].layers["srrr_pred"][:, 2], 0.0)
    assert np.isfinite(m["ephys"].layers["srrr_pred"]).all()


def test_gene_mask_applied_before_densifying(monkeypatch):
    """With `genes=`, only the kept columns of a sparse X are ever made dense."""
    from multiviz.tl import _paired_data

    m = simulated(n_cells=120, n_genes=60)
    m["rna"].X = sp.csr_matrix(m["rna"].X)
    shapes = []
    real = _paired_data._dense

    def spy(M):
        shapes.append(M.shape)
        return real(M)

    monkeypatch.setattr(_paired_data, "_dense", spy)
    keep = list(m["rna"].var_names[:20])
    data = _paired_data.full_arrays(m, genes=keep)
    assert data.X.shape == (120, 20)
    assert (120, 60) not in shapes


@pytest.mark.parametrize("lr", [1e4, 10.0])
def test_diverging_fit_raises_and_leaves_object_unchanged(sim, lr):
    m = sim.copy()
    before = deep_snapshot(m)
    with pytest.raises(FitError, match="phase") as err:
        mv.tl.sbnn(m, n_genes=5, lr=lr, lr_finetune=lr, gene_decoder_epochs=0, **TINY)
    assert f"lr={lr:g}" in str(err.value)
    assert deep_same(before, deep_snapshot(m))
    assert "sbnn" not in m.uns and "X_sbnn" not in m.obsm
