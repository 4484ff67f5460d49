"""A fit that does not beat a trivial baseline says so (issue 11, item 4)."""

from __future__ import annotations

import warnings

import mudata as md
import numpy as np
import pytest
from _sbnn_helpers import one_torch_thread  # noqa: F401

import multiviz as mv

WARNING = "does not beat"


def test_warns_on_80_cells_with_random_targets(caplog):
    """80 cells whose targets are pure noise: the fit must not pass silently."""
    m = mv.datasets.simulate_patchseq(n_cells=80, n_genes=200, random_state=0)
    mv.pp.prepare_paired(m, x="rna", y="ephys", gene_selection="none")
    noise = np.random.default_rng(0).standard_normal(m["ephys"].shape)
    m["ephys"].X = ((noise - noise.mean(0)) / noise.std(0)).astype(np.float32)
    with pytest.warns(mv.FitQualityWarning, match=WARNING) as record:
        mv.tl.sbnn(m, gene_decoder_epochs=0)  # the paper's schedule and learning rates
    ours = [w for w in record if issubclass(w.category, mv.FitQualityWarning)]
    assert ours[0].filename == __file__  # points at the user's call, not at multiviz
    assert WARNING in caplog.text  # and in the log, for log files
    assert "mv.tl.srrr" in caplog.text  # names a fix
    assert "sbnn" in m.uns  # a warning, not an error: the fit is written


@pytest.mark.slow
def test_silent_on_m1(m1_path, caplog):
    m = md.read_h5mu(m1_path)
    mv.pp.prepare_paired(m, x="rna", y="ephys", n_top_genes=1000, exclude_genes=None)
    mv.tl.sbnn(m, gene_decoder_epochs=0)
    assert WARNING not in caplog.text
    assert m.uns["sbnn"]["r2_train"] > 0.3


def _random_targets(n_cells: int):
    m = mv.datasets.simulate_patchseq(n_cells=n_cells, n_genes=200, random_state=0)
    mv.pp.prepare_paired(m, x="rna", y="ephys", gene_selection="none")
    noise = np.random.default_rng(0).standard_normal(m["ephys"].shape)
    m["ephys"].X = ((noise - noise.mean(0)) / noise.std(0)).astype(np.float32)
    m["ephys"].layers["unscaled"] = m["ephys"].X.copy()
    return m


def test_cross_validate_warns_when_held_out_r2_does_not_beat_the_mean(caplog):
    """sRRR on 80 cells of random targets: a positive training R², a held-out R² <= 0."""
    m = _random_targets(80)
    with pytest.warns(mv.FitQualityWarning, match="on held-out cells"):
        df = mv.tl.cross_validate(m, method="srrr", n_folds=5)
    assert df.query("feature == 'all'")["r2_train"].mean() > 0  # looks fine on training cells
    assert "does not beat the mean predictor on held-out cells" in caplog.text
    assert "n_genes" in caplog.text  # names a fix


def test_cross_validate_silent_on_planted_signal(caplog):
    m = mv.datasets.simulate_patchseq(n_cells=200, n_genes=200, random_state=0)
    mv.pp.prepare_paired(m, x="rna", y="ephys", gene_selection="none")
    with warnings.catch_warnings():
        warnings.simplefilter("error", mv.FitQualityWarning)
        df = mv.tl.cross_validate(m, method="srrr", n_folds=5)
    assert df.query("feature == 'all'")["r2"].mean() > 0.3
    assert WARNING not in caplog.text


def test_cross_validate_reports_the_linear_baseline_on_the_same_folds(caplog):
    """An sBNN given 10 epochs per phase cannot beat sRRR-2: the table holds sRRR's held-out
    R² of the very same folds, and a warning names the linear model."""
    m = mv.datasets.simulate_patchseq(n_cells=90, n_genes=100, random_state=0)
    mv.pp.prepare_paired(m, x="rna", y="ephys", gene_selection="none")
    short = {"pretrain": False, "no_pretrain_epochs": 10, "pruned_epochs": 10}
    with pytest.warns(mv.FitQualityWarning, match="does not beat the linear baseline"):
        df = mv.tl.cross_validate(m, method="sbnn", n_folds=3, n_genes=10, **short)
    lin = mv.tl.cross_validate(m, method="srrr", n_folds=3, rank=2, n_genes=10)
    rows, lin_rows = df.query("feature == 'all'"), lin.query("feature == 'all'")
    np.testing.assert_allclose(rows["r2_linear"].to_numpy(), lin_rows["r2"].to_numpy(), rtol=1e-9)
    assert lin_rows["r2"].mean() > 0.3 and rows["r2"].mean() < lin_rows["r2"].mean()
    assert "does not beat the linear baseline" in caplog.text
    assert "mv.tl.srrr(mdata, rank=2, n_genes=10)" in caplog.text


def test_linear_baseline_warning_only_when_the_sbnn_scores_lower(caplog):
    import pandas as pd

    from multiviz.tl._cv_checks import warn_if_linear_is_better

    better = pd.DataFrame({"feature": ["all"] * 3, "r2": [0.5, 0.4, 0.45], "r2_linear": [0.3] * 3})
    assert not warn_if_linear_is_better(better, 100, {})
    assert "linear baseline" not in caplog.text
    worse = better.assign(r2_linear=[0.6] * 3)
    assert warn_if_linear_is_better(worse, 100, {"bottleneck": 2})
    assert "better in 0 of 3 folds" in caplog.text
