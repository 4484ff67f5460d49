"""Coupled autoencoders on M1 Patch-seq (Gala et al. 2019, Figs. 3-4 protocol).

For λ ∈ {0, 0.1, 1, 10} and the PC-CCA baseline, with 3-d latents and k-fold CV:
QDA accuracy from z_T (t-types with >= 6 training cells, and families), cross-modal QDA
accuracy (fit on z_T of training cells, predict from z_E of test cells), GMM AMI/ARI
between arms, within- and cross-modal reconstruction R², steps and wall time to
convergence (early stopping on a validation split inside the training fold). Then a
partially paired run (a third of the ephys rows removed from the training fold) and the
per-step speed of the scvi-tools model versus a bare PyTorch loop of the same arms.

Usage: python benchmarks/coupled_ae_m1.py [--folds K] [--quick]
Data: ../shared/data/m1_patchseq_scala2021.h5mu (override with MULTIVIZ_SHARED_DATA).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import mudata as md
import numpy as np
import torch
from _hardware import hardware
from anndata import AnnData
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import KFold

import multiviz as mv
from multiviz.models import CoupledAutoencoder
from multiviz.tl._cca import PCCCA

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MULTIVIZ_SHARED_DATA", ROOT.parent / "shared" / "data"))
OUT = ROOT / "benchmarks" / "results" / "coupled_ae_m1.json"
LAMS = [0.0, 0.1, 1.0, 10.0]


def lam_key(lam: float) -> str:
    return f"{lam:g}"


def log2norm(counts: np.ndarray) -> np.ndarray:
    """sBNN/Gala-style log2(CPM-like + 1): library-size normalise to the median, log2."""
    lib = counts.sum(axis=1, keepdims=True)
    return np.log2(counts / lib * np.median(lib) + 1.0)


def fold_data(xt, xe, train, test):
    """z-score both modalities with training-fold statistics only."""
    out = []
    for X in (xt, xe):
        mean, std = mv.pp.fit_zscore(X[train])
        out.append(
            (mv.pp.apply_zscore(X[train], mean, std), mv.pp.apply_zscore(X[test], mean, std))
        )
    return out


def make_mdata(xt, xe, names, ephys_keep=None):
    rna = AnnData(xt.astype(np.float32))
    rna.obs_names = names
    keep = np.ones(len(names), bool) if ephys_keep is None else ephys_keep
    eph = AnnData(xe[keep].astype(np.float32))
    eph.obs_names = names[keep]
    return md.MuData({"rna": rna, "ephys": eph})


def r2(y, yhat):
    return mv.metrics.r2_score(y, yhat)


def evaluate(zt_tr, ze_tr, zt_te, ze_te, y_tr, y_te, fam_tr, fam_te, n_comp, n_init, seed):
    res = {
        "qda_t": mv.metrics.qda_accuracy(zt_tr, y_tr, zt_te, y_te),
        "qda_e": mv.metrics.qda_accuracy(ze_tr, y_tr, ze_te, y_te),
        "qda_cross": mv.metrics.cross_modal_accuracy(zt_tr, y_tr, ze_te, y_te),
        "qda_t_family": mv.metrics.qda_accuracy(zt_tr, fam_tr, zt_te, fam_te),
        "qda_cross_family": mv.metrics.cross_modal_accuracy(zt_tr, fam_tr, ze_te, fam_te),
    }
    g = mv.metrics.gmm_consistency(
        zt_tr, zt_te, ze_te, n_components=n_comp, n_init=n_init, random_state=seed
    )
    res["ami"], res["ari"] = g["ami"], g["ari"]
    return res


def run_cae(lam, blocks, names_tr, names_te, ephys_keep, seed, max_epochs, patience):
    (xt_tr, xt_te), (xe_tr, xe_te) = blocks
    mtr = make_mdata(xt_tr, xe_tr, names_tr, ephys_keep)
    model = CoupledAutoencoder(mtr, lam=lam, random_state=seed)
    t0 = time.perf_counter()
    model.train(max_epochs=max_epochs, early_stopping_patience=patience)
    seconds = time.perf_counter() - t0
    mte = make_mdata(xt_te, xe_te, names_te)
    ztr, zte = model.get_latent_representation(mtr), model.get_latent_representation(mte)
    hist = model.history["validation_loss"].to_numpy().ravel()
    best_epoch = int(np.nanargmin(hist)) + 1
    pred = {
        (s, t): model.predict(mte, source=s, target=t)
        for s in ("rna", "ephys")
        for t in ("rna", "ephys")
    }
    recon = {
        "within": {
            "rna": r2(xt_te, pred["rna", "rna"]),
            "ephys": r2(xe_te, pred["ephys", "ephys"]),
        },
        "cross": {"rna": r2(xt_te, pred["ephys", "rna"]), "ephys": r2(xe_te, pred["rna", "ephys"])},
    }
    info = {
        "steps": model.n_steps_,
        "steps_to_best": best_epoch * 100,
        "seconds": seconds,
        "ms_per_step": 1000 * seconds / max(model.n_steps_, 1),
    }
    return ztr, zte, recon, info


def run_cca(blocks):
    (xt_tr, xt_te), (xe_tr, xe_te) = blocks
    t0 = time.perf_counter()
    cca = PCCCA(3, (20, 16)).fit(xt_tr, xe_tr)
    seconds = time.perf_counter() - t0
    ztr = {"rna": cca.transform(xt_tr, 0), "ephys": cca.transform(xe_tr, 1)}
    zte = {"rna": cca.transform(xt_te, 0), "ephys": cca.transform(xe_te, 1)}
    # linear decoders from each arm's latent, fitted on the training cells' own latent
    dec = {m: LinearRegression().fit(ztr[m], X) for m, X in (("rna", xt_tr), ("ephys", xe_tr))}
    recon = {
        "within": {
            "rna": r2(xt_te, dec["rna"].predict(zte["rna"])),
            "ephys": r2(xe_te, dec["ephys"].predict(zte["ephys"])),
        },
        "cross": {
            "rna": r2(xt_te, dec["rna"].predict(zte["ephys"])),
            "ephys": r2(xe_te, dec["ephys"].predict(zte["rna"])),
        },
    }
    return ztr, zte, recon, {"steps": 0, "seconds": seconds}


def summarise(per_fold: list[dict]) -> dict:
    out = {}
    keys = per_fold[0].keys()
    for k in keys:
        vals = np.array([f[k] for f in per_fold], dtype=float)
        out[k] = float(vals.mean())
        out[k + "_se"] = float(vals.std(ddof=1) / np.sqrt(len(vals))) if len(vals) > 1 else 0.0
    out["recon_r2_within"] = float(np.mean([out["r2_within_rna"], out["r2_within_ephys"]]))
    out["recon_r2_cross"] = float(np.mean([out["r2_cross_rna"], out["r2_cross_ephys"]]))
    return out


def flat(recon):
    return {f"r2_{kind}_{m}": v for kind, d in recon.items() for m, v in d.items()}


def speed_test(xt, xe, names, n_steps=1000, batch_size=200, seed=0):
    """ms/step of the model's Lightning training vs a bare torch loop on the same module."""
    mdata = make_mdata(xt, xe, names)
    model = CoupledAutoencoder(mdata, lam=1.0, random_state=seed)
    t0 = time.perf_counter()
    model.train(max_epochs=n_steps // 100, train_size=1.0)
    model_ms = 1000 * (time.perf_counter() - t0) / model.n_steps_
    # bare loop: same module class and sizes, same device tensors, plain Adam
    bare = CoupledAutoencoder(mdata, lam=1.0, random_state=seed).module
    stack = model.adata
    tensors = {
        "X": torch.as_tensor(stack.X),
        "observed": torch.as_tensor(stack.layers["observed"]),
        "presence": torch.as_tensor(stack.obsm["presence"]),
    }
    opt = torch.optim.Adam(bare.parameters(), lr=1e-3, eps=1e-8)
    gen = torch.Generator().manual_seed(seed)
    bare.train()
    t0 = time.perf_counter()
    n = stack.n_obs
    for _ in range(n_steps):
        idx = torch.randperm(n, generator=gen)[:batch_size]
        batch = {k: v[idx] for k, v in tensors.items()}
        _, _, loss = bare(batch)
        opt.zero_grad()
        loss.loss.backward()
        opt.step()
    bare_ms = 1000 * (time.perf_counter() - t0) / n_steps
    return {
        "model_ms_per_step": model_ms,
        "bare_ms_per_step": bare_ms,
        "ratio": model_ms / bare_ms,
        "n_steps": n_steps,
        "batch_size": batch_size,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", type=int, default=3)
    ap.add_argument(
        "--max-epochs",
        type=int,
        default=None,
        help="default: reference 750k steps, cut by early stopping",
    )
    ap.add_argument("--n-init", type=int, default=5)
    ap.add_argument("--patience", type=int, default=10, help="early-stopping patience (epochs)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    mdata = md.read_h5mu(DATA / "m1_patchseq_scala2021.h5mu")
    xt = log2norm(mdata["rna"].X.toarray().astype(np.float64))
    xe = np.asarray(mdata["ephys"].X, dtype=np.float64)
    names = mdata.obs_names.to_numpy().astype(str)
    ttype = mdata.obs["rna_type"].astype(str).to_numpy()
    fam = mdata.obs["rna_family"].astype(str).to_numpy()

    results = {"lam": {}, "cca": {}, "partial": {}}
    folds = list(KFold(args.folds, shuffle=True, random_state=args.seed).split(xt))
    per = {lam_key(lam): [] for lam in LAMS}
    per["cca"], per["partial"] = [], []
    t_start = time.perf_counter()
    for f, (train, test) in enumerate(folds):
        blocks = fold_data(xt, xe, train, test)
        y_tr, y_te, fam_tr, fam_te = ttype[train], ttype[test], fam[train], fam[test]
        kept = [t for t, c in zip(*np.unique(y_tr, return_counts=True)) if c >= 6]
        n_comp = len(kept)
        ev = dict(
            y_tr=y_tr,
            y_te=y_te,
            fam_tr=fam_tr,
            fam_te=fam_te,
            n_comp=n_comp,
            n_init=args.n_init,
            seed=args.seed,
        )
        for lam in LAMS:
            ztr, zte, recon, info = run_cae(
                lam,
                blocks,
                names[train],
                names[test],
                None,
                args.seed + f,
                args.max_epochs,
                args.patience,
            )
            m = evaluate(ztr["rna"], ztr["ephys"], zte["rna"], zte["ephys"], **ev)
            per[lam_key(lam)].append({**m, **flat(recon), **info})
            print(
                f"fold {f} lam {lam}: {per[lam_key(lam)][-1]} ({time.perf_counter() - t_start:.0f}s)",
                flush=True,
            )
        ztr, zte, recon, info = run_cca(blocks)
        m = evaluate(ztr["rna"], ztr["ephys"], zte["rna"], zte["ephys"], **ev)
        per["cca"].append({**m, **flat(recon), **info})
        print(f"fold {f} cca: {per['cca'][-1]}", flush=True)
        # partially paired: a third of the training cells lose their ephys row
        rng = np.random.default_rng(args.seed + f)
        keep = np.ones(len(train), bool)
        keep[rng.choice(len(train), len(train) // 3, replace=False)] = False
        ztr, zte, recon, info = run_cae(
            1.0,
            blocks,
            names[train],
            names[test],
            keep,
            args.seed + f,
            args.max_epochs,
            args.patience,
        )
        # classifier fitted on z_T of the paired training cells only; the rna-only training
        # cells (never coupled) are classified from their z_T: do they land among their types?
        zt_tr = ztr["rna"]
        m = evaluate(
            zt_tr[keep],
            ztr["ephys"][keep],
            zte["rna"],
            zte["ephys"],
            **{**ev, "y_tr": y_tr[keep], "fam_tr": fam_tr[keep]},
        )
        m["qda_unpaired_train_cells"] = mv.metrics.qda_accuracy(
            zt_tr[keep], y_tr[keep], zt_tr[~keep], y_tr[~keep]
        )
        m["qda_unpaired_train_cells_family"] = mv.metrics.qda_accuracy(
            zt_tr[keep], fam_tr[keep], zt_tr[~keep], fam_tr[~keep]
        )
        per["partial"].append({**m, **flat(recon), **info})
        print(
            f"fold {f} partial: {per['partial'][-1]} ({time.perf_counter() - t_start:.0f}s)",
            flush=True,
        )

    for lam in LAMS:
        results["lam"][lam_key(lam)] = summarise(per[lam_key(lam)])
    results["cca"] = summarise(per["cca"])
    results["partial"] = summarise(per["partial"])
    results["partial"]["description"] = (
        "lam=1, msv; in each training fold a random third of the cells have no ephys row "
        "(rna only, never in the coupling). qda_* use a classifier fitted on z_T of the "
        "paired training cells; qda_unpaired_train_cells scores the rna-only training cells."
    )
    results["per_fold"] = per
    results["speed"] = speed_test(
        *(b[0] for b in fold_data(xt, xe, folds[0][0], folds[0][1])), names[folds[0][0]]
    )
    results["speed"]["note"] = (
        "same CoupledAEModule, same batch size, CPU, torch.set_num_threads(1)"
    )
    results["setup"] = {
        "k_folds": args.folds,
        "k_choice": "k chosen so the whole run fits the session timebox on 2 shared CPU cores",
        "n_cells": int(len(xt)),
        "labels": "rna_type (t-types with >= 6 training cells), rna_family",
        "preprocessing": "log2(counts / library size x median library size + 1) over the 1000 genes; both modalities z-scored with training-fold statistics",
        "model": "CoupledAutoencoder defaults: msv coupling, n_latent 3, arms 4x50 (rna, dropout 0.5) and 4x40 (ephys, noise 0.05 SD, dropout 0.1), ReLU, alpha_E 0.1, Adam 1e-3, batch 200",
        "training": "max 750k steps (reference), epochs of 100 steps, early stopping on validation_loss (10% of the training fold), "
        f"patience {args.patience} epochs of 100 steps (library default 20; lowered to fit the timebox)",
        "gmm": f"GaussianMixture fitted on z_T(train), n_components = number of kept t-types, n_init={args.n_init} (paper: 100)",
        "cca": "PCA (20 rna PCs, 16 ephys PCs) -> sklearn CCA(3) -> whitening per arm",
        "recon_r2": "sBNN-paper R^2 on test cells (z-scored by training stats); recon_r2_within/_cross = mean over rna and ephys",
        "total_seconds": time.perf_counter() - t_start,
    }
    results["hardware"] = hardware()
    OUT.write_text(json.dumps(results, indent=1))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
