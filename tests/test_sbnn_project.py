"""Applying a trained sBNN to new cells (``mv.tl.project``, ``SBNN.get_latent_representation``)."""

from __future__ import annotations

import numpy as np
import pytest
from _sbnn_helpers import TINY, one_torch_thread, simulated  # noqa: F401

import multiviz as mv
from multiviz import InputError
from multiviz.tl._project import project


@pytest.fixture(scope="module")
def trained():
    m = simulated(n_cells=200, n_genes=80)
    model = mv.tl.sbnn(m, n_genes=5, gene_decoder_epochs=0, return_model=True, **TINY)
    return m, model


def test_projecting_training_cells_reproduces_stored_latent(trained):
    m, model = trained
    new = m.copy()
    for key in ("X_sbnn",):
        del new.obsm[key]
        del new["rna"].obsm[key]
    project(new, model)
    np.testing.assert_array_equal(new.obsm["X_sbnn"], m.obsm["X_sbnn"])
    np.testing.assert_array_equal(
        new["rna"].obsm["sbnn_pred"].to_numpy(), m["ephys"].layers["sbnn_pred"]
    )


def test_new_cells_get_training_preprocessing(trained):
    """Held-out cells with only raw counts: same latent as the training-cell path."""
    m, model = trained
    raw = mv.datasets.simulate_patchseq(n_cells=200, n_genes=80, random_state=0)
    cells = raw.obs_names[:50]
    query = raw[cells].copy()  # raw counts, never prepared, a gene order shuffled
    order = np.random.default_rng(0).permutation(query["rna"].n_vars)
    query.mod["rna"] = query["rna"][:, order].copy()
    query.update()
    z = model.get_latent_representation(query)
    np.testing.assert_allclose(z, m.obsm["X_sbnn"][:50], rtol=1e-5, atol=1e-6)


def test_missing_gene_is_a_clear_error(trained):
    m, model = trained
    gene = model.selected_genes[0]
    query = m[:, [g for g in m["rna"].var_names if g != gene] + list(m["ephys"].var_names)].copy()
    with pytest.raises(InputError, match=gene):
        project(query, model)


def test_saved_model_loads_onto_users_object(trained, tmp_path):
    m, model = trained
    model.save(tmp_path / "sbnn", overwrite=True)
    loaded = mv.models.SBNN.load(tmp_path / "sbnn", adata=m)
    np.testing.assert_array_equal(loaded.get_latent_representation(), m.obsm["X_sbnn"])
    assert list(loaded.selected_genes) == list(model.selected_genes)


@pytest.mark.filterwarnings("ignore:.*does not beat")
def test_projecting_held_out_cells_matches_cross_validation_predictions():
    """A user's own split (prepare the training cells, fit, project the held-out cells'
    raw counts) gives the out-of-fold predictions that ``cross_validate`` writes."""
    from multiviz.tl._cross_validate import cv_folds

    raw = mv.datasets.simulate_patchseq(n_cells=200, n_genes=80, random_state=0)
    prepared = raw.copy()
    mv.pp.prepare_paired(prepared, x="rna", y="ephys", gene_selection="none")
    kw = {"n_genes": 5, **TINY}
    mv.tl.cross_validate(
        prepared, method="sbnn", n_folds=5, ensemble=False, return_predictions=True, **kw
    )
    fold = cv_folds(prepared.n_obs, 5, 0)
    train, test = np.flatnonzero(fold != 0), np.flatnonzero(fold == 0)

    reference = raw[train].copy()
    mv.pp.prepare_paired(reference, x="rna", y="ephys", gene_selection="none")
    model = mv.tl.sbnn(reference, return_model=True, train_size=1.0, **kw)
    query = raw[test].copy()  # raw counts only
    project(query, model)
    var = reference["ephys"].var
    pred = (
        query["rna"].obsm["sbnn_pred"].to_numpy() * var["zscore_std"].to_numpy()
        + var["zscore_mean"].to_numpy()
    )
    out_of_fold = prepared["ephys"].layers["cv_sbnn_pred"][test]
    scale = np.abs(out_of_fold).max()
    np.testing.assert_allclose(pred, out_of_fold, rtol=0, atol=1e-5 * scale)
