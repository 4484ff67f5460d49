"""siVAE benchmark -> benchmarks/results/sivae.json.

Parts (run all, or one with ``--part``; each part merges its results into the JSON):

a  hub simulation (``simulate_gene_network``, paper design, 64-d): hubs by centrality,
   isolated-gene loading norms, community k-NN purity of loadings;
b  2-d k-NN (k = 80, balanced accuracy) cell-type accuracy, 5-fold, paper protocol, on M1
   Patch-seq RNA by ``rna_family``: siVAE vs a plain VAE of the same size vs LDVAE;
c  Spearman between siVAE loadings and decoder attributions, attribution wall time vs
   siVAE training time (the fold-0 model of part b);
d  step/epoch time vs scvi-tools SCVI on the same data, and throughput + peak RSS on
   100k simulated cells x 20k genes (sparse, CPU, a bounded number of steps).

Usage: ``python benchmarks/paper/sivae.py [--part a|b|c|d] [--folds N]``
(``MULTIVIZ_SHARED_DATA`` overrides the shared data folder).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)


sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
from _common import DATA, RESULTS, hardware  # noqa: E402

import multiviz as mv  # noqa: E402

OUT = Path(os.environ.get("SIVAE_BENCH_OUT", RESULTS / "sivae.json"))
QUIET = {"enable_progress_bar": False}


def save(part: str, result: dict) -> None:
    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    data[part] = result
    data.setdefault("hardware_by_part", {})[part] = hardware()
    data.setdefault("commands", {})[part] = "python " + " ".join(sys.argv)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=2, default=float))
    print(json.dumps({part: result}, indent=2, default=float), flush=True)


# -- (a) hubs -------------------------------------------------------------------------------------
def part_hubs(epochs: int, hidden: tuple[int, ...] | None = None) -> None:
    """Hub recovery; ``epochs=0``: the default schedule (each step by convergence).

    ``hidden``: other hidden layers than the default (a probe; saved as ``hubs_default_h<first>``).
    """
    adata = mv.datasets.simulate_gene_network(
        random_state=0
    )  # paper: 5000 cells, 5 x 50 + 50 genes
    t, cpu = time.perf_counter(), time.process_time()
    schedule = (
        {"max_epochs": epochs, "pretrain_epochs": epochs, "feature_pretrain_epochs": epochs}
        if epochs
        else {}
    )
    sizes = {"n_hidden": hidden} if hidden else {}
    mv.tl.sivae(adata, n_latent=64, **schedule, **sizes, **QUIET)
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    steps = adata.uns["sivae"]["steps"]
    hubs = set(adata.var_names[adata.var["hub"].to_numpy()])
    top5 = list(mv.tl.gene_centrality(adata, n_top=5).index)
    norms = np.linalg.norm(adata.varm["sivae_loadings"], axis=1)
    iso = (adata.var["community"] == "isolated").to_numpy()
    purity = mv.metrics.knn_purity(
        adata.varm["sivae_loadings"], adata.var["community"].astype(str), n_neighbors=10, mask=~iso
    )
    save(
        ("hubs" if epochs else "hubs_default") + (f"_h{hidden[0]}" if hidden else ""),
        {
            "top5_hits": len(hubs & set(top5)),
            "top5": top5,
            "isolated_norm_ratio": float(np.median(norms[iso]) / np.median(norms[~iso])),
            "community_purity": purity,
            "community_purity_k": 10,
            "mean_gene_r2": float(adata.var["sivae_centrality"].mean()),
            "r2_linear": adata.uns["sivae"]["r2_linear"],
            "n_cells": adata.n_obs,
            "n_genes": adata.n_vars,
            "n_latent": 64,
            "n_hidden": list(hidden) if hidden else "default",
            "epochs_per_step": [int(steps[k]["epochs"]) for k in steps],
            "stopped_by": {
                k: str(v.get("stopped_by", "explicit epochs")) for k, v in steps.items()
            },
            "schedule": "explicit" if epochs else "default (by convergence)",
            "train_seconds": seconds,
            "cpu_s": cpu,
            "targets": {
                "top5_hits": 5,
                "isolated_norm_ratio": "< 0.5",
                "community_purity": ">= 0.9",
            },
        },
    )


# -- (b) + (c) k-NN accuracy on M1 and attributions -------------------------------------------------------
def _m1():
    import mudata as md

    mdata = md.read_h5mu(DATA / "m1_patchseq_scala2021.h5mu")
    rna = mdata["rna"]
    labels = mdata.obs["rna_family"].astype(str).to_numpy()
    keep = labels != "low quality"
    counts = rna.X[keep].toarray().astype(np.float32)
    return counts, labels[keep], rna.var_names.to_numpy()


def _lognorm(counts):
    lib = counts.sum(1, keepdims=True)
    return np.log1p(counts / np.maximum(lib, 1) * np.median(lib)).astype(np.float32)


def part_knn(
    n_folds_run: int,
    epochs: int,
    feature_epochs: int,
    joint_epochs: int,
    vae_epochs: int,
    ldvae_epochs: int,
) -> None:
    import scvi
    from anndata import AnnData
    from scipy.stats import spearmanr
    from sklearn.model_selection import StratifiedKFold

    counts, labels, genes = _m1()
    logx = _lognorm(counts)  # per-cell operation: no information shared across cells
    folds = list(StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(counts, labels))
    res = {
        "sivae": [],
        "sivae_after_step1": [],
        "vae": [],
        "ldvae": [],
        "seconds": {"sivae": [], "vae": [], "ldvae": []},
    }
    attribution = None
    for fold, (tr, te) in enumerate(folds[:n_folds_run]):
        mean, std = mv.pp.fit_zscore(logx[tr])
        xtr, xte = mv.pp.apply_zscore(logx[tr], mean, std), mv.pp.apply_zscore(logx[te], mean, std)
        ad_tr, ad_te = AnnData(xtr), AnnData(xte)
        ad_tr.var_names = ad_te.var_names = genes
        # siVAE (paper architecture, 2-d, default gene handling); step 1, then steps 2 + 3
        mv.models.SIVAE.setup_anndata(ad_tr)
        model = mv.models.SIVAE(ad_tr, n_latent=2, random_state=fold)
        t = time.perf_counter()
        model.train(max_epochs=0, pretrain_epochs=epochs, feature_pretrain_epochs=0, **QUIET)
        res["sivae_after_step1"].append(
            mv.metrics.knn_accuracy(
                model.get_latent_representation(),
                labels[tr],
                model.get_latent_representation(ad_te),
                labels[te],
            )
        )
        model.train(
            max_epochs=joint_epochs,
            pretrain_epochs=0,
            feature_pretrain_epochs=feature_epochs,
            **QUIET,
        )
        res["seconds"]["sivae"].append(time.perf_counter() - t)
        res["sivae"].append(
            mv.metrics.knn_accuracy(
                model.get_latent_representation(),
                labels[tr],
                model.get_latent_representation(ad_te),
                labels[te],
            )
        )
        if fold == 0:
            attribution = _attribution(model, res["seconds"]["sivae"][0], spearmanr)
        # plain VAE of the same size: the cell-wise VAE of siVAE alone (step 1 only)
        ad_tr2 = ad_tr.copy()
        mv.models.SIVAE.setup_anndata(ad_tr2)
        vae = mv.models.SIVAE(ad_tr2, n_latent=2, random_state=fold)
        t = time.perf_counter()
        vae.train(max_epochs=0, pretrain_epochs=vae_epochs, feature_pretrain_epochs=0, **QUIET)
        res["seconds"]["vae"].append(time.perf_counter() - t)
        res["vae"].append(
            mv.metrics.knn_accuracy(
                vae.get_latent_representation(),
                labels[tr],
                vae.get_latent_representation(ad_te),
                labels[te],
            )
        )
        # LDVAE on raw counts
        c_tr, c_te = AnnData(counts[tr]), AnnData(counts[te])
        scvi.model.LinearSCVI.setup_anndata(c_tr)
        scvi.settings.seed = fold
        ld = scvi.model.LinearSCVI(c_tr, n_latent=2, n_hidden=512, n_layers=3)
        t = time.perf_counter()
        ld.train(max_epochs=ldvae_epochs, **QUIET)
        res["seconds"]["ldvae"].append(time.perf_counter() - t)
        res["ldvae"].append(
            mv.metrics.knn_accuracy(
                ld.get_latent_representation(),
                labels[tr],
                ld.get_latent_representation(c_te),
                labels[te],
            )
        )
        summary = {
            "m1_rna_family": {
                **{k: float(np.mean(res[k])) for k in ("sivae", "vae", "ldvae")},
                "sivae_after_step1": float(np.mean(res["sivae_after_step1"])),
                "per_fold": {k: res[k] for k in ("sivae", "sivae_after_step1", "vae", "ldvae")},
                "train_seconds": res["seconds"],
                "n_folds_run": fold + 1,
                "n_folds": 5,
                "k": 80,
                "metric": "balanced accuracy of a k-NN classifier on test cells (paper Fig. 2b)",
                "n_cells": int(len(labels)),
                "n_genes": int(counts.shape[1]),
                "preprocessing": "log1p(counts / library * median library); z-score fit on the training fold (Gaussian models); raw counts for LDVAE",
                "config_sivae": {
                    "epochs_per_step": [epochs, feature_epochs, joint_epochs],
                    "gene_batch_size": "auto (all 1000 genes per step)",
                    "feature_input": "pca(256), training cells only",
                },
                "config_vae": {
                    "what": "siVAE's cell-wise VAE alone (same 1024-512-128 architecture, Gaussian)",
                    "epochs": vae_epochs,
                },
                "config_ldvae": {
                    "what": "scvi.model.LinearSCVI(n_hidden=512, n_layers=3), NB, raw counts",
                    "epochs": ldvae_epochs,
                },
                "targets": "siVAE within 2 points of VAE and above LDVAE",
            },
            "pbmc": "not run: the PBMC fixtures carry no cell-type labels",
        }
        save("knn", summary)
        if attribution is not None:
            save("attribution", attribution)


def _attribution(model, train_seconds, spearmanr) -> dict:
    load = model.get_loadings().to_numpy()
    out = {"methods": {}, "train_seconds_sivae": train_seconds}
    for method in ["saliency", "grad_x_input", "integrated_gradients", "deeplift"]:
        u = mv.tl.decoder_attribution(model, method=method, n_cells=2000)
        rhos = []
        for d in range(load.shape[1]):
            a = u.iloc[:, d].to_numpy()
            ref = np.abs(load[:, d]) if method == "saliency" else load[:, d]
            rhos.append(float(abs(spearmanr(ref, a)[0])))
        out["methods"][method] = {
            "spearman_per_dim": rhos,
            "seconds": u.attrs["seconds"],
            "n_cells": u.attrs["n_cells"],
        }
    all_rhos = [r for m in out["methods"].values() for r in m["spearman_per_dim"]]
    out["spearman_median"] = float(np.median(all_rhos))
    out["spearman_median_deeplift"] = float(
        np.median(out["methods"]["deeplift"]["spearman_per_dim"])
    )
    out["seconds"] = float(sum(m["seconds"] for m in out["methods"].values()))
    out["note"] = (
        "|Spearman| between siVAE loadings and first-PC summaries of decoder attributions per dimension "
        "(PC sign is arbitrary); saliency compared with |loadings|. Model: fold-0 siVAE of part b (M1, 2-d). "
        "Paper: 0.73 overall, 0.98 vs DeepLIFT."
    )
    return out


# -- (d) speed -------------------------------------------------------------------------------------------------
def _sparse_counts(n_cells, n_genes, density, seed=0):
    from scipy import sparse

    rng = np.random.default_rng(seed)
    nnz_row = rng.binomial(n_genes, density, size=n_cells)
    indptr = np.r_[0, np.cumsum(nnz_row)]
    indices = np.empty(indptr[-1], dtype=np.int32)
    for i in range(n_cells):
        indices[indptr[i] : indptr[i + 1]] = np.sort(rng.choice(n_genes, nnz_row[i], replace=False))
    data = (rng.geometric(0.4, size=indptr[-1])).astype(np.float32)
    return sparse.csr_matrix((data, indices, indptr), shape=(n_cells, n_genes))


class _StepTimer:
    """Lightning callback: wall time of training steps after a warm-up."""

    def __new__(cls, warmup=3):
        from lightning.pytorch.callbacks import Callback

        class Timer(Callback):
            def __init__(self):
                self.times, self._t = [], None

            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                self._t = time.perf_counter()

            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                self.times.append(time.perf_counter() - self._t)

            def per_step(self):
                t = self.times[warmup:] or self.times
                return float(np.median(t))

        return Timer()


def part_speed(n_steps: int) -> None:
    import scvi
    from anndata import AnnData

    result = {}
    # same data, same hidden sizes: 10k cells x 2000 genes (sparse counts), NB likelihood for both
    x = _sparse_counts(
        *((1_000, 500) if os.environ.get("SIVAE_BENCH_SMALL") else (10_000, 2_000)), 0.1, seed=1
    )
    ad = AnnData(x)
    timer = _StepTimer()
    scvi.model.SCVI.setup_anndata(ad)
    sc = scvi.model.SCVI(ad, n_latent=2, n_hidden=1024, n_layers=3)
    sc.train(max_epochs=1, max_steps=n_steps, callbacks=[timer], **QUIET)
    scvi_step = timer.per_step()
    ad2 = AnnData(x)
    mv.models.SIVAE.setup_anndata(ad2)
    m = mv.models.SIVAE(ad2, n_latent=2, likelihood="nb", feature_input="downsample")
    timers = {}
    for phase_epochs, name in [((1, 0, 0), "step1"), ((0, 0, 1), "joint")]:
        timers[name] = _StepTimer()
        m.train(
            max_epochs=phase_epochs[2],
            pretrain_epochs=phase_epochs[0],
            feature_pretrain_epochs=phase_epochs[1],
            max_steps=n_steps,
            callbacks=[timers[name]],
            **QUIET,
        )
    # gene minibatching of the feature branch in step 3 (all 2000 genes vs 512 per step)
    ad3 = AnnData(x)
    mv.models.SIVAE.setup_anndata(ad3)
    m3 = mv.models.SIVAE(
        ad3, n_latent=2, likelihood="nb", feature_input="downsample", gene_batch_size=512
    )
    timers["joint_gene_batch_512"] = _StepTimer()
    m3.train(
        max_epochs=1,
        pretrain_epochs=0,
        feature_pretrain_epochs=0,
        max_steps=n_steps,
        callbacks=[timers["joint_gene_batch_512"]],
        **QUIET,
    )
    steps_per_epoch = int(np.ceil(0.9 * ad.n_obs / 128))
    sivae_epoch = (timers["step1"].per_step() + timers["joint"].per_step()) * steps_per_epoch
    result["same_data"] = {
        "data": "10,000 simulated cells x 2,000 genes, sparse counts (10% non-zero)",
        "scvi": "SCVI(n_hidden=1024, n_layers=3, n_latent=2), NB (scvi has one hidden width; siVAE 1024-512-128)",
        "sivae": "SIVAE(n_latent=2, likelihood='nb', feature_input='downsample'(256)), all genes per step",
        "scvi_step_s": scvi_step,
        "sivae_step1_step_s": timers["step1"].per_step(),
        "sivae_joint_step_s": timers["joint"].per_step(),
        "sivae_joint_step_s_gene_batch_512": timers["joint_gene_batch_512"].per_step(),
        "steps_timed": n_steps,
    }
    result["epoch_ratio_vs_scvi"] = timers["joint"].per_step() / scvi_step
    result["epoch_ratio_vs_scvi_gene_batch_512"] = (
        timers["joint_gene_batch_512"].per_step() / scvi_step
    )
    result["epoch_ratio_note"] = (
        "joint-step (step 3) time / SCVI step time at batch 128; a full siVAE fit has a step-1 epoch "
        f"(ratio {timers['step1'].per_step() / scvi_step:.2f}) and a step-3 epoch per epoch of SCVI "
        f"(combined ratio {sivae_epoch / (scvi_step * steps_per_epoch):.2f}) plus step 2 over genes"
    )
    save("speed", result)
    del sc, m, ad, ad2, x

    # 100k x 20k sparse
    t = time.perf_counter()
    big = (
        (2_000, 3_000) if os.environ.get("SIVAE_BENCH_SMALL") else (100_000, 20_000)
    )  # smoke-test switch
    x = _sparse_counts(*big, 0.03, seed=2)
    gen_s = time.perf_counter() - t
    ad = AnnData(x)
    mv.models.SIVAE.setup_anndata(ad)
    m = mv.models.SIVAE(ad, n_latent=2, likelihood="nb", feature_input="downsample")
    timer1, timer3 = _StepTimer(warmup=2), _StepTimer(warmup=2)
    t = time.perf_counter()
    m.train(
        max_epochs=0,
        pretrain_epochs=1,
        feature_pretrain_epochs=0,
        max_steps=n_steps,
        callbacks=[timer1],
        **QUIET,
    )
    m.train(
        max_epochs=1,
        pretrain_epochs=0,
        feature_pretrain_epochs=0,
        max_steps=n_steps,
        callbacks=[timer3],
        **QUIET,
    )
    wall = time.perf_counter() - t
    step = timer3.per_step()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    result["cells_per_s_100k"] = 128 / step
    result["peak_rss_gb_100k"] = peak
    result["100k"] = {
        "data": "100,000 simulated cells x 20,000 genes, CSR counts, 3% non-zero "
        f"({x.nnz:,} stored values; {(x.data.nbytes + x.indices.nbytes + x.indptr.nbytes) / 1e9:.2f} GB)",
        "model": "SIVAE(n_latent=2, likelihood='nb', feature_input='downsample'(256), gene_batch_size auto=1024)",
        "steps_timed": f"{n_steps} steps of step 1 and {n_steps} of step 3 (joint), batch 128, median after warm-up",
        "step1_s": timer1.per_step(),
        "joint_step_s": step,
        "cells_per_s_joint": 128 / step,
        "cells_per_s_step1": 128 / timer1.per_step(),
        "projected_joint_epoch_min": 0.9 * 100_000 / 128 * step / 60,
        "wall_s_incl_setup": wall,
        "data_generation_s": gen_s,
        "peak_rss_gb": peak,
        "gpu": "not available in this session",
    }
    save("speed", result)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--part", choices=["a", "b", "d", "all"], default="all")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--epochs", type=int, default=50, help="epochs per step of part a; 0: the default schedule"
    )
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument(
        "--hidden", default=None, help="part a: hidden sizes, e.g. 512,256,128 (a probe)"
    )
    args = parser.parse_args()
    mv.settings.verbosity = 1
    if args.part in ("a", "all"):
        hidden = tuple(int(h) for h in args.hidden.split(",")) if args.hidden else None
        part_hubs(args.epochs, hidden)
    if args.part in ("b", "all"):
        part_knn(
            args.folds,
            epochs=2 * args.epochs,
            feature_epochs=args.epochs,
            joint_epochs=args.epochs,
            vae_epochs=3 * args.epochs,
            ldvae_epochs=100,
        )
    if args.part in ("d", "all"):
        part_speed(args.steps)


if __name__ == "__main__":
    main()
