"""The golden-output cases: small fixed-seed runs of every public tool and model ``train``.

Each case builds its own small data (simulators, the shipped PBMC CITE-seq cells, a slice
of the project's shared M1 Patch-seq file), runs one public function (or a few cheap
ones on one object) with short fixed settings, and returns the leaves (see
:mod:`golden.digest`) of everything it wrote: new or changed ``obs``, ``var``, ``obsm``,
``varm``, ``layers``, ``obsp``, ``varp``, ``uns`` (and ``.X``) of the MuData/AnnData and
of its modalities, the function's return value (``return/...``) and, where a model is
trained, its predictions and latent (``model/...``).

Used by ``tests/golden/record.py`` (writes the recording) and
``tests/test_golden_outputs.py`` (recomputes and compares).

Settings every case runs under (:func:`run_case`): one torch thread and one thread for
the numpy/scipy BLAS (``threadpoolctl``), the global numpy/random/torch seeds reset, and
multiviz's own ``settings.num_threads`` at 1, so a case's result does not depend on the
machine's core count or on the cases run before it.

Every output of every case is bitwise reproducible run to run under these settings
(checked: two recordings per stack, in separate processes, and single cases run alone),
so no case lists ``tolerances`` today. A case whose output cannot be (e.g. a reduction
split over threads) names it there, with the reason, and the test compares that output
by fingerprint at ``rtol=1e-4``.
"""

from __future__ import annotations

import os
import random
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .digest import changed, flatten, state

# the TINY schedules of the existing tests (tests/_sbnn_helpers.py, test_sivae_tools.py,
# test_coupled_tl.py): enough steps to move every weight, far too few to converge
SBNN_TINY = {
    "pretrain_epochs": 2,
    "frozen_epochs": 2,
    "unfrozen_epochs": 2,
    "no_pretrain_epochs": 3,
    "pruned_epochs": 3,
}
SIVAE_TINY = {
    "n_latent": 3,
    "n_hidden": (16, 8),
    "max_epochs": 5,
    "pretrain_epochs": 5,
    "feature_pretrain_epochs": 5,
}
CAE_TINY = {"max_epochs": 3, "batch_size": 64, "train_kwargs": {"steps_per_epoch": 10}}

M1_FILE = "m1_patchseq_scala2021.h5mu"

# Leaves that are not outputs of the method but of the run: the process CPU seconds that
# cross_validate (and compare_methods through it) store beside each fold's R², and the
# seconds of the null fit in uns["sivae"]["centrality_null"]. Left out of the recording:
# another machine load gives another number.
NOT_OUTPUTS = ("*/column:seconds", "*/seconds")


@dataclass(frozen=True)
class Case:
    """One golden case: ``run()`` returns the leaves it produced."""

    name: str
    covers: tuple[str, ...]  # the public names this case runs
    run: Callable[[], dict]
    slow: bool = False
    # glob pattern of leaf keys -> why that output is compared with a tolerance
    tolerances: dict[str, str] = field(default_factory=dict)
    needs: str | None = None  # a file of the shared data folder


# ----------------------------------------------------------------------------- helpers
def shared_data_dir() -> Path:
    """``$MULTIVIZ_SHARED_DATA`` or ``../shared/data`` beside the repository root."""
    env = os.environ.get("MULTIVIZ_SHARED_DATA")
    if env:
        return Path(env).expanduser()
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def writes(data, call: Callable, *, prefix: str = "") -> dict:
    """Leaves of ``data`` that ``call(data)`` added or changed, plus its return value."""
    before = state(data)
    ret = call(data)
    out = {prefix + k: v for k, v in changed(before, state(data)).items()}
    if ret is not None and ret is not data and not _is_model(ret):
        out.update(flatten(ret, prefix + "return"))
    return out


def _is_model(obj) -> bool:
    return hasattr(obj, "module") and hasattr(obj, "train")


def _simulated(n_cells: int = 200, n_genes: int = 80, random_state: int = 0, **kw):
    import multiviz as mv

    m = mv.datasets.simulate_patchseq(
        n_cells=n_cells, n_genes=n_genes, random_state=random_state, **kw
    )
    mv.pp.prepare_paired(m, x="rna", y="ephys", gene_selection="none")
    return m


