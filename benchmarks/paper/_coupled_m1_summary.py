"""Summary stage of ``coupled_ae_m1.py``: mixtures on the saved latents, means ± SE, targets.

Reads the per-fold JSONs and latents that the training shards wrote, fits the paper's
separate Gaussian mixtures on z_t and z_e of each fold's training cells (one component per
kept class of the level), and writes ``benchmarks/results/coupled_ae_m1.json`` from the
folds finished so far, with the targets (the paper's claims) checked and their margins.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
from _common import hardware  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

import multiviz as mv  # noqa: E402
from multiviz.metrics import gmm_consistency, kept_classes, qda_accuracy  # noqa: E402


def _mean_se(vals) -> tuple[float, float | None]:
    """Mean and standard error over folds (SE ``None`` with one fold: undefined)."""
    v = np.asarray(vals, dtype=float)
    se = float(v.std(ddof=1) / np.sqrt(v.size)) if v.size > 1 else None
    return float(v.mean()), se


def _gmm(npz, method: str, labels: dict, levels, n_init: dict, seed: int) -> dict:
    train, test = npz["train"], npz["test"]
    out = {}
    for level in levels:
        kept = kept_classes(labels[level][train], exclude=("low quality",))
        te = np.isin(labels[level][test], kept)
        g = gmm_consistency(
            npz[f"{method}_train_0"],
            npz[f"{method}_train_1"],
            npz[f"{method}_test_0"][te],
            npz[f"{method}_test_1"][te],
            n_components=int(kept.size),
            n_init=n_init[level],
            random_state=seed,
        )
        out[level] = {"gmm_ami": g["ami"], "gmm_ari": g["ari"], "gmm_n_init": n_init[level]}
    return out


def _zscore(tr: np.ndarray, te: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = mv.pp.fit_zscore(tr)
    return mv.pp.apply_zscore(tr, mean, std), mv.pp.apply_zscore(te, mean, std)


def lda_reference(data, folds, fold_ids, levels) -> dict:
    """Supervised 3-d LDA of each modality per fold, then the same equal-prior QDA.

    Two variants: shrinkage LDA (Ledoit-Wolf) on all features, and LDA on the top 50 PCs
    (the features outnumber the training cells per class, so plain LDA overfits).
    """
    xt, xe, _, labels = data
    out: dict = {}
    for variant in ("shrinkage", "pca50"):
        per = {lv: {"qda_t": [], "qda_e": []} for lv in levels}
        for f in fold_ids:
            tr, te = folds[f]
            for arm, X in (("qda_t", xt), ("qda_e", xe)):
                Xtr, Xte = _zscore(X[tr], X[te])
                if variant == "pca50" and X.shape[1] > 50:
                    pca = PCA(50, random_state=0).fit(Xtr)
                    Xtr, Xte = pca.transform(Xtr), pca.transform(Xte)
                for lv in levels:
                    y = labels[lv]
                    kept = kept_classes(y[tr], exclude=("low quality",))
                    m = np.isin(y[tr], kept)
                    if variant == "shrinkage":
                        lda = LinearDiscriminantAnalysis(
                            n_components=3, solver="eigen", shrinkage="auto"
                        )
                    else:
                        lda = LinearDiscriminantAnalysis(n_components=3)
                    lda.fit(Xtr[m], y[tr][m])
                    acc = qda_accuracy(lda.transform(Xtr), y[tr], lda.transform(Xte), y[te])
                    per[lv][arm].append(acc)
        out[variant] = {
            lv: {k: _mean_se(v)[0] for k, v in d.items()} | {"n_folds": len(fold_ids)}
            for lv, d in per.items()
        }
    return out


def _collect(work: Path, lams, n_folds: int, labels, levels, n_init, seed) -> list[dict]:
    """Folds of ``work`` whose four λ jobs finished, with the mixtures' scores merged in."""
    methods = ["cca"] + [f"{lam:g}" for lam in lams]
    per_fold = []
    for f in range(n_folds):
        paths = [work / f"fold{f}_lam{lam:g}.json" for lam in lams]
        if not all(p.exists() for p in paths):
            continue
        jobs = [json.loads(p.read_text()) for p in paths]
        res = jobs[0]
        for j in jobs[1:]:
            res["methods"].update(j["methods"])
        res["loadavg_end"] = [j["loadavg_end"] for j in jobs]
        res.pop("lda3_reference", None)  # the shards' version: plain LDA on 1000 genes
        cache = work / f"gmm_fold{f}.json"
        if n_init is None:  # mixtures skipped (compute); QDA/R² only
            per_fold.append(res)
            continue
        if cache.exists() and json.loads(cache.read_text()).get("n_init") == n_init:
            gm = json.loads(cache.read_text())["gmm"]
        else:
            gm = {}
            for m in methods:
                job = f"{lams[0]:g}" if m == "cca" else m
                npz = np.load(work / f"latents_fold{f}_lam{job}.npz")
                gm[m] = _gmm(npz, m, labels, levels, n_init, seed)
            cache.write_text(json.dumps({"n_init": n_init, "gmm": gm}))
        for m in methods:
            for lv in levels:
                res["methods"][m]["levels"][lv].update(gm[m][lv])
        per_fold.append(res)
    return per_fold


