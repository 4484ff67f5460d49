"""Held-out checks of sBNN / sRRR against the planted truth of ``simulate_patchseq``."""

from __future__ import annotations

import numpy as np
import pytest
from _sbnn_helpers import TINY, forward, one_torch_thread  # noqa: F401

import multiviz as mv
from multiviz.metrics import r2_score
from multiviz.models.sbnn._plan import pretrain_labels
from multiviz.tl._paired_data import fold_arrays
from multiviz.tl._sbnn import fit_sbnn
from multiviz.tl._srrr import fit_srrr


@pytest.fixture(scope="module")
def split():
    m = mv.datasets.simulate_patchseq(n_cells=400, n_genes=200, random_state=0)
    mv.pp.prepare_paired(m, x="rna", y="ephys", gene_selection="none")
    perm = np.random.default_rng(0).permutation(m.n_obs)
    test, train = np.sort(perm[:100]), np.sort(perm[100:])
    return m, train, test


def _cv_fold(m, train, test):
    """One fold of the sequential CV path (``fold_arrays`` → ``fit_sbnn`` → forward)."""
    tr, te = fold_arrays(m, train, test)
    model = fit_sbnn(tr, n_genes=5, gene_decoder_epochs=0, **TINY)
    _, pred_tr = forward(model, tr.X)
    _, pred_te = forward(model, te.X)
    genes = list(tr.gene_names[model.module.gene_index.numpy()])
    return genes, pred_tr, r2_score(te.Y, pred_te)


def test_signal_planted_in_test_fold_cannot_raise_cv_score(split):
    """A gene that copies a target only in the test cells must not help (no leakage).

    Every fitted quantity (library size, z-scoring, k-means labels, pre-training
    hold-out, weights) comes from the training cells, so the model is bitwise the same
    and the test score cannot rise.
    """
    m, train, test = split
    m = m.copy()
    planted = np.flatnonzero(~m["rna"].var["driver"].to_numpy())[0]
    # keep the planted gene out of the library-size sum, so that planting it does not
    # change the test cells' own normalisation (a per-cell effect, not leakage)
    m["rna"].var["highly_variable"] = np.arange(m["rna"].n_vars) != planted
    genes, pred_tr, r2 = _cv_fold(m, train, test)

    leaky = m.copy()
    counts = leaky["rna"].layers["counts"]
    counts = counts.toarray() if hasattr(counts, "toarray") else np.array(counts)
    raw = leaky["ephys"].layers["raw"][:, 0]
    signal = np.round(50 * (raw - raw.min()) / np.ptp(raw)).astype(counts.dtype)
    counts[test, planted] = signal[test] * 20  # a perfect predictor, in the test cells only
    leaky["rna"].layers["counts"] = counts
    leaky_genes, leaky_pred_tr, leaky_r2 = _cv_fold(leaky, train, test)

    assert leaky_genes == genes
    np.testing.assert_array_equal(leaky_pred_tr, pred_tr)
    assert leaky_r2 <= r2 + 1e-12


def test_sbnn_paper_lr_beats_mean_and_tracks_srrr_held_out(split):
    """Paper schedule and learning rate (1e-4): held-out R² against planted truth."""
    m, train, test = split
    tr, te = fold_arrays(m, train, test)
    res, _ = fit_srrr(tr, rank=2, n_genes=10)
    r2_srrr = r2_score(te.Y, res.predict(te.X))
    model = fit_sbnn(tr, n_genes=10, gene_decoder_epochs=0)
    z_tr, pred_tr = forward(model, tr.X)
    z_te, pred_te = forward(model, te.X)
    r2 = r2_score(te.Y, pred_te)
    # measured: 0.91 against sRRR-2's 0.63 (the planted ephys are non-linear in the drivers)
    assert r2 > 0.8
    assert r2 > r2_srrr + 0.1
    # the 2-d latent carries the planted latent state: a linear read-out fitted on the
    # training cells predicts the truth of the held-out cells
    truth = m.obsm["latent_truth"]
    A = np.c_[z_tr, np.ones(len(train))]
    coef = np.linalg.lstsq(A, truth[train], rcond=None)[0]
    pred_truth = np.c_[z_te, np.ones(len(test))] @ coef
    assert r2_score(truth[test], pred_truth, train_mean=truth[train].mean(0)) > 0.8


def test_pretrain_labels_drop_small_clusters():
    rng = np.random.default_rng(0)
    centres = np.repeat(np.eye(4) * 20, [40, 30, 25, 3], axis=0)
    Y = centres + rng.normal(size=centres.shape)
    labels = pretrain_labels(Y, n_clusters=4, random_state=0, n_init=20)
    # the 3-cell cluster is dropped; kept clusters are numbered by decreasing size
    assert (labels[-3:] == -1).all()
    assert np.bincount(labels[labels >= 0]).tolist() == [40, 30, 25]
    again = pretrain_labels(Y, n_clusters=4, random_state=0, n_init=20)
    np.testing.assert_array_equal(labels, again)


def test_train_indices_fit_as_if_only_those_cells_were_registered(split):
    """`SBNN.train(indices=)` (how `mv.tl.sbnn` trains on its training split) gives the
    model a model set up on those cells alone would be, and scores every registered cell."""
    m, train, test = split
    m, sub = m.copy(), m[train].copy()
    mv.models.SBNN.setup_mudata(m, x="rna", y="ephys")
    a = mv.models.SBNN(m, random_state=0)
    a.train(indices=train[::-1], n_genes=5, enable_progress_bar=False, **TINY)
    mv.models.SBNN.setup_mudata(sub, x="rna", y="ephys")
    b = mv.models.SBNN(sub, random_state=0)
    b.train(n_genes=5, enable_progress_bar=False, **TINY)
    np.testing.assert_array_equal(a.train_indices_, train)
    np.testing.assert_array_equal(a.predict(indices=train).to_numpy(), b.predict().to_numpy())
    assert list(a.selected_genes) == list(b.selected_genes)
    z = a.get_latent_representation()
    assert z.shape == (m.n_obs, 2)
    np.testing.assert_array_equal(z[test], forward(a, m["rna"].X[test])[0])
    for bad, what in (([0, 0, 1], "repeats"), ([m.n_obs], "must lie"), ([], "non-empty")):
        fresh = mv.models.SBNN(m, random_state=0)
        with pytest.raises(mv.InputError, match=what):
            fresh.train(indices=bad, n_genes=5, **TINY)