def _network(n_cells: int = 300, random_state: int = 0):
    import multiviz as mv

    return mv.datasets.simulate_gene_network(
        n_cells=n_cells, n_communities=2, community_size=10, n_isolated=5, random_state=random_state
    )


def _planted(n: int = 240, n_genes: int = 30, n_feat: int = 6, seed: int = 0):
    """Two modalities driven by one shared 2-d factor, a third of the cells without ephys.

    The planted data of ``tests/test_coupled_model.py`` (``_planted`` / ``_mdata``).
    """
    import anndata as ad
    import mudata as md

    rng = np.random.default_rng(seed)
    types = rng.integers(0, 4, n)
    centres = np.array([[2, 0], [-2, 0], [0, 2], [0, -2]], float)
    f = centres[types] + 0.3 * rng.normal(size=(n, 2))
    xr = np.tanh(f @ rng.normal(size=(2, n_genes))) + 0.3 * rng.normal(size=(n, n_genes))
    xe = f @ rng.normal(size=(2, n_feat)) + 0.3 * rng.normal(size=(n, n_feat))
    names = np.array([f"cell{i}" for i in range(n)])
    keep = np.ones(n, bool)
    keep[::3] = False
    rna = ad.AnnData(xr.astype(np.float32))
    rna.obs_names = names
    eph = ad.AnnData(xe.astype(np.float32)[keep])
    eph.obs_names = names[keep]
    return md.MuData({"rna": rna, "ephys": eph})


def _pbmc(n_top_genes: int = 300):
    import multiviz as mv

    m = mv.datasets.pbmc10k_cite_200()
    mv.pp.prepare_paired(m, y="protein", n_top_genes=n_top_genes)
    return m


def _m1_slice(n_cells: int = 240):
    """The first ``n_cells`` cells of the shared M1 Patch-seq file (1000 genes, 16 ephys)."""
    import multiviz as mv

    m = mv.datasets.m1_patchseq(shared_data_dir() / M1_FILE)
    m = m[m.obs_names[:n_cells]].copy()
    return m


def _sbnn_model_outputs(model, prefix: str = "model/") -> dict:
    out = flatten(model.predict(), prefix + "predict")
    out.update(flatten(model.get_latent_representation(), prefix + "latent"))
    out.update(flatten(list(model.selected_genes), prefix + "selected_genes"))
    return out


# ----------------------------------------------------------------------------- cases
def case_prepare_paired_simulated() -> dict:
    import multiviz as mv

    m = mv.datasets.simulate_patchseq(n_cells=200, n_genes=150, random_state=0)
    return writes(m, lambda d: mv.pp.prepare_paired(d, x="rna", y="ephys", n_top_genes=60))


def case_prepare_paired_pbmc() -> dict:
    import multiviz as mv

    m = mv.datasets.pbmc10k_cite_200()
    return writes(m, lambda d: mv.pp.prepare_paired(d, y="protein", n_top_genes=300))


def case_srrr() -> dict:
    import multiviz as mv

    m = _simulated()
    return writes(m, lambda d: mv.tl.srrr(d, rank=2, n_genes=10))


def case_sbnn_project() -> dict:
    import multiviz as mv

    m = _simulated()
    box = {}

    def fit(d):
        box["model"] = mv.tl.sbnn(
            d, n_genes=5, gene_decoder_epochs=2, return_model=True, **SBNN_TINY
        )

    out = writes(m, fit)
    model = box["model"]
    out.update(_sbnn_model_outputs(model))
    # cells given as raw counts only: they get the training preprocessing
    raw = mv.datasets.simulate_patchseq(n_cells=200, n_genes=80, random_state=0)
    new = raw[raw.obs_names[::4]].copy()
    out.update(writes(new, lambda d: mv.tl.project(d, model, key_added="proj"), prefix="project/"))
    out.update(flatten(model.predict(new), "project/model/predict"))
    return out


