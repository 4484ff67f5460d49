"""Bounded resources: thread counts, latent/hidden sizes, feature inputs and seeds.

Each refused value raises :class:`multiviz.InputError` (a ``ValueError``) whose message
names the argument, the limit and the fix; it is raised before any network layer is
built (``torch.nn.Linear`` is booby-trapped) with little memory allocated, and the user's
AnnData/MuData is deep-unchanged. The largest valid values still fit.
"""

from __future__ import annotations

import os
import tracemalloc

import numpy as np
import pytest
import torch
from _objects import assert_unchanged, snapshot

import multiviz as mv
from multiviz import InputError
from multiviz._validate import MAX_SEED, _resources
from multiviz.models.sbnn._checks import check_sbnn_size

torch.set_num_threads(1)

PEAK_LIMIT = 20_000_000
"""Bytes (Python/numpy, tracemalloc) a refused call may allocate: far below any network."""
SIVAE_FIT = {"n_hidden": (8,), "max_epochs": 1, "batch_size": 16}
COUPLED_FIT = {"max_epochs": 1, "batch_size": 16, "train_kwargs": {"steps_per_epoch": 2}}
SBNN_FIT = {"pretrain": False, "no_pretrain_epochs": 1, "pruned_epochs": 1, "n_genes": 5}
SBNN_FIT["gene_decoder_epochs"] = 0


@pytest.fixture(scope="module")
def paired_base():
    m = mv.datasets.simulate_patchseq(n_cells=60, n_genes=30, random_state=0)
    mv.pp.prepare_paired(m, x="rna", y="ephys", gene_selection="none")
    return m


@pytest.fixture
def paired(paired_base):
    """60 cells, 30 genes, 8 ephys features (z-scored)."""
    return paired_base.copy()


@pytest.fixture
def adata():
    """40 cells x 12 genes."""
    return mv.datasets.simulate_gene_network(
        n_cells=40, n_communities=2, community_size=5, n_isolated=2, random_state=0
    )


@pytest.fixture
def no_layers(monkeypatch):
    """Fail the test if any linear layer is built (the check must come first)."""

    def built(*args, **kwargs):
        raise AssertionError("a network layer was built before the argument was refused")

    monkeypatch.setattr(torch.nn.Linear, "__init__", built)


@pytest.fixture
def one_gigabyte(monkeypatch):
    """Pretend 1 GB of memory is available."""
    monkeypatch.setattr(_resources, "available_memory", lambda: 10**9)


@pytest.fixture
def restore_threads():
    old = mv.settings.num_threads
    yield
    mv.settings.num_threads = old


def _refused(obj, fn, match: str, *fixes: str, **kwargs) -> str:
    """``fn(obj, **kwargs)`` raises InputError naming ``match`` and each fix; ``obj`` unchanged."""
    before = snapshot(obj)
    tracemalloc.start()
    try:
        with pytest.raises(InputError, match=match) as err:
            fn(obj, **kwargs)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < PEAK_LIMIT, f"{peak / 1e6:.0f} MB allocated before the refusal"
    for fix in fixes:
        assert fix in str(err.value), str(err.value)
    assert_unchanged(obj, before)
    return str(err.value)


# -- threads ----------------------------------------------------------------------------


def test_num_threads_above_the_cores_is_refused(restore_threads, monkeypatch):
    n = _resources.available_cpus()
    with pytest.raises(InputError, match=r"mv\.settings\.num_threads") as err:
        mv.settings.num_threads = n + 1
    assert f"{n} CPU core" in str(err.value)
    assert f"at most {n}, or None" in str(err.value)
    assert isinstance(err.value, ValueError)
    monkeypatch.setattr(_resources, "available_cpus", lambda: 2)
    before = mv.settings.num_threads
    with pytest.raises(InputError, match=r"num_threads = 4096.*2 CPU core.*at most 2, or None"):
        mv.settings.num_threads = 4096
    assert mv.settings.num_threads == before


@pytest.mark.parametrize("value", [0, -1, 2.0, True, "2"])
def test_num_threads_must_be_a_positive_integer(restore_threads, value):
    with pytest.raises(InputError, match=r"`mv\.settings\.num_threads` must be a positive"):
        mv.settings.num_threads = value


def test_available_cpus_follows_the_affinity_mask(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)
    assert _resources.available_cpus() == 1
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    assert _resources.available_cpus() == 64


