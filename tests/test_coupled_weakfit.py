"""A coupled-autoencoder fit that reconstructs no better than the mean says so (issue 11)."""

from __future__ import annotations

import pytest
import torch

import multiviz as mv
from multiviz.tl._coupled_checks import reconstruction_r2

torch.set_num_threads(1)
WARNING = "no better than the per-feature mean"


@pytest.fixture(scope="module")
def sim():
    m = mv.datasets.simulate_patchseq(n_cells=300, n_genes=200, n_features=8, random_state=0)
    mv.pp.prepare_paired(m, n_top_genes=100)
    return m


def test_two_steps_warn(sim, caplog):
    m = sim.copy()
    with pytest.warns(mv.FitQualityWarning, match=WARNING):
        mv.tl.coupled_autoencoder(
            m, random_state=0, max_epochs=1, batch_size=100, train_kwargs={"steps_per_epoch": 2}
        )
    assert WARNING in caplog.text and "max_epochs" in caplog.text
    assert "X_cae_rna" in m.obsm  # a warning, not an error


def test_trained_fit_is_silent_and_beats_the_mean(sim, caplog):
    m = sim.copy()
    model = mv.tl.coupled_autoencoder(
        m,
        random_state=0,
        max_epochs=20,
        batch_size=100,
        train_kwargs={"steps_per_epoch": 50},
        return_model=True,
    )
    assert WARNING not in caplog.text
    r2 = reconstruction_r2(model, m, ("rna", "ephys"), {})
    assert r2["ephys"] > 0.5 and r2["rna"] > 0.2  # planted structure reconstructed