def case_sbnn_model_train() -> dict:
    import multiviz as mv

    m = _simulated(n_cells=160, n_genes=60, random_state=2)
    mv.models.SBNN.setup_mudata(m, x="rna", y="ephys")
    model = mv.models.SBNN(m, n_latent=2, random_state=0)
    model.train(n_genes=6, gene_decoder_epochs=2, enable_progress_bar=False, **SBNN_TINY)
    out = _sbnn_model_outputs(model)
    out.update(flatten(model.predict(genes=True), "model/predict_genes"))
    return out


def case_cross_validate_srrr() -> dict:
    import multiviz as mv

    m = _simulated()
    out = flatten(mv.tl.cv_folds(m.n_obs, n_folds=3, random_state=0), "cv_folds")
    out.update(
        writes(
            m,
            lambda d: mv.tl.cross_validate(
                d, method="srrr", n_folds=3, rank=2, n_genes=10, return_predictions=True
            ),
        )
    )
    return out


def case_cross_validate_sbnn_ensemble() -> dict:
    import multiviz as mv

    m = _simulated()
    return writes(
        m,
        lambda d: mv.tl.cross_validate(
            d,
            method="sbnn",
            n_folds=3,
            n_genes=5,
            gene_decoder_epochs=0,
            return_predictions=True,
            **SBNN_TINY,
        ),
    )


def case_cross_validate_sbnn_sequential() -> dict:
    import multiviz as mv

    m = _simulated()
    return writes(
        m,
        lambda d: mv.tl.cross_validate(
            d,
            method="sbnn",
            n_folds=2,
            ensemble=False,
            n_genes=5,
            gene_decoder_epochs=0,
            key_added="cv_seq",
            **SBNN_TINY,
        ),
    )


def case_selection_stability_sbnn() -> dict:
    import multiviz as mv

    m = _simulated()
    return writes(
        m,
        lambda d: mv.tl.selection_stability(
            d, n_seeds=2, n_genes=5, consensus=True, gene_decoder_epochs=0, **SBNN_TINY
        ),
    )


def case_selection_stability_srrr_folds() -> dict:
    import multiviz as mv

    m = _simulated()
    return writes(
        m,
        lambda d: mv.tl.selection_stability(
            d, method="srrr", over="folds", n_folds=3, n_genes=5, rank=2
        ),
    )


def case_compare_methods() -> dict:
    import multiviz as mv

    m = _simulated()
    methods = (("srrr", {"rank": 1}), ("srrr", {"rank": 2}))
    return writes(m, lambda d: mv.tl.compare_methods(d, methods, n_folds=3, n_genes=10))


def case_cca_project_tsne() -> dict:
    import multiviz as mv

    m = _simulated()
    out = writes(m, lambda d: mv.tl.cca(d, n_components=2, n_pcs=8))
    new = _simulated(n_cells=60, random_state=1)
    out.update(
        flatten(mv.tl.cca_project(new["ephys"], m, "ephys"), "cca_project/ephys"),
    )
    out.update(writes(m, lambda d: mv.tl.tsne(d, use_rep="X_cca_rna", n_iter=100), prefix="tsne/"))
    return out


def case_coupled_autoencoder() -> dict:
    import multiviz as mv

    m = _simulated()
    box = {}

    def fit(d):
        box["model"] = mv.tl.coupled_autoencoder(
            d, lam=1.0, random_state=0, return_model=True, **CAE_TINY
        )

    out = writes(m, fit)
    out.update(
        writes(
            m, lambda d: mv.tl.cross_modal_predict(d, source="ephys", target="rna"), prefix="xmp/"
        )
    )
    model = box["model"]
    out.update(flatten(model.get_latent_representation(), "model/latent"))
    out.update(flatten(model.predict(source="rna", target="ephys"), "model/predict_rna_to_ephys"))
    return out


