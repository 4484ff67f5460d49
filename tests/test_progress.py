"""Progress lines in the log when no progress bar is shown (issue 23, item 6).

``mv.settings.progress_interval`` is set to 0 so that every step logs a line; a tiny fit of
each model family must then log lines naming the model/phase, the epoch out of the total,
the time elapsed and the time left. ``cross_validate`` logs each fold as it finishes.
"""

from __future__ import annotations

import logging
import re

import anndata as ad
import numpy as np
import pytest
import torch

import multiviz as mv

LINE = re.compile(r"^    (?P<label>.+): (epoch|step) \d+/\d+.*, \S+ elapsed, ~\S+ left$")
TINY_SBNN = {"pretrain": False, "no_pretrain_epochs": 2, "pruned_epochs": 2, "n_genes": 5}


@pytest.fixture(autouse=True)
def every_step(monkeypatch):
    """A line at every step; one torch thread; the bar off (pytest is no terminal)."""
    monkeypatch.setattr(mv.settings, "progress_interval", 0)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def paired():
    m = mv.datasets.simulate_patchseq(n_cells=90, n_genes=40, random_state=0)
    mv.pp.prepare_paired(m, x="rna", y="ephys", gene_selection="none")
    return m


def _progress(caplog) -> list[tuple[str, str]]:
    out = []
    for r in caplog.records:
        if r.name == "multiviz" and (hit := LINE.match(r.getMessage())):
            out.append((hit["label"], r.getMessage()))
    return out


def test_sbnn_logs_phase_epoch_elapsed_and_left(paired, caplog):
    with caplog.at_level(logging.INFO, logger="multiviz"):
        mv.tl.sbnn(paired.copy(), gene_decoder_epochs=0, **TINY_SBNN)
    lines = _progress(caplog)
    labels = {label for label, _ in lines}
    assert {"sBNN-2 lasso (1/2)", "sBNN-2 pruned (2/2)"} <= labels, labels
    assert any("epoch 1/4" in line for _, line in lines)


def test_coupled_autoencoder_logs_epoch_and_step(paired, caplog):
    with caplog.at_level(logging.INFO, logger="multiviz"):
        mv.tl.coupled_autoencoder(paired.copy(), max_epochs=2, train_kwargs={"steps_per_epoch": 3})
    lines = [line for label, line in _progress(caplog) if label == "coupled autoencoder"]
    assert lines and "epoch 2/2 (step 3/3)" in lines[-1]


def test_sivae_logs_each_step(caplog):
    x = np.random.default_rng(0).normal(size=(80, 12)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="multiviz"):
        mv.tl.sivae(ad.AnnData(x), max_epochs=2, n_hidden=(8, 8))
    labels = {label for label, _ in _progress(caplog)}
    assert {"siVAE step 1/3 (cell_pretrain)", "siVAE step 3/3 (joint)"} <= labels, labels
    assert any(label.startswith("siVAE step 2/3") for label in labels)


def test_no_lines_with_a_progress_bar_or_when_off(paired, caplog, monkeypatch):
    with caplog.at_level(logging.INFO, logger="multiviz"):
        mv.tl.coupled_autoencoder(
            paired.copy(),
            max_epochs=1,
            train_kwargs={"steps_per_epoch": 2},
            enable_progress_bar=True,
        )
        monkeypatch.setattr(mv.settings, "progress_interval", None)
        mv.tl.coupled_autoencoder(paired.copy(), max_epochs=1, train_kwargs={"steps_per_epoch": 2})
    assert _progress(caplog) == []
    with pytest.raises(ValueError, match="progress_interval"):
        mv.settings.progress_interval = -1


@pytest.mark.parametrize("ensemble", [False, True])
def test_cross_validate_logs_each_fold(paired, caplog, ensemble):
    kw = {**TINY_SBNN, "pretrain": ensemble, "pretrain_epochs": 1, "frozen_epochs": 1}
    kw["unfrozen_epochs"] = 1
    with caplog.at_level(logging.INFO, logger="multiviz"):
        mv.tl.cross_validate(
            paired.copy(), n_folds=3, ensemble=ensemble, linear_baseline=False, **kw
        )
    msgs = [r.getMessage() for r in caplog.records if r.name == "multiviz"]
    folds = [
        m for m in msgs if re.match(r"    sbnn fold \d \(\d of 3\): test R² .+, \S+ elapsed$", m)
    ]
    assert [f.split("(")[1][:6] for f in folds] == ["1 of 3", "2 of 3", "3 of 3"]
    trained = [label for label, _ in _progress(caplog)]
    if ensemble:  # the folds train together: lines per epoch of the stacked network
        assert any(label.startswith("sBNN ensemble (3 members) pretrain") for label in trained)
    else:  # each fold's line comes right after its own fit's progress lines
        first_fold = msgs.index(folds[0])
        assert any(LINE.match(m) for m in msgs[:first_fold])
        assert any(LINE.match(m) for m in msgs[first_fold:])