def _with_previous(per_fold: list[dict], previous: dict, args) -> list[dict]:
    """Add the folds of an earlier summary that the work folder lacks (same protocol only)."""
    old_setup = previous.get("setup", {})
    if old_setup.get("steps") != args.steps or old_setup.get("k_folds") != args.folds:
        return per_fold
    done = {r["fold"] for r in per_fold}
    kept = [r for r in previous.get("per_fold", []) if r["fold"] not in done]
    return sorted(per_fold + kept, key=lambda r: r["fold"])


def _stats(rows: list[dict], key: str) -> tuple[float, float, int] | None:
    vals = [r[key] for r in rows if key in r]
    if not vals:
        return None
    return (*_mean_se(vals), len(vals))


def _table(per_fold: list[dict], lams, levels) -> dict:
    """Mean ± SE over folds per method and level (scores a fold lacks are skipped)."""
    keys = ("qda_t", "qda_e", "qda_t_to_e", "qda_e_to_t", "gmm_ami", "gmm_ari")
    out: dict = {"lam": {}, "cca": {}}
    for m in ["cca"] + [f"{lam:g}" for lam in lams]:
        rows = [r["methods"][m] for r in per_fold]
        entry: dict = {"levels": {}, "n_folds": len(rows)}
        for lv in levels:
            e = {}
            for k in keys:
                st = _stats([r["levels"][lv] for r in rows], k)
                if st is not None:
                    e[k], e[k + "_se"] = st[0], st[1]
                    if st[2] != len(rows):
                        e[k + "_n_folds"] = st[2]
            e["qda_cross"], e["qda_cross_se"] = e["qda_t_to_e"], e["qda_t_to_e_se"]
            e["n_classes_mean"] = float(np.mean([r["levels"][lv]["n_classes"] for r in rows]))
            entry["levels"][lv] = e
        for k in ("r2_within_rna", "r2_within_ephys", "r2_cross_rna", "r2_cross_ephys"):
            st = _stats(rows, k)
            if st is not None:
                entry[k], entry[k + "_se"] = st[0], st[1]
        if "r2_within_rna" in entry:
            entry["recon_r2_within"] = (entry["r2_within_rna"] + entry["r2_within_ephys"]) / 2
            entry["recon_r2_cross"] = (entry["r2_cross_rna"] + entry["r2_cross_ephys"]) / 2
        entry["steps"] = float(np.mean([r["steps"] for r in rows]))
        leaf, fam = levels[-1], levels[0]  # flat aliases read by docs/_scripts tables
        entry["qda_cross"] = entry["levels"][leaf]["qda_cross"]
        entry["qda_cross_se"] = entry["levels"][leaf]["qda_cross_se"]
        entry["qda_cross_family"] = entry["levels"][fam]["qda_cross"]
        entry["qda_cross_family_se"] = entry["levels"][fam]["qda_cross_se"]
        if "gmm_ami" in entry["levels"][leaf]:
            entry["ami"] = entry["levels"][leaf]["gmm_ami"]
            entry["ami_se"] = entry["levels"][leaf]["gmm_ami_se"]
        if m == "cca":
            out["cca"] = entry
            continue
        for k in ("cpu_s", "wall_s", "ms_per_step_cpu"):
            if all(k in r for r in rows):
                entry[k] = float(np.mean([r[k] for r in rows]))
        if all("curve" in r for r in rows):
            steps = sorted(set.intersection(*(set(r["curve"]) for r in rows)), key=int)
            entry["steps_curve"] = {
                s: {
                    lv: {
                        k: _mean_se([r["curve"][s][lv][k] for r in rows])[0]
                        for k in ("qda_t", "qda_e", "qda_t_to_e")
                    }
                    for lv in levels
                }
                for s in steps
            }
        out["lam"][m] = entry
    return out