@pytest.mark.filterwarnings("ignore::UserWarning")  # a 2-step fit is a weak fit
def test_num_threads_at_the_core_count_fits(restore_threads, paired, monkeypatch):
    n = _resources.available_cpus()
    mv.settings.num_threads = np.int64(n)
    assert mv.settings.num_threads == n and type(mv.settings.num_threads) is int
    mv.settings.num_threads = None
    mv.settings.num_threads = n
    used, set_threads = [], torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda k: used.append(k) or set_threads(k))
    # the largest valid latent (the 8 ephys features) and seed, on a tiny fit
    mv.tl.coupled_autoencoder(paired, n_latent=8, random_state=MAX_SEED, **COUPLED_FIT)
    assert paired["ephys"].obsm["X_cae"].shape == (60, 8)
    assert used[0] == n  # the fit ran with every core, then restored torch's setting


# -- seeds ------------------------------------------------------------------------------

BAD_SEEDS = [2**64, 2**32, -1, 1.5, None, np.uint64(2**63)]


@pytest.mark.parametrize("seed", BAD_SEEDS, ids=repr)
@pytest.mark.parametrize("tool", ["sbnn", "coupled_autoencoder", "cca"])
def test_paired_tools_refuse_bad_seeds(paired, no_layers, tool, seed):
    _refused(paired, getattr(mv.tl, tool), "random_state", "2**32 - 1", random_state=seed)


@pytest.mark.parametrize("seed", BAD_SEEDS, ids=repr)
def test_sivae_refuses_bad_seeds(adata, no_layers, seed):
    _refused(adata, mv.tl.sivae, "random_state", "2**32 - 1", random_state=seed)


def test_seed_messages_name_the_range_and_a_valid_seed():
    msg = str(pytest.raises(InputError, mv.tl.cv_folds, 100, 5, 2**64).value)
    assert "`random_state=18446744073709551616`" in msg and "[0, 4294967295]" in msg
    assert "e.g. `random_state=0`" in msg
    np.testing.assert_array_equal(np.bincount(mv.tl.cv_folds(10, 5, MAX_SEED)), [2] * 5)
    with pytest.raises(InputError, match="random_state"):
        mv.datasets.simulate_gene_network(n_cells=20, random_state=2**64)
    with pytest.raises(InputError, match="random_state"):
        mv.metrics.gmm_consistency(*[np.zeros((4, 2))] * 4, n_components=1, random_state=-3)


def test_model_classes_refuse_bad_seeds(paired, adata, no_layers):
    with pytest.raises(InputError, match=r"random_state.*2\*\*32 - 1"):
        mv.models.CoupledAutoencoder(paired, random_state=2**64)
    mv.models.SBNN.setup_mudata(paired, x="rna", y="ephys")
    with pytest.raises(InputError, match=r"random_state.*2\*\*32 - 1"):
        mv.models.SBNN(paired, random_state=2**64)
    mv.models.SIVAE.setup_anndata(adata)
    with pytest.raises(InputError, match=r"random_state.*2\*\*32 - 1"):
        mv.models.SIVAE(adata, random_state=-1)


def test_selection_stability_seeds_stay_in_range(paired):
    _refused(
        paired,
        mv.tl.selection_stability,
        r"random_state=4294967295.*n_seeds=3",
        f"`random_state` <= {MAX_SEED - 2}",
        method="sbnn",
        n_seeds=3,
        random_state=MAX_SEED,
    )


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_largest_seed_and_bottleneck_fit_the_sbnn(paired):
    model = mv.tl.sbnn(paired, bottleneck=30, random_state=MAX_SEED, return_model=True, **SBNN_FIT)
    assert paired.obsm["X_sbnn"].shape == (60, 30) and model.random_state == MAX_SEED


# -- latent and hidden sizes ----------------------------------------------------------------


def test_sbnn_bottleneck_above_the_genes_is_refused(paired, no_layers):
    msg = _refused(
        paired,
        mv.tl.sbnn,
        r"`bottleneck=1000000`",
        "30 input genes",
        "`bottleneck` <= 30",
        bottleneck=10**6,
    )
    assert "n_latent" not in msg
    _refused(paired, mv.tl.sbnn, r"`bottleneck=31`", "<= 30", bottleneck=31)
    _refused(
        paired,
        mv.tl.sbnn,
        r"`bottleneck=11`",
        "10 input genes",
        "<= 10",
        bottleneck=11,
        genes=list(paired["rna"].var_names[:10]),
    )


def test_coupled_latent_above_the_smallest_modality_is_refused(paired, no_layers):
    _refused(
        paired,
        mv.tl.coupled_autoencoder,
        r"`n_latent=1000000`",
        "8 features of modality 'ephys'",
        "`n_latent` <= 8",
        n_latent=10**6,
    )


def test_sivae_latent_above_the_genes_is_refused(adata, no_layers):
    _refused(
        adata, mv.tl.sivae, r"`n_latent=1000000`", "12 genes", "`n_latent` <= 12", n_latent=10**6
    )
    _refused(adata, mv.tl.sivae, r"`n_latent=13`", "<= 12", n_latent=13, copy=True)


