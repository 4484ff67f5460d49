"""What siVAE's joint step does to the 2-d embedding -> results/sivae_joint_tradeoff.json.

On one stratified 80/20 split (the split of ``convergence_sivae.py``), steps 1 and 2 are
trained once at the default schedule; then the joint step (default length, 512 cells per
step) is trained from that same state under several settings:

* ``default``: γ = 0.5 (multiviz's default), lr 1e-3;
* ``lr1e-4``: γ = 0.5, lr 1e-4 (gentler fine-tuning of the pre-trained encoders);
* ``gamma0.05``: the paper's γ, lr 1e-3; ``gamma0.05_lr1e-4``;
* ``gamma0``: no interpretability term.

``--gene-batch`` instead trains the joint step (default γ and lr) with all genes in the feature
branch per step (the default below 2,048 genes) and with gene minibatches of 512 and 256,
from one shared state, into ``<data>.gene_batch_probe``: the speed/quality trade-off of the
``gene_batch_size`` option.

For each: the 2-d k-NN accuracy (balanced, k = 15) of held-out cells, and the
interpretability measures of ``sivae_interpretability.py`` (held-out per-gene R² of the
decoder and of the linear term v·z, |Spearman| of the loadings against the least-squares
coefficients of X on the scores and against DeepLIFT). The step-1 encoder's k-NN accuracy
(before the joint step) is the reference.

Usage: ``python benchmarks/quality/sivae_joint_tradeoff.py --data m1 sim5000`` (one torch thread).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
from _common import RESULTS, hardware, use_groups  # noqa: E402

use_groups("convergence", "paper")  # convergence_sivae.py, sivae_interpretability.py
from convergence_sivae import K, load, lognorm  # noqa: E402
from sivae_interpretability import evaluate  # noqa: E402

import multiviz as mv  # noqa: E402

OUT = RESULTS / "sivae_joint_tradeoff.json"
VARIANTS = {
    "default": (None, {}),
    "lr1e-4": (None, {"lr": 1e-4}),
    "gamma0.05": (0.05, {}),
    "gamma0.05_lr1e-4": (0.05, {"lr": 1e-4}),
    "gamma0": (0.0, {}),
}
GENE_BATCHES = {"all_genes": None, "genes512": 512, "genes256": 256}
QUIET = {"enable_progress_bar": False}


def run(name: str, gene_batch: bool = False) -> dict:
    from anndata import AnnData
    from sklearn.decomposition import PCA
    from sklearn.model_selection import train_test_split

    from multiviz.models.sivae import SIVAE
    from multiviz.models.sivae._schedule import default_schedule

    counts, labels, desc = load(name)
    tr, te = train_test_split(
        np.arange(counts.shape[0]), test_size=0.2, stratify=labels, random_state=0
    )
    tr, te = np.sort(tr), np.sort(te)
    logx = lognorm(counts)
    mean, std = mv.pp.fit_zscore(logx[tr])
    adtr = AnnData(mv.pp.apply_zscore(logx[tr], mean, std))
    adte = AnnData(mv.pp.apply_zscore(logx[te], mean, std))
    SIVAE.setup_anndata(adtr)

    def knn(ztr, zte):
        return float(mv.metrics.knn_accuracy(ztr, labels[tr], zte, labels[te], n_neighbors=K))

    pca = PCA(2, random_state=0).fit(adtr.X)
    out = {"data": desc, "n_train": len(tr), "n_test": len(te)}
    out["knn_pca2"] = knn(pca.transform(adtr.X), pca.transform(adte.X))
    model = SIVAE(adtr)
    sched = default_schedule(int(0.9 * len(tr)), counts.shape[1])
    c0 = time.process_time()
    model.train(
        pretrain_epochs=sched["cell_pretrain"]["epochs"],
        feature_pretrain_epochs=sched["feature_pretrain"]["epochs"],
        max_epochs=0,
        **QUIET,
    )
    out["steps_1_2_cpu_s"] = time.process_time() - c0
    out["knn_step1_encoder"] = knn(
        model.get_latent_representation(adtr), model.get_latent_representation(adte)
    )
    out["joint_epochs"] = sched["joint"]["epochs"]
    variants = VARIANTS
    if gene_batch:
        variants = {k: (None, {"_genes": g}) for k, g in GENE_BATCHES.items()}
    for variant, (gamma, kw) in variants.items():
        m = copy.deepcopy(model)
        kw = dict(kw)
        if "_genes" in kw:
            m.module.gene_batch_size = kw.pop("_genes")
        if gamma is not None:
            m.module.gamma = gamma
        load0, c0 = os.getloadavg(), time.process_time()
        m.train(
            pretrain_epochs=0,
            feature_pretrain_epochs=0,
            max_epochs=sched["joint"]["epochs"],
            joint_batch_size=512,
            **kw,
            **QUIET,
        )
        row = {
            "gene_batch_size": m.module.gene_batch_size,
            "gamma": m.module.gamma,
            "lr": kw.get("lr", 1e-3),
            "cpu_s": time.process_time() - c0,
            "loadavg_before": list(load0),
            "knn": knn(m.get_latent_representation(adtr), m.get_latent_representation(adte)),
        }
        ev = evaluate(m, adtr.X, adte.X, adte)
        row.update(
            {k: ev[k] for k in ("r2_gene", "r2_linear", "spearman_lstsq", "spearman_deeplift")}
        )
        out[variant] = row
        print(name, variant, {k: round(v, 3) for k, v in row.items() if isinstance(v, float)})
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", nargs="+", default=["m1", "sim5000"])
    ap.add_argument("--gene-batch", action="store_true", help="the gene-minibatch probe")
    args = ap.parse_args()
    res = json.loads(OUT.read_text()) if OUT.exists() else {}
    for name in args.data:
        if args.gene_batch:
            res.setdefault(name, {})["gene_batch_probe"] = run(name, gene_batch=True)
            res["gene_batch_probe_command"] = (
                "python benchmarks/quality/sivae_joint_tradeoff.py --gene-batch --data "
                + " ".join(args.data)
            )
            OUT.write_text(json.dumps(res, indent=1))
            continue
        res[name] = run(name)
        res["hardware"] = hardware()
        res["torch_threads"] = 1
        res["command"] = "python benchmarks/quality/sivae_joint_tradeoff.py --data " + " ".join(
            args.data
        )
        OUT.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