def _at_step(per_fold: list[dict], step: int) -> list[dict]:
    """The folds' QDA scores at ``step`` from a longer run's checkpoint (no GMM, no R²)."""
    out = []
    for r in per_fold:
        r2 = {"fold": r["fold"], "methods": {"cca": r["methods"]["cca"]}}
        for m, e in r["methods"].items():
            if m == "cca":
                continue
            lv = e["curve"][str(step)]
            r2["methods"][m] = {"levels": lv, "steps": step, "from_checkpoint": True}
        out.append(r2)
    return out


def summarise(args, data, levels, lams, out_path: Path) -> None:
    _, _, _, labels = data
    t0, c0 = time.perf_counter(), time.process_time()
    n_init = {lv: args.gmm_n_init for lv in levels}
    if args.gmm_n_init_leaf is not None:
        n_init[levels[-1]] = args.gmm_n_init_leaf
    per_fold = _collect(args.work, lams, args.folds, labels, levels, n_init, args.seed)
    if getattr(args, "keep_previous", False) and out_path.exists():
        per_fold = _with_previous(per_fold, json.loads(out_path.read_text()), args)
    if not per_fold:
        raise SystemExit(f"no finished folds in {args.work}")
    out = _table(per_fold, lams, levels)
    out["targets"] = _targets(out, levels)
    short = []
    if args.work_short is not None:
        short = _collect(args.work_short, lams, args.folds, labels, levels, None, args.seed)
        done = {r["fold"] for r in per_fold}
        short = [r for r in short if r["fold"] not in done]  # a fold counts once
    if short:
        step = int(short[0]["methods"]["0"]["steps"])
        combined = _at_step(per_fold, step) + short
        out[f"at_{step}_steps"] = _table(combined, lams, levels)
        out[f"at_{step}_steps"]["targets"] = _targets(out[f"at_{step}_steps"], levels)
        out[f"at_{step}_steps"]["folds"] = [r["fold"] for r in combined]
        out[f"at_{step}_steps"]["note"] = (
            f"{step}-step scores over more folds: the {args.steps}-step runs' checkpoint at "
            f"{step} steps (QDA only) plus folds trained for {step} steps (all scores); "
            "r2_* average only the folds trained for that length; the mixtures (gmm_*) were "
            "not fitted for these folds (compute)"
        )
        out["per_fold_short"] = short
    folds = list(KFold(args.folds, shuffle=True, random_state=args.seed).split(data[0]))
    ids = sorted({r["fold"] for r in per_fold} | {r["fold"] for r in short})
    out["lda3_reference"] = lda_reference(data, folds, ids, levels)
    out["per_fold"] = per_fold
    out["setup"] = {
        "k_folds": args.folds,
        "n_cells": int(len(data[0])),
        "folds_evaluated": [r["fold"] for r in per_fold],
        "n_folds_evaluated": len(per_fold),
        "fold_note": (
            "10-fold splits (each model trains on 90 % of the cells, tests on the other 10 %); "
            "folds are trained in separate processes (and sessions) and merged here: only "
            "the folds listed have been run so far (folds 0-1 in a session with 2 CPU cores "
            "shared by ~7 people); with few folds the SEs are wide or undefined (null with "
            "one fold)."
        ),
        "steps": args.steps,
        "schedule": (
            f"fixed, no early stopping, no validation split: the library default ({args.steps} "
            "steps of batch 200, Adam 1e-3, eps 1e-8); steps_curve: the same runs' latents at "
            "10 %, 25 %, 50 % and 100 % of the steps. Reference: 750k steps."
        ),
        "levels": list(levels),
        "levels_note": "M1's obs has rna_family and rna_type (t-type); no subclass column.",
        "labels_filter": (
            "per fold and level, classes with >= 6 training cells (paper), '' and 'low "
            "quality' excluded; the same filter for every method and every score"
        ),
        "qda": "sklearn QDA, reg_param 1e-2, equal priors (reference code)",
        "qda_cross": "QDA fitted on z_t of training cells, predicting from z_e of test cells",
        "gmm": (
            "separate GaussianMixture (full covariance) on z_t and on z_e of the training "
            "cells, one component per kept class of the level; test cells of kept classes "
            f"labelled by each; AMI/ARI between the two labelings; n_init per level {n_init}"
        ),
        "cca": "PCA (20 rna PCs, 16 ephys PCs) -> sklearn CCA(3) -> whitening per arm, same folds",
        "lda3_reference": (
            "supervised: LDA(3) fitted on the training cells' labels of that level (shrinkage "
            "LDA on all features, or LDA on 50 PCs), then the same equal-prior QDA on the "
            "3-d projections: what a 3-d linear latent can hold on M1 given the labels"
        ),
        "preprocessing": (
            "log2(counts / library x median library + 1) over the 1000 genes; both modalities "
            "z-scored with training-fold statistics"
        ),
        "recon_r2": "sBNN-paper R^2 on test cells; cross = decoded from the other arm's latent",
        "threads": "torch.set_num_threads(1), OMP_NUM_THREADS=1, one process per λ",
        "summary_cpu_s": time.process_time() - c0,
        "summary_wall_s": time.perf_counter() - t0,
        "loadavg_at_summary": os.getloadavg(),
    }
    missing = sorted(set(range(args.folds)) - {r["fold"] for r in per_fold})
    out["notes"] = {
        "model": "the paper's: cross_modal='off', RNA input dropout 0.5, 10k steps per fit",
        "folds_missing": missing,
        "continue": (
            f"python benchmarks/paper/coupled_ae_m1.py --only-folds {' '.join(map(str, missing))} "
            f"--work {args.work}, then --summarise with the same --work (folds already "
            "summarised here are kept)"
        )
        if missing
        else None,
        "compute": "per fold: 4 fits (one per λ) of 10k steps, ~95-180 s of CPU each on "
        "one thread depending on the load (loadavg_end per fold in per_fold)",
    }
    out["hardware"] = hardware()
    out_path.write_text(json.dumps(out, indent=1))
    print("wrote", out_path)
    print(json.dumps(out["targets"], indent=1))


