"""Reproduce Table 1 / Fig. 3 / Table 2 of the sBNN paper on M1 without test-fold leakage.

Usage (from the repository root):

    python benchmarks/paper/sbnn_table1.py                    # full run: 10 folds x 5 models
    python benchmarks/paper/sbnn_table1.py --sbnn-folds 5     # fewer folds for the sBNN models
    python benchmarks/paper/sbnn_table1.py --quick            # 2 folds, 1-epoch phases (smoke test)

Writes ``benchmarks/results/sbnn_table1.json`` after every stage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
import mudata as md  # noqa: E402
from _common import DATA, RESULTS, hardware  # noqa: E402

import multiviz as mv  # noqa: E402
from multiviz.linear import srrr_fit  # noqa: E402
from multiviz.metrics import mean_pairwise_jaccard, mean_pairwise_overlap  # noqa: E402
from multiviz.tl import cv_folds  # noqa: E402
from multiviz.tl._paired_data import fold_arrays  # noqa: E402

OUT = RESULTS / "sbnn_table1.json"

PAPER = {
    "srrr_rank2": 0.35,
    "srrr_full": 0.40,
    "sbnn2": 0.40,
    "sbnn64": 0.41,
    "sbnn2_no_pretrain": None,
}
# extra runs that are not part of Table 1 (run with --stages exp_...); results go to "experiments"
EXPERIMENTS = {
    "exp_sbnn2_finetune200": (
        "sbnn",
        {"bottleneck": 2, "n_genes": 25, "pretrain": True, "pruned_epochs": 200},
    ),
    "exp_sbnn2_lasso0.01": (
        "sbnn",
        {"bottleneck": 2, "n_genes": 25, "pretrain": True, "lasso": 0.01},
    ),
}
MODELS = {
    "srrr_rank2": ("srrr", {"rank": 2, "n_genes": 25}),
    "srrr_full": ("srrr", {"rank": 16, "n_genes": 25}),
    "sbnn2": ("sbnn", {"bottleneck": 2, "n_genes": 25, "pretrain": True}),
    "sbnn64": ("sbnn", {"bottleneck": 64, "n_genes": 25, "pretrain": True}),
    "sbnn2_no_pretrain": ("sbnn", {"bottleneck": 2, "n_genes": 25, "pretrain": False}),
}


def bare_loop(X, Y, *, bottleneck=2, n_genes=25, lasso=0.1, seed=0, batch=32, ep=(50, 50, 50, 100)):
    """The same schedule as a plain PyTorch loop (same layers, batches, optimisers).

    Same k-means labels (1000 restarts, clusters of >= 10 cells) and the same hand-over of
    the last pre-training epoch as ``mv.tl.sbnn``.
    """
    from torch import nn
    from torch.nn import functional as F

    from multiviz.models.sbnn import SBNNModule
    from multiviz.models.sbnn._plan import pretrain_labels

    X, Y = torch.as_tensor(X), torch.as_tensor(Y)
    net = SBNNModule(X.shape[1], Y.shape[1], n_latent=bottleneck, seed=seed)
    gen = torch.Generator().manual_seed(seed)
    lab = pretrain_labels(Y.numpy(), 20, seed)
    n_classes = int(lab.max()) + 1
    labels = torch.as_tensor(np.maximum(lab, 0), dtype=torch.long)
    usable = torch.as_tensor(np.flatnonzero(lab >= 0), dtype=torch.long)
    perm = usable[torch.randperm(usable.numel(), generator=gen)]
    n_val = int(round(0.4 * perm.numel()))
    val, tr = perm[:n_val], perm[n_val:]

    def epoch(opt, rows, kind, lasso_w):
        p = rows[torch.randperm(rows.numel(), generator=gen)]
        for s in range(0, p.numel(), batch):
            idx = p[s : s + batch]
            xb = Xc.index_select(0, idx)
            if kind == "ce":
                _, out = net.forward_targets(xb, classify=True)
                loss = F.cross_entropy(out[:, :n_classes], labels[idx])
            else:
                _, out = net.forward_targets(xb)
                loss = F.mse_loss(out, Y[idx])
            if lasso_w:
                loss = loss + lasso_w * net.first.weight.norm(dim=0).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def adam(lr):
        return torch.optim.Adam(
            [p for p in net.parameters() if p.requires_grad], lr=lr, eps=1e-7, weight_decay=2e-10
        )

    Xc = X
    allrows = torch.arange(X.shape[0])
    opt = adam(1e-4)
    for _ in range(ep[0]):
        epoch(opt, tr, "ce", lasso)
        with torch.no_grad():  # the validation loss is computed (and logged) as mv.tl.sbnn does
            logits = net.forward_targets(X[val], classify=True)[1][:, :n_classes]
            float(F.cross_entropy(logits, labels[val]))
    net.head = nn.Linear(net.head.in_features, net.head.out_features)
    for name, p in net.named_parameters():
        p.requires_grad_(not name.startswith(("first.", "encoder_rest.0.")))
    opt = adam(1e-4)
    for _ in range(ep[1]):
        epoch(opt, allrows, "mse", 0.0)
    for p in net.parameters():
        p.requires_grad_(True)
    opt = adam(5e-5)
    for _ in range(ep[2]):
        epoch(opt, allrows, "mse", lasso)
    keep = torch.sort(torch.argsort(net.first.weight.norm(dim=0), descending=True)[:n_genes]).values
    net.prune(keep)
    Xc = X[:, keep].contiguous()
    opt = adam(5e-5)
    for _ in range(ep[3]):
        epoch(opt, allrows, "mse", 0.0)
    return net


def summarise(df, name, paper):
    all_rows = df[df["feature"] == "all"].sort_values("fold")
    feats = df[df["feature"] != "all"]
    per_feature = feats.groupby("feature", sort=False)["r2"].agg(["mean", "std"])
    gene_sets = [g.split(";") for g in all_rows["genes"]]
    return {
        "r2_mean": float(all_rows["r2"].mean()),
        "r2_sd": float(all_rows["r2"].std(ddof=1)) if len(all_rows) > 1 else None,
        "r2_train_mean": float(all_rows["r2_train"].mean()),
        "r2_per_fold": [float(v) for v in all_rows["r2"]],
        "paper_r2": paper,
        "meets_paper": None if paper is None else bool(all_rows["r2"].mean() >= paper - 1e-9),
        "meets_paper_at_2dp": None
        if paper is None
        else bool(round(all_rows["r2"].mean(), 2) >= paper),
        "per_feature_r2": {
            f: {"mean": float(r["mean"]), "sd": float(r["std"])} for f, r in per_feature.iterrows()
        },
        "n_genes_mean": float(all_rows["n_genes"].mean()),
        "genes_per_fold": gene_sets,
        "jaccard_mean": mean_pairwise_jaccard(gene_sets) if len(gene_sets) > 1 else None,
        "pairwise_overlap_mean": mean_pairwise_overlap(gene_sets) if len(gene_sets) > 1 else None,
        "folds_run": [int(f) for f in all_rows["fold"]],
        "seconds": float(all_rows["seconds"].sum()),
        "seconds_per_fold": float(all_rows["seconds"].mean()),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=10, help="folds run for the sRRR models")
    ap.add_argument("--sbnn-folds", type=int, default=10, help="folds run for each sBNN model")
    ap.add_argument(
        "--nopre-folds", type=int, default=None, help="folds for sBNN-2 without pre-training"
    )
    ap.add_argument("--quick", action="store_true", help="smoke test: 2 folds, 1-epoch phases")
    ap.add_argument("--out", default=str(OUT))
    ap.add_argument("--stages", default=None, help="comma list of stages to run (default: all)")
    ap.add_argument(
        "--merge", action="store_true", help="update the existing JSON instead of replacing it"
    )
    ap.add_argument(
        "--speed-repeats", type=int, default=1, help="interleaved repeats of the speed pair"
    )
    args = ap.parse_args()
    sched = {}
    if args.quick:
        args.folds = args.sbnn_folds = 2
        sched = {
            "pretrain_epochs": 1,
            "frozen_epochs": 1,
            "unfrozen_epochs": 1,
            "no_pretrain_epochs": 2,
            "pruned_epochs": 2,
        }
    nopre = args.nopre_folds if args.nopre_folds is not None else args.sbnn_folds

    mdata = md.read_h5mu(DATA / "m1_patchseq_scala2021.h5mu")
    mv.pp.prepare_paired(
        mdata, x="rna", y="ephys", n_top_genes=1000, exclude_genes=None
    )  # the paper's exact input
    result = {
        "command": "python " + " ".join(sys.argv),
        "dataset": "m1_patchseq_scala2021.h5mu (1213 cells, 1000 genes, 16 ephys features)",
        "protocol": (
            "10-fold shuffled KFold (random_state=0), identical folds for all models; per fold the "
            "median library size, log2 normalisation and z-scoring of genes and ephys are fitted on "
            "the training cells; sBNN k-means labels and the pre-training 40% hold-out come from the "
            "training cells; fixed epochs (paper schedule, no checkpoint chosen on the test fold); "
            "R2 = paper eq. 3/4 on test targets scaled with training statistics."
        ),
        "schedule": sched
        or "paper (50 pretrain + 50 frozen + 50 unfrozen, prune to 25, 100 fine-tune; batch 32)",
        "hardware": hardware(
            note="2 CPU cores shared with other jobs during the run; timings are noisy upper bounds"
        ),
        "models": {},
    }

    def dump():
        Path(args.out).write_text(json.dumps(result, indent=1, default=float))

    folds_for = {
        "srrr_rank2": args.folds,
        "srrr_full": args.folds,
        "sbnn2": args.sbnn_folds,
        "sbnn64": args.sbnn_folds,
        "sbnn2_no_pretrain": nopre,
    }
    order = ["srrr_rank2", "srrr_full", "speed", "sbnn2", "sbnn64", "table2", "sbnn2_no_pretrain"]
    if args.stages:
        wanted = args.stages.split(",")
        order = [st for st in order if st in wanted] + [st for st in wanted if st in EXPERIMENTS]
    if args.merge and Path(args.out).exists():
        old = json.loads(Path(args.out).read_text())
        old.setdefault("commands", [old.get("command")]).append(result["command"])
        old["hardware"] = result["hardware"]
        result = old
    for stage in order:
        t0 = time.perf_counter()
        if stage == "speed":
            fold_of = cv_folds(mdata.n_obs, 10, 0)
            tr, _ = fold_arrays(mdata, np.flatnonzero(fold_of != 0), np.flatnonzero(fold_of == 0))
            import anndata as ad

            sub = md.MuData(
                {
                    "rna": ad.AnnData(tr.X, var={"gene": list(tr.gene_names)}),
                    "ephys": ad.AnnData(tr.Y, var={"f": list(tr.feature_names)}),
                }
            )
            sub.mod["rna"].var_names = list(tr.gene_names)
            sub.mod["ephys"].obs_names = sub.mod["rna"].obs_names
            sub.update()
            ep = (1, 1, 1, 2) if args.quick else (50, 50, 50, 100)
            runs_tl, runs_bare, cpu_tl, cpu_bare = [], [], [], []
            for _ in range(args.speed_repeats):  # interleaved so that load changes hit both
                t, c = time.perf_counter(), time.process_time()
                mv.tl.sbnn(sub, bottleneck=2, gene_decoder_epochs=0, **sched)
                runs_tl.append(time.perf_counter() - t)
                cpu_tl.append(time.process_time() - c)
                t, c = time.perf_counter(), time.process_time()
                bare_loop(tr.X, tr.Y, ep=ep)
                runs_bare.append(time.perf_counter() - t)
                cpu_bare.append(time.process_time() - c)
            t_tl, t_bare = min(runs_tl), min(runs_bare)
            res2 = mv.linear.srrr_budget(tr.X, tr.Y, rank=2, n_genes=25)[0]
            t = time.perf_counter()
            for _ in range(3):
                srrr_fit(tr.X, tr.Y, rank=2, lam=res2.lam)
            t_srrr = (time.perf_counter() - t) / 3
            t = time.perf_counter()
            mv.linear.srrr_budget(tr.X, tr.Y, rank=2, n_genes=25)
            t_budget = time.perf_counter() - t
            result["speed"] = {
                "n_train_cells": int(tr.X.shape[0]),
                "sbnn2_fit_s": t_tl,
                "bare_loop_s": t_bare,
                "ratio": t_tl / t_bare,
                "sbnn2_fit_cpu_s": min(cpu_tl),
                "bare_loop_cpu_s": min(cpu_bare),
                "ratio_cpu": min(cpu_tl) / min(cpu_bare),
                "sbnn2_fit_runs_s": runs_tl,
                "bare_loop_runs_s": runs_bare,
                "timing_note": "min over interleaved repeats (tl.sbnn, bare, tl.sbnn, bare, ...)",
                "srrr_rank2_fit_s": t_srrr,
                "srrr_rank2_fit_note": "one fit at the 25-gene penalty (incl. relaxed refit), mean of 3",
                "srrr_rank2_budget_search_s": t_budget,
                "gpu": "not available in this session",
            }
            print(stage, result["speed"], flush=True)
        elif stage == "table2":
            table2 = {}
            for name, bott in (("sbnn2", 2), ("sbnn64", 64)):
                m = mdata.copy()
                mv.tl.sbnn(m, bottleneck=bott, key_added=name, gene_decoder_epochs=0, **sched)
                table2[name] = [str(g) for g in m.uns[name]["selected_genes"]]
            expected = ["Pvalb", "Vip", "Sst", "Gad1", "Lamp5"]
            table2["expected_in_sbnn64"] = expected
            table2["expected_found_sbnn64"] = [g for g in expected if g in table2["sbnn64"]]
            table2["expected_found_sbnn2"] = [g for g in expected if g in table2["sbnn2"]]
            table2["seconds"] = time.perf_counter() - t0
            result["table2"] = table2
            print(stage, table2, flush=True)
        elif stage in EXPERIMENTS:
            method, params = EXPERIMENTS[stage]
            df = mv.tl.cross_validate(
                mdata,
                method=method,
                n_folds=10,
                folds=range(args.sbnn_folds),
                random_state=0,
                key_added=f"cv_{stage}",
                **params,
            )
            result.setdefault("experiments", {})[stage] = {
                "params": params,
                **summarise(df, stage, None),
            }
            print(stage, result["experiments"][stage]["r2_mean"], flush=True)
        else:
            method, params = MODELS[stage]
            kw = dict(params)
            if method == "sbnn":
                kw.update(sched)
            df = mv.tl.cross_validate(
                mdata,
                method=method,
                n_folds=10,
                folds=range(folds_for[stage]),
                random_state=0,
                key_added=f"cv_{stage}",
                **kw,
            )
            result["models"][stage] = summarise(df, stage, PAPER[stage])
            print(
                stage,
                {
                    k: result["models"][stage][k]
                    for k in ("r2_mean", "r2_sd", "jaccard_mean", "seconds")
                },
                flush=True,
            )
        result["wall_s_total"] = result.get("wall_s_total", 0.0) + time.perf_counter() - t0
        dump()
    print("wrote", args.out)


if __name__ == "__main__":
    main()
