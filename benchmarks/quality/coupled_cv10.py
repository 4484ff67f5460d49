"""M1: 10-fold CV of ephys from RNA and of RNA PCs from ephys, on cells held out entirely.

The second M1 measurement of ``coupled_prediction.json`` (the first hides the ephys of 30 %
of the cells but keeps their RNA in training). Here each fold's cells take no part in
training at all. Per fold (``KFold(10, shuffle=True, random_state=0)`` over the 1,213
cells of ``mv.pp.prepare_paired(n_top_genes=1000)``):

- ``coupled``: the default ``mv.models.CoupledAutoencoder`` (``n_latent=3``), trained on
  the other nine folds (fully paired); test cells are encoded from one modality and
  decoded into the other (``model.decode``): ephys from RNA, and RNA from ephys projected
  onto the training folds' 20 RNA PCs;
- ``cca``: ``PCCCA(3, 20 PCs per modality)`` on the training folds, then linear regression
  of the other modality (ephys / RNA PCs) on the canonical variates of the given one;
- ``ridge``: ``RidgeCV`` from all genes to ephys, and from all ephys features to RNA PCs.

R² pools the features (ephys) or PCs (their variance weights them), baseline the training
folds' mean; per feature for ephys. Each fold writes
``benchmarks/results/coupled_prediction_parts/m1_ephys_cv10_fold{k}.json``;
``python benchmarks/quality/coupled_prediction.py --merge`` adds their summary to
``coupled_prediction.json`` under ``datasets.m1_ephys.cv10``.

Usage (one torch thread; ~1.5 min of CPU per fold)::

    python benchmarks/quality/coupled_cv10.py [--folds 0 1 ...]
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
from coupled_prediction import N_LATENT, PARTS, fit_coupled, load, r2_scores  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402
from sklearn.linear_model import LinearRegression, RidgeCV  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402

from multiviz.tl._cca import PCCCA  # noqa: E402
from multiviz.tl._coupled_heldout import RIDGE_ALPHAS  # noqa: E402

N_FOLDS = 10
N_RNA_PCS = 20


def _subset(mdata: md.MuData, rows: np.ndarray) -> md.MuData:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return mdata[rows].copy()


def coupled_fold(mdata, target, train, test, seed: int) -> dict:
    """The default coupled AE on the training folds; both directions on the test fold."""
    model, cpu = fit_coupled(_subset(mdata, train), target, seed, {})
    query = _subset(mdata, test)
    rows = {n: i for i, n in enumerate(model.obs_names_for(query))}
    order = np.array([rows[n] for n in query.obs_names])
    z = model.get_latent_representation(query)
    y_hat = model.decode(z["rna"], target)[order]
    x_hat = model.decode(z[target], "rna")[order]
    return {"y_hat": y_hat, "x_hat": x_hat, "cpu_s": round(cpu, 1), "steps": model.n_steps_}


def linear_fold(x, y, train, test, seed: int) -> dict:
    """PC-CCA regressions and ridge, both directions; predictions on the test fold."""
    n_pcs = (N_RNA_PCS, min(N_RNA_PCS, y.shape[1]))
    cca = PCCCA(N_LATENT, n_pcs, random_state=seed).fit(x[train], y[train])
    zt, zy = cca.transform(x, 0), cca.transform(y, 1)
    pcs = PCA(N_RNA_PCS, random_state=seed).fit(x[train])
    p = pcs.transform(x)
    return {
        "cca": {
            "y_hat": LinearRegression().fit(zt[train], y[train]).predict(zt[test]),
            "pc_hat": LinearRegression().fit(zy[train], p[train]).predict(zy[test]),
        },
        "ridge": {
            "y_hat": RidgeCV(alphas=RIDGE_ALPHAS).fit(x[train], y[train]).predict(x[test]),
            "pc_hat": RidgeCV(alphas=RIDGE_ALPHAS).fit(y[train], p[train]).predict(y[test]),
        },
        "pcs": pcs,
        "p": p,
    }


def run_fold(k: int, seed: int = 0) -> dict:
    """One fold: every method's ephys-from-RNA and RNA-PCs-from-ephys R² on the test fold."""
    mdata, target, _ = load("m1_ephys")
    x = np.asarray(mdata["rna"].X, dtype=np.float64)
    y = np.asarray(mdata[target].X, dtype=np.float64)
    folds = list(KFold(N_FOLDS, shuffle=True, random_state=seed).split(x))
    train, test = folds[k]
    lin = linear_fold(x, y, train, test, seed)
    cae = coupled_fold(mdata, target, train, test, seed)
    p, y_mean, p_mean = lin["p"], y[train].mean(0), lin["p"][train].mean(0)
    cae["pc_hat"] = lin["pcs"].transform(cae.pop("x_hat"))
    out = {
        "fold": k,
        "seed": seed,
        "n_test": int(test.size),
        "features": list(map(str, mdata[target].var_names)),
    }
    for name, pred in (("coupled", cae), ("cca", lin["cca"]), ("ridge", lin["ridge"])):
        r2_y, per = r2_scores(y[test], pred["y_hat"], y_mean)
        r2_p, _ = r2_scores(p[test], pred["pc_hat"], p_mean)
        out[name] = {
            "r2_ephys_from_rna": r2_y,
            "r2_ephys_per_feature": per,
            "r2_rna_pcs_from_ephys": r2_p,
        }
    out["coupled"].update(cpu_s=cae["cpu_s"], steps=int(cae["steps"]))
    out["loadavg_end"] = list(os.getloadavg())
    return out


def summarise(parts: list[dict]) -> dict:
    """Means (and SEs over folds) per method; the folds run."""
    parts = sorted(parts, key=lambda r: r["fold"])
    feats = parts[0]["features"]
    summary = {"folds_run": [r["fold"] for r in parts], "n_folds": N_FOLDS}
    for name in ("coupled", "cca", "ridge"):
        rec = {}
        for key in ("r2_ephys_from_rna", "r2_rna_pcs_from_ephys"):
            vals = np.array([r[name][key] for r in parts])
            rec[key] = round(float(vals.mean()), 4)
            rec[f"{key}_se"] = (
                round(float(vals.std(ddof=1) / np.sqrt(vals.size)), 4) if vals.size > 1 else None
            )
        per = np.mean([r[name]["r2_ephys_per_feature"] for r in parts], axis=0)
        rec["r2_ephys_per_feature"] = {f: round(float(v), 4) for f, v in zip(feats, per)}
        summary[name] = rec
    summary["coupled"]["cpu_s_per_fold"] = round(
        float(np.mean([r["coupled"]["cpu_s"] for r in parts])), 1
    )
    summary["coupled_minus_cca"] = {
        k: round(summary["coupled"][k] - summary["cca"][k], 4)
        for k in ("r2_ephys_from_rna", "r2_rna_pcs_from_ephys")
    }
    return summary


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--folds", nargs="+", type=int, default=list(range(N_FOLDS)))
    args = ap.parse_args()
    PARTS.mkdir(parents=True, exist_ok=True)
    for k in args.folds:
        start = time.perf_counter()
        res = run_fold(k)
        res["wall_s"] = round(time.perf_counter() - start, 1)
        (PARTS / f"m1_ephys_cv10_fold{k}.json").write_text(json.dumps(res, indent=1))
        print(
            k,
            *(
                f"{m} {res[m]['r2_ephys_from_rna']:.3f}/{res[m]['r2_rna_pcs_from_ephys']:.3f}"
                for m in ("coupled", "cca", "ridge")
            ),
            flush=True,
        )


if __name__ == "__main__":
    main()