def _targets(out: dict, levels) -> dict:
    """The targets with their margins (positive = met)."""
    fam, leaf = levels[0], levels[-1]
    lam, cca = out["lam"], out["cca"]["levels"]
    within = {m: lam[m]["levels"][leaf]["qda_t"] for m in lam}
    best_other = max(v for m, v in within.items() if m != "0")
    t = {
        "lam0_highest_within_t_type": {
            "lam0": within["0"],
            "best_lam_gt_0": best_other,
            "margin": within["0"] - best_other,
        },
    }
    for lv, need in ((leaf, 0.05), (fam, 0.03)):
        got = lam["1"]["levels"][lv]["qda_cross"] - cca[lv]["qda_cross"]
        t[f"lam1_cross_minus_cca_{lv}"] = {
            "value": got,
            "required": need,
            "margin": got - need,
        }
    t["within_some_lam_gt0_at_least_cca_t_type"] = {
        "best_lam_gt0_qda_t": max(lam[m]["levels"][leaf]["qda_t"] for m in lam if m != "0"),
        "cca_qda_t": cca[leaf]["qda_t"],
        "margin_t": max(lam[m]["levels"][leaf]["qda_t"] for m in lam if m != "0")
        - cca[leaf]["qda_t"],
        "best_lam_gt0_qda_e": max(lam[m]["levels"][leaf]["qda_e"] for m in lam if m != "0"),
        "cca_qda_e": cca[leaf]["qda_e"],
        "margin_e": max(lam[m]["levels"][leaf]["qda_e"] for m in lam if m != "0")
        - cca[leaf]["qda_e"],
    }
    return t
