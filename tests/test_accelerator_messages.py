"""``accelerator`` the machine lacks: an InputError before training (issue 23, item 2)."""

from __future__ import annotations

import importlib.util

import anndata as ad
import numpy as np
import pytest
import torch

import multiviz as mv
from multiviz import InputError
from multiviz._validate import check_accelerator
from multiviz.train import fit_context

TINY_SBNN = {"pretrain": False, "no_pretrain_epochs": 1, "pruned_epochs": 1, "n_genes": 5}


@pytest.fixture
def no_gpu(monkeypatch):
    """This machine as one without a CUDA or Apple GPU, whatever it has."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr("multiviz._validate._resources._mps_available", lambda: False)


@pytest.fixture(scope="module")
def paired():
    m = mv.datasets.simulate_patchseq(n_cells=60, n_genes=30, random_state=0)
    mv.pp.prepare_paired(m, x="rna", y="ephys", gene_selection="none")
    return m


FITS = {
    "sbnn": lambda m, acc: mv.tl.sbnn(m, accelerator=acc, **TINY_SBNN),
    "coupled": lambda m, acc: mv.tl.coupled_autoencoder(m, accelerator=acc, max_epochs=1),
    "sivae": lambda m, acc: mv.tl.sivae(
        ad.AnnData(np.random.default_rng(0).normal(size=(20, 5)).astype(np.float32)),
        accelerator=acc,
        max_epochs=1,
    ),
    "cross_validate": lambda m, acc: mv.tl.cross_validate(
        m, n_folds=2, ensemble=False, accelerator=acc, **TINY_SBNN
    ),
}


@pytest.mark.parametrize("fit", sorted(FITS))
def test_gpu_without_gpu_is_an_input_error(no_gpu, paired, fit):
    m = paired.copy()
    before = sorted(m.obsm), sorted(m.uns)
    with pytest.raises(InputError) as err:
        FITS[fit](m, "gpu")
    msg = str(err.value)
    assert "accelerator='gpu'" in msg and "no CUDA GPU is visible" in msg
    assert "accelerator='cpu'" in msg and "'auto'" in msg
    assert (sorted(m.obsm), sorted(m.uns)) == before  # nothing written


@pytest.mark.skipif(importlib.util.find_spec("torch_xla") is not None, reason="has torch_xla")
def test_tpu_without_torch_xla_is_an_input_error(paired):
    with pytest.raises(InputError, match=r"accelerator='tpu'.*no TPU.*accelerator='cpu'"):
        FITS["coupled"](paired.copy(), "tpu")


def test_available_devices_pass(no_gpu):
    for acc in ("auto", "cpu", "CPU", None):
        check_accelerator(acc)
    with pytest.raises(InputError, match="accelerator='cuda'.*no CUDA GPU"):
        check_accelerator("cuda")
    with pytest.raises(InputError, match="accelerator='mps'.*MPS"):
        check_accelerator("mps")


def test_other_lightning_misconfiguration_is_translated():
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    with pytest.raises(InputError, match="Invalid training setting: bad devices"):
        with fit_context("a fit"):
            raise MisconfigurationException("bad devices")