def test_networks_larger_than_the_memory_are_refused(paired, adata, no_layers, one_gigabyte):
    wide = (10**5, 10**5)
    msg = _refused(
        paired,
        mv.tl.coupled_autoencoder,
        r"`hidden=\{'rna': \(100000, 100000\)",
        "only 1.0 GB of memory is available",
        "Choose smaller sizes",
        model_kwargs={"hidden": wide},
    )
    assert "about 4e+10 parameters" in msg and "GB (weights, gradients" in msg, msg
    _refused(
        adata,
        mv.tl.sivae,
        r"`n_hidden=\(100000, 100000\)`",
        "1.0 GB",
        "smaller",
        n_hidden=wide,
    )
    # mv.tl.sbnn fixes the hidden widths (512, 128) and bounds the bottleneck by the genes, so
    # only a very large gene panel outgrows the memory: 10**8 genes x 512 weights here
    with pytest.raises(InputError, match=r"sBNN.*`bottleneck=2`.*only 1.0 GB"):
        check_sbnn_size(10**8, 8, 2, inputs="genes", latent_arg="bottleneck")


def test_model_classes_check_sizes_before_building(paired, adata, no_layers, one_gigabyte):
    with pytest.raises(InputError, match=r"`n_latent=9`.*8 features of modality 'ephys'"):
        mv.models.CoupledAutoencoder(paired, n_latent=9)
    with pytest.raises(InputError, match=r"`hidden=.*only 1.0 GB"):
        mv.models.CoupledAutoencoder(paired, hidden={"ephys": (10**5, 10**5)})
    mv.models.SBNN.setup_mudata(paired, x="rna", y="ephys")
    with pytest.raises(InputError, match=r"`n_latent=31`.*30 input genes.*<= 30"):
        mv.models.SBNN(paired, n_latent=31)
    with pytest.raises(InputError, match=r"`n_hidden=\(100000, 100000\)`.*1.0 GB"):
        mv.models.SBNN(paired, n_hidden=(10**5, 10**5))
    with pytest.raises(InputError, match=r"`n_hidden` must be two layer widths"):
        mv.models.SBNN(paired, n_hidden=(512,))
    mv.models.SIVAE.setup_anndata(adata)
    with pytest.raises(InputError, match=r"`n_latent=1000000`.*12 genes"):
        mv.models.SIVAE(adata, n_latent=10**6)
    with pytest.raises(InputError, match=r"`n_hidden=\(100000, 100000\)`.*1.0 GB"):
        mv.models.SIVAE(adata, n_hidden=(10**5, 10**5))


def test_sbnn_ensembles_check_the_bottleneck(paired, no_layers):
    paired = mv.datasets.simulate_patchseq(n_cells=100, n_genes=30, random_state=1)
    mv.pp.prepare_paired(paired, x="rna", y="ephys", gene_selection="none")
    for ensemble in (True, False):
        _refused(
            paired,
            mv.tl.cross_validate,
            r"`bottleneck=1000000`",
            "<= 30",
            method="sbnn",
            n_folds=2,
            bottleneck=10**6,
            ensemble=ensemble,
        )


# -- siVAE's feature-wise input -------------------------------------------------------------


@pytest.mark.parametrize(
    ("feature_input", "limit", "what"),
    [("pca", 11, "genes - 1 = 11"), ("downsample", 36, "36 training cells")],
)
def test_sivae_feature_input_above_the_data_is_refused(
    adata, no_layers, feature_input, limit, what
):
    _refused(
        adata,
        mv.tl.sivae,
        r"`n_feature_input=1000000000`",
        what,
        f"`n_feature_input` <= {limit}",
        "or None",
        n_feature_input=10**9,
        feature_input=feature_input,
    )
    mv.models.SIVAE.setup_anndata(adata)
    with pytest.raises(InputError, match=rf"`n_feature_input={limit + 1}`.*<= {limit}"):
        mv.models.SIVAE(adata, n_feature_input=limit + 1, feature_input=feature_input)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_sivae_largest_sizes_and_seed_fit(adata):
    # 36 training cells, 12 genes: 11 principal components at most; latent = the genes
    model = mv.tl.sivae(
        adata,
        n_latent=12,
        n_feature_input=11,
        random_state=MAX_SEED,
        return_model=True,
        **SIVAE_FIT,
    )
    assert model.module.n_feature_input == 11 and adata.obsm["X_sivae"].shape == (40, 12)
    mv.models.SIVAE.setup_anndata(adata)
    assert mv.models.SIVAE(adata).module.n_feature_input == 11  # default 256, lowered
    assert mv.models.SIVAE(adata, feature_input="downsample").module.n_feature_input == 36
