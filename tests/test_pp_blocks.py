"""Preprocessing in blocks of cells: the same numbers as whole-matrix arithmetic, less memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from scipy import sparse

import multiviz as mv
import multiviz._blocks as blocks
from multiviz.pp._gene_selection import _detection_statistics
from multiviz.pp._prepare_paired import log2_scaled


@pytest.fixture
def small_blocks(monkeypatch):
    monkeypatch.setattr(blocks, "ROW_BLOCK", 7)  # 60 cells: 9 blocks, the last one short


def _counts(seed=0, n=60, g=25):
    rng = np.random.default_rng(seed)
    dense = rng.poisson(0.8, (n, g)) * (rng.random((n, g)) < 0.5)
    dense[:, 3] = 0  # a gene no cell detects
    dense[5] = 0  # an empty cell
    return dense.astype(np.int32)


def test_zscore_in_blocks_matches_whole_matrix(small_blocks):
    dense = np.log2(_counts() + 1.0).astype(np.float32)
    mean, std = mv.pp.fit_zscore(sparse.csr_matrix(dense))
    ref = dense.astype(np.float64)
    np.testing.assert_allclose(mean, ref.mean(axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(std[std != 1], ref.std(axis=0)[std != 1], rtol=1e-10)
    expected = ((dense - mean) / std).astype(np.float32)
    for X in (sparse.csr_matrix(dense), sparse.csc_matrix(dense), dense):
        np.testing.assert_array_equal(mv.pp.apply_zscore(X, mean, std), expected)


def test_log2_scaling_in_blocks_matches_dense(small_blocks):
    counts = _counts(1)
    scale = np.linspace(0.0, 3.0, counts.shape[0])
    got = log2_scaled(sparse.csr_matrix(counts), scale)
    assert sparse.issparse(got) and got.dtype == np.float32
    np.testing.assert_array_equal(got.toarray(), log2_scaled(counts, scale))


def test_detection_statistics_in_blocks_match_dense(small_blocks):
    counts = _counts(2)
    ref_zero, ref_log = _detection_statistics(counts, 0.0, 3)
    # duplicate entries of a non-canonical CSR are summed (as scipy does), without touching it
    csr = sparse.csr_matrix(counts)
    rows = [np.r_[a, a] for a in np.split(np.arange(csr.nnz), csr.indptr[1:-1])]
    order = np.concatenate(rows)
    dup = sparse.csr_matrix(
        (csr.data[order], csr.indices[order], np.r_[0, np.cumsum(2 * np.diff(csr.indptr))]),
        shape=counts.shape,
    )
    assert not dup.has_canonical_format and dup.nnz == 2 * csr.nnz
    for X, factor in ((sparse.csr_matrix(counts), 1), (sparse.csc_matrix(counts), 1), (dup, 2)):
        zero, log = _detection_statistics(X, 0.0, 3)
        want_zero, want_log = (
            (ref_zero, ref_log) if factor == 1 else _detection_statistics(counts * factor, 0.0, 3)
        )
        np.testing.assert_array_equal(np.isnan(zero), np.isnan(want_zero))
        np.testing.assert_allclose(zero, want_zero, equal_nan=True)
        np.testing.assert_allclose(log, want_log, rtol=1e-12, equal_nan=True)
    assert np.isnan(ref_zero[3])
    assert dup.nnz == 2 * csr.nnz  # the caller's matrix is left as it was


def test_prepare_paired_memory_stays_near_its_outputs():
    """Measured: 410 MB peak with whole-matrix float64 temporaries, 140 MB in blocks.

    The outputs (dense z-scored X and two sparse layers) are 79 MB, X 24 MB.
    """
    mdata = mv.datasets.simulate_patchseq(n_cells=20_000, n_genes=600, random_state=0)
    tracemalloc.start()
    mv.pp.prepare_paired(mdata, n_top_genes=300)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    x_bytes = mdata["rna"].X.nbytes  # the dense float32 z-scored X it writes
    outputs = x_bytes + sum(
        m.data.nbytes + m.indices.nbytes + m.indptr.nbytes
        for k, m in mdata["rna"].layers.items()
        if k is not None
    )
    assert peak < outputs + 4 * x_bytes, (peak / 1e6, outputs / 1e6, x_bytes / 1e6)