def case_coupled_model_train() -> dict:
    from multiviz.models import CoupledAutoencoder

    mdata = _planted()
    model = CoupledAutoencoder(mdata, hidden=(16, 16), lam=1.0, random_state=0)
    model.train(max_epochs=2, steps_per_epoch=25, batch_size=64, enable_progress_bar=False)
    out = flatten(model.get_latent_representation(), "model/latent")
    out.update(flatten(model.predict(source="rna", target="ephys"), "model/predict_rna_to_ephys"))
    out.update(flatten(model.predict(source="ephys", target="rna"), "model/predict_ephys_to_rna"))
    return out


def case_sivae_tools() -> dict:
    import multiviz as mv

    adata = _network()
    box = {}

    def fit(d):
        box["model"] = mv.tl.sivae(d, return_model=True, **SIVAE_TINY)

    out = writes(adata, fit)
    model = box["model"]
    out.update(flatten(model.get_latent_representation(), "model/latent"))
    out.update(flatten(model.get_loadings(), "model/loadings"))
    out.update(writes(adata, lambda d: mv.tl.gene_centrality(d, n_top=5), prefix="centrality/"))
    out.update(writes(adata, lambda d: mv.tl.gene_neighbors(d, n_neighbors=4), prefix="neighbors/"))
    for method in ("deeplift", "integrated_gradients"):
        out.update(
            writes(
                adata,
                lambda d, method=method: mv.tl.decoder_attribution(
                    d, model=model, method=method, n_cells=100, n_steps=10
                ),
                prefix=f"attribution_{method}/",
            )
        )
    return out


def case_gene_centrality_pvalues() -> dict:
    import multiviz as mv

    adata = _network(n_cells=200, random_state=3)
    mv.tl.sivae(adata, **SIVAE_TINY)
    return writes(adata, lambda d: mv.tl.gene_centrality(d, pvalues=True))


def case_sivae_model_train() -> dict:
    from multiviz.models import SIVAE

    adata = _network(n_cells=200, random_state=1)
    SIVAE.setup_anndata(adata)
    model = SIVAE(adata, n_latent=2, n_hidden=(16, 8), random_state=0)
    model.train(
        max_epochs=4, pretrain_epochs=4, feature_pretrain_epochs=4, enable_progress_bar=False
    )
    out = flatten(model.get_latent_representation(), "model/latent")
    out.update(flatten(model.get_loadings(), "model/loadings"))
    out.update(flatten(model.get_gene_centrality(), "model/gene_centrality"))
    return out


def case_network_similarity() -> dict:
    import anndata as ad

    import multiviz as mv

    parts = []
    for i, donor in enumerate(["a", "b", "c"]):
        sim = mv.datasets.simulate_gene_network(
            n_cells=120, n_communities=2, community_size=6, n_isolated=3, random_state=i
        )
        part = ad.AnnData(sim.X, var=sim.var[["community"]].astype(str))
        part.obs_names = [f"{donor}{j}" for j in range(sim.n_obs)]
        part.obs["donor"] = donor
        parts.append(part)
    adata = ad.concat(parts, merge="same")
    kw = dict(SIVAE_TINY)
    return writes(
        adata,
        lambda d: mv.tl.network_similarity(
            d, groupby="donor", graph="knn", n_neighbors=3, sivae_kwargs=kw
        ),
    )


def case_pbmc_srrr_sbnn() -> dict:
    import multiviz as mv

    m = _pbmc()
    out = writes(m, lambda d: mv.tl.srrr(d, y="protein", rank=2, n_genes=10))
    box = {}

    def fit(d):
        box["model"] = mv.tl.sbnn(
            d, y="protein", n_genes=5, gene_decoder_epochs=0, return_model=True, **SBNN_TINY
        )

    out.update(writes(m, fit, prefix="sbnn/"))
    out.update(_sbnn_model_outputs(box["model"]))
    return out


def case_m1_slice() -> dict:
    import multiviz as mv

    m = _m1_slice()
    out = writes(m, lambda d: mv.pp.prepare_paired(d, x="rna", y="ephys", n_top_genes=200))
    out.update(writes(m, lambda d: mv.tl.srrr(d, rank=2, n_genes=10), prefix="srrr/"))
    out.update(writes(m, lambda d: mv.tl.cca(d, n_components=2, n_pcs=8), prefix="cca/"))
    return out


