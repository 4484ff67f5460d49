"""A fit that does not beat a trivial baseline says so (issue 11, item 4)."""

from __future__ import annotations

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
    mv.tl.sbnn(m, gene_decoder_epochs=0)  # the paper's schedule and learning rates
    assert WARNING in caplog.text
    assert "mv.tl.srrr" in caplog.text  # names a fix
    assert "sbnn" in m.uns  # a warning, not an error: the fit is written


@pytest.mark.slow
def test_silent_on_m1(m1_path, caplog):
    m = md.read_h5mu(m1_path)
    mv.pp.prepare_paired(m, x="rna", y="ephys", n_top_genes=1000, exclude_genes=None)
    mv.tl.sbnn(m, gene_decoder_epochs=0)
    assert WARNING not in caplog.text
    assert m.uns["sbnn"]["r2_train"] > 0.3
