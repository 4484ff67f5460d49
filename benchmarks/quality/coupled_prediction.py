"""Cross-modal prediction of the coupled autoencoder against its linear twin.

Usage (from the repository root; one torch thread)::

    python benchmarks/quality/coupled_prediction.py                       # every dataset, 3 seeds
    python benchmarks/quality/coupled_prediction.py --datasets m1_ephys --seeds 0
    python benchmarks/quality/coupled_prediction.py --merge               # parts -> one JSON

On M1 Patch-seq (rna, ephys) and both 200-cell PBMC CITE-seq fixtures (rna, protein),
each prepared with ``mv.pp.prepare_paired(n_top_genes=1000)``: per seed, the target
modality (ephys / protein) of 30 % of the cells is hidden and the models are trained on
the rest (the hidden cells keep their RNA: partially paired data, as in the paper's
transcriptome-only cells). On the hidden cells, from their RNA:

- ``coupled``: the default ``mv.models.CoupledAutoencoder`` (its decoder of the target
  arm applied to the RNA latent); ``variants``: the other settings tried, the paper's
  model (``cross_modal=False``) among them;
- ``cca``: PC-CCA with the same latent size (20 PCs per modality), then linear regression
  of the target on the RNA arm's canonical variates of the paired training cells;
- ``ridge``: ridge regression from all genes (``RidgeCV``) on the paired training cells.

R² uses the mean of the target over the paired training cells as baseline (the mean
predictor scores 0), pooled over features (``r2_cross``) and per feature. Where a dataset
has cell-type labels (M1: ``rna_type``, ``rna_family``), ``label_transfer`` is the
paper's cross-modal QDA (fit on the RNA latent, predict from the target latent; equal
priors, classes with >= 6 training cells, ``low quality`` excluded) and ``ami`` the
agreement of separate Gaussian mixtures on the two latents, both on a 5-fold split of the
paired cells (the labels never enter training). Each part goes to
``benchmarks/results/coupled_prediction_parts/{dataset}_seed{seed}.json``; ``--merge``
writes ``benchmarks/results/coupled_prediction.json`` (means over seeds, and per seed).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
import mudata as md  # noqa: E402
from _common import DATA, RESULTS, write_result  # noqa: E402
from sklearn.linear_model import LinearRegression, RidgeCV  # noqa: E402
from sklearn.model_selection import StratifiedKFold  # noqa: E402

import multiviz as mv  # noqa: E402
from multiviz.metrics import gmm_consistency, kept_classes  # noqa: E402
from multiviz.models import CoupledAutoencoder  # noqa: E402
from multiviz.tl._cca import PCCCA  # noqa: E402
from multiviz.tl._coupled_heldout import RIDGE_ALPHAS  # noqa: E402

PARTS = RESULTS / "coupled_prediction_parts"
OUT = RESULTS / "coupled_prediction.json"
HIDE = 0.3
N_LATENT = 3
LEVELS = ("rna_type", "rna_family")
DATASETS = {
    "m1_ephys": ("m1_patchseq_scala2021.h5mu", "ephys", LEVELS),
    "pbmc_10k_protein_v3_200cells": ("pbmc_10k_protein_v3_200cells_fixture.h5mu", "protein", ()),
    "pbmc_5k_protein_v3_200cells": ("pbmc_5k_protein_v3_200cells_fixture.h5mu", "protein", ()),
}
SETUP = {
    "preprocessing": "mv.pp.prepare_paired(x='rna', y=target, n_top_genes=1000) on all cells",
    "hidden": f"{HIDE:.0%} of the cells, drawn per seed, lose the target modality in training",
    "steps": "the library default (10,000 steps of batch 200, at most 1,000 passes over the "
    "cells: 1,000 steps on the 200-cell PBMC fixtures, 6,065 on M1) unless a variant says "
    "`steps`; one torch thread",
    "n_latent": N_LATENT,
    "r2": "on the hidden cells from their RNA; baseline the paired training cells' mean; "
    "pooled over features (r2_cross) and per feature, means over seeds",
    "cca": f"PCCCA({N_LATENT}, 20 PCs per modality) on the paired training cells, then linear "
    "regression of the target on the RNA canonical variates (r2_cross); "
    "r2_cross_target_decoder: the AE's route, a regression on the target's own variates "
    "applied to the RNA variates",
    "ridge": "RidgeCV on all genes, paired training cells",
    "labels": "M1 only: cross-modal QDA (fit on z_rna, predict from z_target; equal priors, "
    "reg 1e-2, classes >= 6 cells, 'low quality' excluded) and AMI of separate GMMs "
    "(n_init 5, one component per kept class) on a 5-fold split of the paired cells; "
    "headline level rna_type, rna_family in `levels`",
}
NOTES = (
    "The target is z-scored by prepare_paired over all cells (hidden ones included) before "
    "hiding; every method sees the same input. datasets.m1_ephys.cv10: the 10-fold CV of "
    "ephys from RNA and of the 20 RNA PCs from ephys on cells held out entirely "
    "(benchmarks/quality/coupled_cv10.py: default coupled AE, PC-CCA regressions, ridge). CPU: the default and paper_loss ran on 3 "
    "seeds everywhere; the other variants on the seeds in their `seeds` (the 10k-step ones "
    "and every M1 variant on seed 0 only: 1-2 min per fit on one core)."
)
#: The default (``{}``: the library's defaults) and each variant tried, as model kwargs.
#: ``"steps"`` overrides the default schedule (10k steps, at most 1,000 passes).
VARIANTS: dict[str, dict] = {
    "default": {},
    "paper_loss": {"cross_modal": "off"},
    "paper_loss_10k_steps": {"cross_modal": "off", "steps": 10_000},
    "decoder_only_cross_terms": {"cross_modal": "decoder"},
    "full_rna_dropout_0.5": {"dropout": {"rna": 0.5}},
    "full_10k_steps": {"steps": 10_000},
}


def load(name: str) -> tuple[md.MuData, str, tuple]:
    """A dataset prepared with ``prepare_paired(n_top_genes=1000)``; target and label levels."""
    fname, target, levels = DATASETS[name]
    mdata = md.read_h5mu(DATA / fname)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mv.pp.prepare_paired(mdata, x="rna", y=target, n_top_genes=1000)
    return mdata, target, levels


def hide(mdata: md.MuData, target: str, seed: int) -> tuple[md.MuData, np.ndarray]:
    """A MuData whose ``target`` lacks a random 30 % of the cells; the hidden mask."""
    rng = np.random.default_rng(seed)
    hidden = np.zeros(mdata.n_obs, dtype=bool)
    hidden[rng.choice(mdata.n_obs, int(round(HIDE * mdata.n_obs)), replace=False)] = True
    rna = mdata["rna"].copy()
    tgt = mdata[target][~hidden].copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        part = md.MuData({"rna": rna, target: tgt})
    return part, hidden


def r2_scores(y: np.ndarray, pred: np.ndarray, mean: np.ndarray) -> tuple[float, list[float]]:
    """Pooled R² and per-feature R², baseline ``mean`` (the training cells' mean)."""
    sse = ((y - pred) ** 2).sum(axis=0)
    sst = ((y - mean) ** 2).sum(axis=0)
    return float(1 - sse.sum() / sst.sum()), [float(v) for v in 1 - sse / sst]


def label_scores(z_t: np.ndarray, z_y: np.ndarray, labels: dict, seed: int) -> dict:
    """Cross-modal QDA and GMM-AMI per level on a 5-fold split of the paired cells."""
    out = {}
    for level, lab in labels.items():
        kept = kept_classes(lab, exclude=("low quality", ""))
        keep = np.isin(lab, kept)
        acc, ami = [], []
        folds = StratifiedKFold(5, shuffle=True, random_state=seed)
        for tr, te in folds.split(z_t, np.where(keep, lab, "_other")):
            acc.append(mv.metrics.cross_modal_accuracy(z_t[tr], lab[tr], z_y[te], lab[te]))
            te = te[keep[te]]
            n_comp = int(kept_classes(lab[tr], exclude=("low quality", "")).size)
            g = gmm_consistency(
                z_t[tr],
                z_y[tr],
                z_t[te],
                z_y[te],
                n_components=n_comp,
                n_init=5,
                random_state=seed,
            )
            ami.append(g["ami"])
        out[level] = {"label_transfer": float(np.mean(acc)), "ami": float(np.mean(ami))}
    return out


def fit_coupled(part, target, seed, kwargs) -> tuple[CoupledAutoencoder, float]:
    """Train the coupled autoencoder on the partially paired data; CPU seconds."""
    kw = {"n_latent": N_LATENT, **kwargs}
    steps = kw.pop("steps", None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.process_time()
        model = CoupledAutoencoder(part, modalities=("rna", target), random_state=seed, **kw)
        model.train(max_epochs=steps and steps // 100, enable_progress_bar=False)
        cpu = time.process_time() - start
    return model, cpu


def evaluate_coupled(model, part, target, hidden, y, labels, seed) -> dict:
    """Cross-modal R² on the hidden cells; label scores on the paired ones."""
    names = np.asarray(model.obs_names_for(part))
    order = {n: i for i, n in enumerate(names)}
    rows = np.array([order[n] for n in part.obs_names])
    z = model.get_latent_representation(part)
    pred = model.decode(z["rna"], target)[rows]
    mean = y[~hidden].mean(axis=0)
    r2, per = r2_scores(y[hidden], pred[hidden], mean)
    out = {"r2_cross": r2, "r2_cross_per_feature": per}
    if labels:
        zt, zy = z["rna"][rows][~hidden], z[target][rows][~hidden]
        out["levels"] = label_scores(zt, zy, {k: v[~hidden] for k, v in labels.items()}, seed)
    return out


def linear_twins(x, y, hidden, labels, seed) -> dict:
    """PC-CCA (same latent size) regression and ridge on all genes."""
    vis = ~hidden
    n_pcs = (20, min(20, y.shape[1]))
    cca = PCCCA(N_LATENT, n_pcs, random_state=seed).fit(x[vis], y[vis])
    zt, zy = cca.transform(x, 0), cca.transform(y, 1)
    mean = y[vis].mean(axis=0)
    reg = LinearRegression().fit(zt[vis], y[vis])
    r2, per = r2_scores(y[hidden], reg.predict(zt[hidden]), mean)
    dec = LinearRegression().fit(zy[vis], y[vis])  # the AE's route: target decoder on z_t
    r2_dec, _ = r2_scores(y[hidden], dec.predict(zt[hidden]), mean)
    cca_out = {"r2_cross": r2, "r2_cross_per_feature": per, "r2_cross_target_decoder": r2_dec}
    if labels:
        cca_out["levels"] = label_scores(
            zt[vis], zy[vis], {k: v[vis] for k, v in labels.items()}, seed
        )
    ridge = RidgeCV(alphas=RIDGE_ALPHAS).fit(x[vis], y[vis])
    r2_ridge, per_ridge = r2_scores(y[hidden], ridge.predict(x[hidden]), mean)
    return {"cca": cca_out, "ridge": {"r2_cross": r2_ridge, "r2_cross_per_feature": per_ridge}}


def run_part(name: str, seed: int, variants: dict) -> dict:
    """One dataset x one seed: every variant and the linear twins."""
    mdata, target, levels = load(name)
    x = np.asarray(mdata["rna"].X, dtype=np.float64)
    y = np.asarray(mdata[target].X, dtype=np.float64)
    labels = {lv: mdata.obs[lv].astype(str).to_numpy() for lv in levels}
    part, hidden = hide(mdata, target, seed)
    res = {
        "dataset": name,
        "seed": seed,
        "target": target,
        "n_cells": int(mdata.n_obs),
        "n_hidden": int(hidden.sum()),
        "features": [str(v) for v in mdata[target].var_names],
        **linear_twins(x, y, hidden, labels, seed),
        "variants": {},
    }
    for vname, kwargs in variants.items():
        model, cpu = fit_coupled(part, target, seed, kwargs)
        scores = evaluate_coupled(model, part, target, hidden, y, labels, seed)
        res["variants"][vname] = {
            "kwargs": kwargs,
            **scores,
            "cpu_s": round(cpu, 1),
            "steps": int(model.n_steps_),
        }
        print(name, seed, vname, round(scores["r2_cross"], 4), f"{cpu:.0f}s", flush=True)
    print(
        name,
        seed,
        "cca",
        round(res["cca"]["r2_cross"], 4),
        "ridge",
        round(res["ridge"]["r2_cross"], 4),
        flush=True,
    )
    return res


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--datasets", nargs="+", default=list(DATASETS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--merge", action="store_true")
    args = ap.parse_args()
    if args.merge:
        merge()
        return
    PARTS.mkdir(parents=True, exist_ok=True)
    variants = {k: VARIANTS[k] for k in args.variants}
    for name in args.datasets:
        for seed in args.seeds:
            path = PARTS / f"{name}_seed{seed}.json"
            res = run_part(name, seed, variants)
            if path.exists():  # variants run earlier for this part are kept
                old = json.loads(path.read_text())["variants"]
                res["variants"] = {**old, **res["variants"]}
            res["loadavg_end"] = list(os.getloadavg())
            path.write_text(json.dumps(res, indent=1))


def _mean(vals) -> float | None:
    vals = [v for v in vals if v is not None]
    return round(float(np.mean(vals)), 4) if vals else None


def _summary(runs: list[dict], features: list[str], headline: str | None) -> dict:
    """Means over seeds of one method's scores (``headline``: the label level reported)."""
    out = {
        "r2_cross": _mean([r["r2_cross"] for r in runs]),
        "r2_cross_per_seed": [round(r["r2_cross"], 4) for r in runs],
    }
    if "r2_cross_per_feature" in runs[0]:
        per = np.mean([r["r2_cross_per_feature"] for r in runs], axis=0)
        out["r2_cross_per_feature"] = {f: round(float(v), 4) for f, v in zip(features, per)}
    if "levels" in runs[0] or headline is None:
        lv = {
            level: {
                k: _mean([r["levels"][level][k] for r in runs]) for k in ("label_transfer", "ami")
            }
            for level in (runs[0].get("levels") or {})
        }
        out["label_transfer"] = lv[headline]["label_transfer"] if headline else None
        out["ami"] = lv[headline]["ami"] if headline else None
        if lv:
            out["levels"] = lv
    if "cpu_s" in runs[0]:
        out["cpu_s"] = _mean([r["cpu_s"] for r in runs])
    return out


def _warned_features(per_feature: dict, n_cells: int, direction: str) -> list[str]:
    """Features the library's per-feature check warns about for these scores."""
    from multiviz.tl._coupled_heldout import warn_for_features_below_mean

    scores = {
        "r2_heldout_cross_modal_per_feature": {direction: per_feature},
        "n_heldout_cross_modal": {direction: n_cells},
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return warn_for_features_below_mean(scores).get(direction, [])


def merge() -> None:
    """Means over the seeds of every part in ``PARTS``; targets per dataset."""
    parts: dict[str, list[dict]] = {}
    for path in sorted(PARTS.glob("*_seed*.json")):
        res = json.loads(path.read_text())
        parts.setdefault(res["dataset"], []).append(res)
    datasets = {}
    for name, runs in parts.items():
        runs.sort(key=lambda r: r["seed"])
        feats, target = runs[0]["features"], runs[0]["target"]
        headline = LEVELS[0] if DATASETS[name][2] else None
        coupled = _summary([r["variants"]["default"] for r in runs], feats, headline)
        coupled["kwargs"] = runs[0]["variants"]["default"]["kwargs"]
        cca = _summary([r["cca"] for r in runs], feats, headline)
        cca["r2_cross_target_decoder"] = _mean([r["cca"]["r2_cross_target_decoder"] for r in runs])
        ridge = _summary([r["ridge"] for r in runs], feats, None)
        ridge.pop("label_transfer"), ridge.pop("ami")
        variants = {}
        for vname in runs[0]["variants"]:
            if vname == "default":
                continue
            have = [r["variants"][vname] for r in runs if vname in r["variants"]]
            variants[vname] = {
                "kwargs": have[0]["kwargs"],
                "n_seeds": len(have),
                "seeds": [r["seed"] for r in runs if vname in r["variants"]],
                **_summary(have, feats, headline),
            }
        below = [f for f, v in coupled["r2_cross_per_feature"].items() if not v > 0]
        warned = _warned_features(
            coupled["r2_cross_per_feature"], runs[0]["n_hidden"], f"rna->{target}"
        )
        targets = {
            "r2_cross_minus_cca": round(coupled["r2_cross"] - cca["r2_cross"], 4),
            "r2_cross_met": coupled["r2_cross"] >= cca["r2_cross"] + 0.02,
            "features_below_mean": below,
            "features_below_mean_warned": sorted(set(below) & set(warned)),
            "every_feature_below_mean_warned": set(below) <= set(warned),
        }
        if headline:
            targets["label_transfer_minus_cca"] = round(
                coupled["label_transfer"] - cca["label_transfer"], 4
            )
            targets["label_transfer_met"] = coupled["label_transfer"] >= cca["label_transfer"]
            targets["ami_minus_cca"] = round(coupled["ami"] - cca["ami"], 4)
            targets["ami_met"] = coupled["ami"] >= cca["ami"] + 0.1
        datasets[name] = {
            "target": target,
            "n_cells": runs[0]["n_cells"],
            "n_hidden": runs[0]["n_hidden"],
            "seeds": [r["seed"] for r in runs],
            "label_level": headline,
            "coupled": coupled,
            "cca": cca,
            "ridge": ridge,
            "variants": variants,
            "targets": targets,
            "loadavg_end_per_seed": [r.get("loadavg_end") for r in runs],
        }
    cv10 = [json.loads(p.read_text()) for p in sorted(PARTS.glob("m1_ephys_cv10_fold*.json"))]
    if cv10 and "m1_ephys" in datasets:
        from coupled_cv10 import summarise

        datasets["m1_ephys"]["cv10"] = summarise(cv10)
    payload = {"datasets": datasets, "setup": SETUP, "notes": NOTES}
    write_result(OUT, payload, torch_threads_note="torch.set_num_threads(1)")


if __name__ == "__main__":
    main()
