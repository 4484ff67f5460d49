"""Every user-facing warning is a ``warnings.warn`` of a multiviz category (issue 22/23).

Fit-health warnings are :class:`multiviz.FitQualityWarning`, changes made to the data
:class:`multiviz.DataWarning`; both derive from :class:`multiviz.MultivizWarning`, so
``warnings.filterwarnings``/``pytest.warns`` see them. The sBNN, cross-validation and
coupled-autoencoder cases are in ``test_sbnn_weakfit.py`` and ``test_coupled_weakfit.py``.
"""

from __future__ import annotations

import io
import logging
import warnings

import numpy as np
import pytest
import torch
from anndata import AnnData

import multiviz as mv
from multiviz import _logging as logg


def test_categories_form_one_hierarchy():
    assert issubclass(mv.FitQualityWarning, mv.MultivizWarning)
    assert issubclass(mv.DataWarning, mv.MultivizWarning)
    assert issubclass(mv.MultivizWarning, UserWarning)


def test_console_prints_a_warning_once_and_filters_silence_it():
    handler = next(h for h in logg.logger.handlers if getattr(h, "_multiviz", False))
    stream, old = io.StringIO(), handler.stream
    handler.setStream(stream)
    verbosity, mv.settings.verbosity = mv.settings.verbosity, 2  # INFO, whatever ran before
    try:
        with pytest.warns(mv.DataWarning, match="only 3 genes") as record:
            logg.warning("    only %d genes", 3, category=mv.DataWarning)
        assert str(record[0].message) == "only 3 genes"  # shown once, by warnings
        assert stream.getvalue() == ""  # not printed a second time by the console handler
        logg.info("an info line")
        assert "an info line" in stream.getvalue()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always")
            warnings.filterwarnings("ignore", category=mv.MultivizWarning)
            logg.warning("silenced", category=mv.FitQualityWarning)
        assert seen == []
    finally:
        handler.setStream(old)
        mv.settings.verbosity = verbosity


def test_log_files_still_get_the_record(caplog):
    with caplog.at_level(logging.WARNING, logger="multiviz"):
        with pytest.warns(mv.MultivizWarning):
            logg.warning("to the log file too")
    assert "to the log file too" in caplog.text


def test_constant_target_feature_is_a_data_warning():
    m = mv.datasets.simulate_patchseq(n_cells=60, n_genes=50, random_state=0)
    m["ephys"].X[:, 1] = 3.0
    with pytest.warns(mv.DataWarning, match="constant") as record:
        mv.pp.prepare_paired(m, gene_selection="none")
    ours = [w for w in record if issubclass(w.category, mv.DataWarning)]
    assert ours[0].filename == __file__


def test_sivae_trained_one_epoch_does_not_beat_pca_and_says_so():
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((300, 2))
    x = z @ rng.standard_normal((2, 40)) + 0.3 * rng.standard_normal((300, 40))
    adata = AnnData(((x - x.mean(0)) / x.std(0)).astype(np.float32))
    with pytest.warns(mv.FitQualityWarning, match="does not beat PCA"):
        mv.tl.sivae(adata, max_epochs=1, random_state=0, enable_progress_bar=False)
    assert adata.uns["sivae"]["r2_gene"] < adata.uns["sivae"]["r2_pca"]  # the warned-of fact
