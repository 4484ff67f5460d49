"""Helpers shared by the sBNN / sRRR tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import multiviz as mv

# a short schedule for tests that check plumbing, not the method's accuracy
TINY = {
    "pretrain_epochs": 2,
    "frozen_epochs": 2,
    "unfrozen_epochs": 2,
    "no_pretrain_epochs": 3,
    "pruned_epochs": 3,
}


def simulated(n_cells=400, n_genes=200, random_state=0):
    m = mv.datasets.simulate_patchseq(n_cells=n_cells, n_genes=n_genes, random_state=random_state)
    mv.pp.prepare_paired(m, x="rna", y="ephys", gene_selection="none")
    return m


def snapshot(m) -> dict:
    """Everything a failed call must leave unchanged (keys and the data matrices)."""
    snap = {"obsm": sorted(m.obsm), "uns": sorted(m.uns), "n_obs": m.n_obs}
    for name, mod in m.mod.items():
        snap[name] = (
            sorted(mod.obsm),
            list(mod.var.columns),
            sorted(k for k in mod.layers.keys() if k is not None),
            sorted(mod.varm),
            np.asarray(mod.X.toarray() if hasattr(mod.X, "toarray") else mod.X).copy(),
        )
    return snap


def same(a: dict, b: dict) -> bool:
    for k in a:
        va, vb = a[k], b[k]
        if isinstance(va, tuple):
            if va[:4] != vb[:4] or not np.array_equal(va[4], vb[4], equal_nan=True):
                return False
        elif va != vb:
            return False
    return True


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Small networks on a shared CPU: one intra-op thread avoids oversubscription."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def deep_snapshot(m) -> dict:
    """A deep copy of everything a MuData holds (matrices, layers, frames, uns)."""
    import copy as _copy

    out = {"obs": m.obs.copy(), "obsm": {k: _copy.deepcopy(v) for k, v in m.obsm.items()}}
    out["uns"] = _copy.deepcopy(dict(m.uns))
    for name, mod in m.mod.items():
        out[name] = {
            "X": mod.X.copy(),
            "layers": {k: v.copy() for k, v in mod.layers.items()},
            "obs": mod.obs.copy(),
            "var": mod.var.copy(),
            "obsm": {k: _copy.deepcopy(v) for k, v in mod.obsm.items()},
            "varm": {k: _copy.deepcopy(v) for k, v in mod.varm.items()},
            "uns": sorted(mod.uns),
        }
    return out


def _equal(a, b) -> bool:
    import pandas as pd
    from scipy import sparse

    if type(a) is not type(b):
        return False
    if sparse.issparse(a):
        return a.shape == b.shape and (a != b).nnz == 0
    if isinstance(a, pd.DataFrame | pd.Series):
        return a.equals(b) and list(a.index) == list(b.index)
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return a == b


def deep_same(a: dict, b: dict) -> bool:
    """Whether two :func:`deep_snapshot` s are identical."""
    return _equal(a, b)


def forward(model, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latent and predicted targets of a trained SBNN for a full-gene array ``X`` (cells the
    model never registered, e.g. with columns permuted on purpose)."""
    module = model.module.eval()
    with torch.inference_mode():
        z, y = module.forward_targets(module.select_input(torch.as_tensor(X, dtype=torch.float32)))
    return z.numpy(), y.numpy()
