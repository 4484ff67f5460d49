"""siVAE's default schedule against SCVI's default -> benchmarks/results/convergence_sivae.json.

The siVAE part of ``convergence.json``. For M1 Patch-seq RNA (1,208 cells with a family label,
1,000 genes) and a simulated 5,000-cell, 2,000-gene count set with 10 planted types
(``mv.datasets.simulate_patchseq``), on one stratified 80/20 split (held-out cells are
used by no fit):

* siVAE at its defaults (``mv.models.SIVAE``, ``n_latent=2``, ``max_epochs=None``) on
  log1p(CP-median) expression z-scored with training-cell statistics;
* ``scvi.model.SCVI`` at its defaults (``n_latent=10``) and with ``n_latent=2`` on the raw
  counts of the same training cells;
* PCA with 2 components of the same z-scored training cells.

Each fit is timed (wall and process CPU seconds, ``os.getloadavg()`` before and after; one
run each, interleaved siVAE, SCVI, SCVI-2). k-NN accuracy: ``mv.metrics.knn_accuracy``
(balanced accuracy, k = 15) of a classifier fitted on the training cells' embedding and
scored on the held-out cells' embedding (encoders applied to cells they never saw).
siVAE's feature-input build (randomised PCA of Xᵀ) is timed inside the fit. Convergence:
relative change of the epoch-mean training loss over the last 10 % of epochs of the
last step (siVAE's joint step; SCVI's only step).

Usage: ``python benchmarks/convergence/convergence_sivae.py [--data m1 sim5000] [--fits sivae scvi scvi2]``
(the JSON is updated in place, so single fits can be re-run).
One torch thread (``torch.set_num_threads(1)``, ``mv.settings.num_threads = 1``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)


sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
from _common import DATA, RESULTS, hardware  # noqa: E402

import multiviz as mv  # noqa: E402

OUT = RESULTS / "convergence_sivae.json"
QUIET = {"enable_progress_bar": False}
K = 15


def load(name: str):
    """Raw counts (CSR), labels and a description."""
    if name == "m1":
        import mudata as md

        mdata = md.read_h5mu(DATA / "m1_patchseq_scala2021.h5mu")
        labels = mdata.obs["rna_family"].astype(str).to_numpy()
        keep = labels != "low quality"
        desc = "M1 Patch-seq RNA (Scala 2021), raw exon counts, 1000 genes; label rna_family"
        return mdata["rna"].X[keep].tocsr(), labels[keep], desc
    mdata = mv.datasets.simulate_patchseq(
        n_cells=5000, n_genes=2000, n_types=10, marker_fraction=0.02, theta=2.0, random_state=0
    )
    desc = (
        "mv.datasets.simulate_patchseq(n_cells=5000, n_genes=2000, n_types=10, "
        "marker_fraction=0.02, theta=2.0, random_state=0) RNA counts; label cell_type"
    )
    return mdata["rna"].X.tocsr(), mdata.obs["cell_type"].astype(str).to_numpy(), desc


def lognorm(counts) -> np.ndarray:
    x = counts.toarray().astype(np.float64)
    lib = x.sum(1, keepdims=True)
    return np.log1p(x / np.maximum(lib, 1) * np.median(lib)).astype(np.float32)


def timed(fn):
    load0, t0, c0 = os.getloadavg(), time.perf_counter(), time.process_time()
    out = fn()
    return out, {
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
        "loadavg_before": list(load0),
        "loadavg_after": list(os.getloadavg()),
    }


def last_tenth_change(loss) -> float | None:
    """(loss at the start of the last 10 % of epochs - final loss) / |final loss|."""
    loss = np.asarray(loss, dtype=float).ravel()
    if len(loss) < 2:
        return None
    k = max(int(round(0.1 * len(loss))), 1)
    return float((loss[-k - 1] - loss[-1]) / abs(loss[-1]))


def fit_sivae(xtr, xte) -> dict:
    from anndata import AnnData

    from multiviz.models.sivae import SIVAE

    ad_tr, ad_te = AnnData(xtr), AnnData(xte)
    SIVAE.setup_anndata(ad_tr)
    build = {}

    def run():
        model = SIVAE(ad_tr)  # n_latent=2, the default
        c0, t0 = time.process_time(), time.perf_counter()
        model._prepare_feature_side()  # what train() does first; timed on its own here
        build.update(cpu_s=time.process_time() - c0, wall_s=time.perf_counter() - t0)
        model.train(**QUIET)
        return model

    model, t = timed(run)
    joint = model.phase_history_["joint"]["train_loss"]
    steps = {
        "cell_pretrain": int(np.ceil(len(model._train_idx) / 128)),
        "feature_pretrain": int(np.ceil(model.module.n_input / 32)),
        "joint": int(np.ceil(len(model._train_idx) / model.joint_batch_size_)),
    }
    epochs = dict(model.epochs_per_phase_)
    return {
        "ztr": model.get_latent_representation(ad_tr),
        "zte": model.get_latent_representation(ad_te),
        **t,
        "feature_input_build_cpu_s": build["cpu_s"],
        "feature_input_build_wall_s": build["wall_s"],
        "feature_input_fraction": build["cpu_s"] / t["cpu_s"],
        "epochs_per_step": epochs,
        "steps_per_step": {k: epochs[k] * steps[k] for k in epochs},
        "joint_batch_size": model.joint_batch_size_,
        "n_latent": model.module.n_latent,
        "joint_train_loss_last10pct_rel_change": last_tenth_change(joint),
    }


def fit_scvi(ctr, cte, n_latent: int | None) -> dict:
    import scvi
    from anndata import AnnData

    ad_tr, ad_te = AnnData(ctr.astype(np.float32)), AnnData(cte.astype(np.float32))
    scvi.model.SCVI.setup_anndata(ad_tr)
    kw = {} if n_latent is None else {"n_latent": n_latent}

    def run():
        model = scvi.model.SCVI(ad_tr, **kw)
        model.train(**QUIET)
        return model

    model, t = timed(run)
    hist = model.history["train_loss"].to_numpy(dtype=float).ravel()
    return {
        "ztr": model.get_latent_representation(ad_tr),
        "zte": model.get_latent_representation(ad_te),
        **t,
        "epochs": len(hist),
        "n_latent": model.module.n_latent,
        "train_loss_last10pct_rel_change": last_tenth_change(hist),
    }


def sparse_build_time(counts, tr) -> dict:
    """The feature-input build on sparse counts (``likelihood="nb"`` path), for scale."""
    from multiviz.models.sivae._feature_input import build_feature_input

    _, t = timed(
        lambda: build_feature_input(counts, tr, kind="pca", n_components=256, log_normalise=True)
    )
    return {"cpu_s": t["cpu_s"], "wall_s": t["wall_s"]}


def save(data: dict) -> None:
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(data, indent=2, default=float))


def run_dataset(name: str, data: dict, fits: list[str]) -> None:
    """All fits of one data set, saved after each."""
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split

    counts, labels, desc = load(name)
    idx = np.arange(counts.shape[0])
    tr, te = train_test_split(idx, test_size=0.2, stratify=labels, random_state=0)
    tr, te = np.sort(tr), np.sort(te)
    logx = lognorm(counts)
    mean, std = mv.pp.fit_zscore(logx[tr])
    xtr, xte = mv.pp.apply_zscore(logx[tr], mean, std), mv.pp.apply_zscore(logx[te], mean, std)
    res = data.setdefault(name, {})
    res.update(data=desc, n_train=len(tr), n_test=len(te), n_genes=counts.shape[1])

    def knn(ztr, zte):
        return mv.metrics.knn_accuracy(ztr, labels[tr], zte, labels[te], n_neighbors=K)

    pca = PCA(2, random_state=0).fit(xtr)
    res["knn_pca2"] = knn(pca.transform(xtr), pca.transform(xte))
    runs = [
        ("sivae", lambda: fit_sivae(xtr, xte)),
        ("scvi", lambda: fit_scvi(counts[tr], counts[te], None)),
    ]
    runs.append(("scvi2", lambda: fit_scvi(counts[tr], counts[te], 2)))
    for key, fn in [r for r in runs if r[0] in fits]:
        out = fn()
        res[f"knn_{key}"] = knn(out.pop("ztr"), out.pop("zte"))
        res[f"{key}_seconds"] = out["wall_s"]
        res[f"{key}_cpu_seconds"] = out["cpu_s"]
        res[f"{key}_fit"] = out
        if key == "sivae":
            res["feature_input_fraction"] = out["feature_input_fraction"]
        if "sivae_fit" in res and "scvi_fit" in res:
            res["time_ratio"] = res["sivae_cpu_seconds"] / res["scvi_cpu_seconds"]
            res["time_ratio_wall"] = res["sivae_seconds"] / res["scvi_seconds"]
        data["loadavg"] = list(os.getloadavg())
        save(data)
        print(
            name,
            key,
            json.dumps({k: v for k, v in res.items() if "fit" not in k}, default=float),
            flush=True,
        )
    res["feature_input_sparse_counts"] = sparse_build_time(counts, tr)
    save(data)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", nargs="+", default=["m1", "sim5000"])
    parser.add_argument("--fits", nargs="+", default=["sivae", "scvi", "scvi2"])
    args = parser.parse_args()
    mv.settings.num_threads = 1
    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    data["hardware"] = hardware(torch_threads_set=1)
    data["command"] = "python " + " ".join(sys.argv)
    data["notes"] = (
        "One run per fit, interleaved (siVAE, SCVI default, SCVI n_latent=2), one torch thread; "
        "the machine was shared (see loadavg), so time_ratio uses process CPU seconds "
        "(time_ratio_wall: wall seconds). siVAE: mv.models.SIVAE defaults (n_latent=2, the "
        "paper's size for pictures and the class default; gamma=0.5; max_epochs=None, "
        "the step-based default schedule, joint step at 512 cells per step). SCVI: "
        "scvi.model.SCVI defaults (n_latent=10, max_epochs=min(400, 400*20000/n)); knn_scvi is "
        "on its 10-d latent, knn_scvi2 on SCVI with n_latent=2. k-NN: balanced accuracy, "
        f"k={K}, classifier fitted on the training cells' embedding, scored on 20 % held-out "
        "cells (stratified split, random_state=0) that no fit saw. feature_input_fraction: CPU "
        "of the randomised PCA of X^T / CPU of the whole siVAE fit."
    )
    for name in args.data:
        run_dataset(name, data, fits=args.fits)


if __name__ == "__main__":
    main()