CASES: dict[str, Case] = {
    c.name: c
    for c in [
        Case("prepare_paired_simulated", ("pp.prepare_paired",), case_prepare_paired_simulated),
        Case("prepare_paired_pbmc", ("pp.prepare_paired",), case_prepare_paired_pbmc),
        Case("srrr", ("tl.srrr",), case_srrr),
        Case("sbnn_project", ("tl.sbnn", "tl.project"), case_sbnn_project),
        Case("sbnn_model_train", ("models.SBNN.train",), case_sbnn_model_train),
        Case("cross_validate_srrr", ("tl.cross_validate", "tl.cv_folds"), case_cross_validate_srrr),
        Case(
            "cross_validate_sbnn_ensemble",
            ("tl.cross_validate",),
            case_cross_validate_sbnn_ensemble,
        ),
        Case(
            "cross_validate_sbnn_sequential",
            ("tl.cross_validate",),
            case_cross_validate_sbnn_sequential,
        ),
        Case(
            "selection_stability_sbnn", ("tl.selection_stability",), case_selection_stability_sbnn
        ),
        Case(
            "selection_stability_srrr_folds",
            ("tl.selection_stability",),
            case_selection_stability_srrr_folds,
        ),
        Case("compare_methods", ("tl.compare_methods",), case_compare_methods),
        Case("cca_project_tsne", ("tl.cca", "tl.cca_project", "tl.tsne"), case_cca_project_tsne),
        Case(
            "coupled_autoencoder",
            ("tl.coupled_autoencoder", "tl.cross_modal_predict"),
            case_coupled_autoencoder,
        ),
        Case("coupled_model_train", ("models.CoupledAutoencoder.train",), case_coupled_model_train),
        Case(
            "sivae_tools",
            ("tl.sivae", "tl.gene_centrality", "tl.gene_neighbors", "tl.decoder_attribution"),
            case_sivae_tools,
        ),
        Case("gene_centrality_pvalues", ("tl.gene_centrality",), case_gene_centrality_pvalues),
        Case("sivae_model_train", ("models.SIVAE.train",), case_sivae_model_train),
        Case("network_similarity", ("tl.network_similarity",), case_network_similarity),
        Case("pbmc_srrr_sbnn", ("tl.srrr", "tl.sbnn"), case_pbmc_srrr_sbnn),
        Case("m1_slice", ("pp.prepare_paired", "tl.srrr", "tl.cca"), case_m1_slice, needs=M1_FILE),
    ]
}


# public names with no case of their own, and why
NOT_COVERED = {
    "tl.sbnn_consensus": "deprecated alias (FutureWarning) of selection_stability(consensus=True)",
}


def public_names() -> list[str]:
    """What the cases must cover: every ``mv.tl`` function, ``pp.prepare_paired`` and each
    model class's ``train``."""
    import multiviz as mv

    return (
        [f"tl.{name}" for name in mv.tl.__all__]
        + ["pp.prepare_paired"]
        + [f"models.{name}.train" for name in mv.models.__all__]
    )


def run_case(case: Case) -> dict:
    """Run one case under fixed thread/seed settings; its leaves, run timings left out."""
    import torch
    from threadpoolctl import threadpool_limits

    import multiviz as mv

    from .digest import tolerant

    saved = (
        torch.get_num_threads(),
        torch.get_default_dtype(),
        mv.settings.num_threads,
        mv.settings.verbosity,
    )
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float32)
    mv.settings.num_threads = 1
    mv.settings.verbosity = 0
    random.seed(0)
    np.random.seed(0)  # noqa: NPY002 - the legacy global state some libraries draw from
    torch.manual_seed(0)
    try:
        with threadpool_limits(limits=1), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            leaves = case.run()
    finally:
        torch.set_num_threads(saved[0])
        torch.set_default_dtype(saved[1])
        mv.settings.num_threads, mv.settings.verbosity = saved[2], saved[3]
    skip = dict.fromkeys(NOT_OUTPUTS, "run timing")
    return {k: v for k, v in sorted(leaves.items()) if tolerant(k, skip) is None}
