"""Every `mv.tl.sbnn` / `mv.tl.srrr` fit reports a held-out R² and warns on a weak fit (issue 22).

Planted truth: `simulate_patchseq` targets are driven by 10 planted genes, so a fit must
score well on cells it never saw; pure-noise targets must score about 0 there and warn.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from _objects import assert_unchanged, snapshot
from _sbnn_helpers import one_torch_thread  # noqa: F401

import multiviz as mv

TINY = {"pretrain": False, "no_pretrain_epochs": 60, "pruned_epochs": 60, "gene_decoder_epochs": 0}


@pytest.fixture(scope="module")
def planted():
    m = mv.datasets.simulate_patchseq(n_cells=300, n_genes=150, random_state=0)
    mv.pp.prepare_paired(m, gene_selection="none")
    return m


def _random_targets(n_cells: int):
    m = mv.datasets.simulate_patchseq(n_cells=n_cells, n_genes=150, random_state=1)
    mv.pp.prepare_paired(m, gene_selection="none")
    noise = np.random.default_rng(0).standard_normal(m["ephys"].shape)
    m["ephys"].X = ((noise - noise.mean(0)) / noise.std(0)).astype(np.float32)
    return m


@pytest.mark.parametrize("method", ["srrr", "sbnn"])
def test_planted_signal_scores_on_held_out_cells_without_warning(planted, method):
    m = planted.copy()
    kw = {"n_genes": 10, **(TINY if method == "sbnn" else {})}
    with warnings.catch_warnings():
        warnings.simplefilter("error", mv.FitQualityWarning)
        getattr(mv.tl, method)(m, **kw)
    out = m.uns[method]
    assert out["n_heldout"] == 30 and len(out["heldout_cells"]) == 30
    assert out["r2_heldout"] > 0.5  # the planted drivers predict cells never trained on
    assert set(out["r2_heldout_per_feature"]) == set(m["ephys"].var_names)
    assert out["r2_train"] >= out["r2_heldout"] - 0.05
    if method == "sbnn":  # the linear baseline, fitted on the same training cells
        assert 0.3 < out["r2_heldout_linear"] < 1.0


@pytest.mark.parametrize("method", ["srrr", "sbnn"])
def test_random_targets_warn_with_held_out_numbers(method):
    m = _random_targets(100)
    kw = {
        "n_genes": 10,
        **({"gene_decoder_epochs": 0} if method == "sbnn" else {}),
    }  # paper schedule
    with pytest.warns(mv.FitQualityWarning, match="held-out cells") as record:
        getattr(mv.tl, method)(m, **kw)
    assert any("mean predictor" in str(w.message) for w in record)
    assert m.uns[method]["r2_heldout"] <= 0.0 < m.uns[method]["r2_train"]
    assert method in m.uns  # a warning, not an error: the fit is written


def test_train_size_one_trains_on_every_cell(planted):
    m = planted.copy()
    mv.tl.srrr(m, n_genes=10, train_size=1.0)
    assert "r2_heldout" not in m.uns["srrr"] and "heldout_cells" not in m.uns["srrr"]
    pred, Y = m["ephys"].layers["srrr_pred"], m["ephys"].X
    direct = 1 - np.sum((Y - pred) ** 2) / np.sum((Y - Y.mean(0)) ** 2)
    assert m.uns["srrr"]["r2_train"] == pytest.approx(direct, rel=1e-4)


def test_split_is_deterministic_and_seeded(planted):
    a, b, c = planted.copy(), planted.copy(), planted.copy()
    for m, seed in ((a, 0), (b, 0), (c, 1)):
        mv.tl.srrr(m, n_genes=10, random_state=seed)
    assert list(a.uns["srrr"]["heldout_cells"]) == list(b.uns["srrr"]["heldout_cells"])
    assert list(a.uns["srrr"]["heldout_cells"]) != list(c.uns["srrr"]["heldout_cells"])


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.1, "0.9", float("nan")])
def test_bad_train_size_is_refused_before_any_work(planted, bad):
    m = planted.copy()
    before = snapshot(m)
    with pytest.raises(mv.InputError, match="train_size"):
        mv.tl.srrr(m, n_genes=10, train_size=bad)
    assert_unchanged(m, before)


def test_too_few_training_cells_names_train_size():
    m = mv.datasets.simulate_patchseq(n_cells=50, n_genes=60, random_state=0)
    mv.pp.prepare_paired(m, gene_selection="none")
    before = snapshot(m)
    with pytest.raises(mv.InputError, match=r"train_size=0\.5.*needs at least 40"):
        mv.tl.sbnn(m, n_genes=5, train_size=0.5)  # pre-training needs 40 training cells
    assert_unchanged(m, before)
