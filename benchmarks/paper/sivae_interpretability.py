"""siVAE interpretability benchmark -> ``interpretability`` in benchmarks/results/sivae.json.

For each γ (and the step-2 interpretability option) on M1 Patch-seq RNA (fold 0 of the
5-fold split of ``sivae.py`` part b, RNA prepared as there) and on the hub simulation
(``simulate_gene_network``, paper design, 64-d):

* ``r2_gene``: mean per-gene R² of the full decoder on held-out cells;
* ``r2_linear``: mean per-gene R² of ``v_{f,1} · z_{c,1}`` + intercept on held-out cells;
* ``spearman_lstsq``: per dimension, |Spearman| between the loadings and the
  least-squares coefficients of X (training cells) on the scores; ``_median`` over dims;
* ``spearman_deeplift``: per dimension, |Spearman| between the loadings and the DeepLIFT
  summary of ``mv.tl.decoder_attribution`` (the paper's comparison); and the same for
  DeepLIFT vs the least-squares coefficients (the ceiling a decoder can reach);
* 2-d k-NN accuracy (M1, k = 80) and hub recovery (simulation) to show the cost.

Usage: ``python benchmarks/paper/sivae_interpretability.py --data m1|hub --gammas 0 0.05 0.5``
One torch thread; ``os.getloadavg()`` and process CPU time recorded per fit.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)


sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
from _common import RESULTS, hardware  # noqa: E402

import multiviz as mv  # noqa: E402

OUT = Path(os.environ.get("SIVAE_BENCH_OUT", RESULTS / "sivae.json"))
QUIET = {"enable_progress_bar": False}
LOCK = Path(tempfile.gettempdir()) / "multiviz_sivae_json.lock"


def merge(data_key: str, entry: dict, summary: dict | None = None) -> None:
    """Merge one fit into ``interpretability[data_key]`` under a file lock."""
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(OUT.read_text()) if OUT.exists() else {}
        part = data.setdefault("interpretability", {}).setdefault(data_key, {})
        runs = [r for r in part.get("runs", []) if r["config"] != entry["config"]]
        part["runs"] = [*runs, entry]
        if summary:
            part.update(summary)
        data["hardware_interpretability"] = hardware(torch_threads_set=1)
        data.setdefault("commands", {})["interpretability_" + data_key] = "python " + " ".join(
            sys.argv
        )
        OUT.write_text(json.dumps(data, indent=2, default=float))
    print(json.dumps(entry, default=float), flush=True)


def spearman_cols(a: np.ndarray, b: np.ndarray) -> list[float]:
    from scipy.stats import spearmanr

    return [float(abs(spearmanr(a[:, d], b[:, d])[0])) for d in range(a.shape[1])]


def lstsq_coef(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Genes x dims coefficients of X on [1, Z] (intercept dropped)."""
    design = np.c_[np.ones(len(z)), z]
    coef, *_ = np.linalg.lstsq(design, x, rcond=None)
    return coef[1:].T


def evaluate(model, x_tr, x_te, ad_te) -> dict:
    z_tr = model.get_latent_representation()
    load = model.get_loadings().to_numpy()
    r2_gene = model.get_gene_r2(ad_te).to_numpy()
    r2_lin = model.get_gene_r2(ad_te, linear=True).to_numpy()
    ok = np.isfinite(r2_gene)
    # active units (Burda et al. 2016): dims whose posterior mean varies over cells; the
    # KL term collapses the others to the prior, where loadings and least-squares
    # coefficients are both noise (matters at 64 dims, not at 2)
    active = np.flatnonzero(z_tr.var(0) > 0.01)
    coef = lstsq_coef(x_tr, z_tr[:, active])
    rho_l = spearman_cols(load[:, active], coef)
    u = mv.tl.decoder_attribution(model, method="deeplift", n_cells=2000).to_numpy()
    rho_d = spearman_cols(load[:, active], u[:, active])
    rho_dc = spearman_cols(u[:, active], coef)
    return {
        "r2_gene": float(r2_gene[ok].mean()),
        "r2_linear": float(r2_lin[ok].mean()),
        "r2_linear_train": float(np.nanmean(model.get_gene_r2(linear=True).to_numpy())),
        "n_active_dims": int(len(active)),
        "spearman_lstsq_per_dim": rho_l,
        "spearman_lstsq": float(np.median(rho_l)),
        "spearman_deeplift_per_dim": rho_d,
        "spearman_deeplift": float(np.median(rho_d)),
        "spearman_deeplift_vs_lstsq_per_dim": rho_dc,
        "spearman_deeplift_vs_lstsq": float(np.median(rho_dc)),
        "dims_note": "per active dim (posterior-mean variance over training cells > 0.01)",
    }


def fit(ad_tr, gamma, interp_pretrain, n_latent, epochs, seed):
    mv.models.SIVAE.setup_anndata(ad_tr)
    model = mv.models.SIVAE(
        ad_tr, n_latent=n_latent, gamma=gamma, interp_pretrain=interp_pretrain, random_state=seed
    )
    t, c = time.perf_counter(), time.process_time()
    model.train(
        max_epochs=epochs[2], pretrain_epochs=epochs[0], feature_pretrain_epochs=epochs[1], **QUIET
    )
    return model, time.perf_counter() - t, time.process_time() - c


def run_m1(configs, epochs) -> None:
    from anndata import AnnData
    from sklearn.model_selection import StratifiedKFold

    sys.path.insert(0, str(Path(__file__).parent))
    from sivae import _lognorm, _m1

    counts, labels, genes = _m1()
    logx = _lognorm(counts)
    tr, te = next(StratifiedKFold(n_splits=5, shuffle=True, random_state=0).split(counts, labels))
    mean, std = mv.pp.fit_zscore(logx[tr])
    xtr, xte = mv.pp.apply_zscore(logx[tr], mean, std), mv.pp.apply_zscore(logx[te], mean, std)
    for gamma, pre in configs:
        ad_tr, ad_te = AnnData(xtr.copy()), AnnData(xte.copy())
        ad_tr.var_names = ad_te.var_names = genes
        load0 = os.getloadavg()
        model, wall, cpu = fit(ad_tr, gamma, pre, 2, epochs, 0)
        res = evaluate(model, xtr, xte, ad_te)
        res["knn_accuracy"] = mv.metrics.knn_accuracy(
            model.get_latent_representation(), labels[tr],
            model.get_latent_representation(ad_te), labels[te],
        )  # fmt: skip
        entry = {
            "config": {"gamma": gamma, "interp_pretrain": pre},
            **res,
            "fit_wall_s": wall,
            "fit_cpu_s": cpu,
            "loadavg_before": load0,
            "loadavg_after": os.getloadavg(),
        }
        merge(
            "m1",
            entry,
            {
                "data": f"M1 Patch-seq RNA, fold 0 of 5 (stratified by rna_family): {len(tr)} "
                f"training / {len(te)} held-out cells x {len(genes)} genes; log1p(CP-median), "
                "z-scored on the training fold",
                "n_latent": 2,
                "epochs_per_step": list(epochs),
                "architecture": "1024-512-128 (paper)",
                "threads": 1,
            },
        )


def run_hub(configs, epochs, n_cells) -> None:
    adata = mv.datasets.simulate_gene_network(n_cells=n_cells, random_state=0)
    rng = np.random.default_rng(0)
    perm = rng.permutation(adata.n_obs)
    n_te = adata.n_obs // 5
    te, tr = np.sort(perm[:n_te]), np.sort(perm[n_te:])
    hubs = set(adata.var_names[adata.var["hub"].to_numpy()])
    iso = (adata.var["community"] == "isolated").to_numpy()
    for gamma, pre in configs:
        ad_tr, ad_te = adata[tr].copy(), adata[te].copy()
        load0 = os.getloadavg()
        model, wall, cpu = fit(ad_tr, gamma, pre, 64, epochs, 0)
        res = evaluate(model, np.asarray(ad_tr.X), np.asarray(ad_te.X), ad_te)
        cent = model.get_gene_centrality().sort_values(ascending=False)
        load = model.get_loadings().to_numpy()
        norms = np.linalg.norm(load, axis=1)
        res["top5_hits"] = len(hubs & set(cent.index[:5]))
        res["isolated_norm_ratio"] = float(np.median(norms[iso]) / np.median(norms[~iso]))
        res["community_purity"] = mv.metrics.knn_purity(
            load, adata.var["community"].astype(str), n_neighbors=10, mask=~iso
        )
        entry = {
            "config": {"gamma": gamma, "interp_pretrain": pre},
            **res,
            "fit_wall_s": wall,
            "fit_cpu_s": cpu,
            "loadavg_before": load0,
            "loadavg_after": os.getloadavg(),
        }
        merge(
            "hub",
            entry,
            {
                "data": f"simulate_gene_network(n_cells={n_cells}, random_state=0): {len(tr)} "
                f"training / {n_te} held-out cells x 300 genes (5 hub communities of 50 + 50 "
                "isolated; the paper simulates 5000 cells)",
                "n_latent": 64,
                "epochs_per_step": list(epochs),
                "architecture": "1024-512-128 (paper)",
                "threads": 1,
            },
        )


def summarise(default_gamma: float) -> None:
    """Headline keys from the runs: the default γ against γ = 0, and the targets met."""
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = json.loads(OUT.read_text())
        inter = data["interpretability"]
        for name, part in inter.items():
            if not isinstance(part, dict) or "runs" not in part:
                continue
            runs = {(r["config"]["gamma"], r["config"]["interp_pretrain"]): r for r in part["runs"]}
            best, zero = runs.get((default_gamma, False)), runs.get((0.0, False))
            if best is None:
                continue
            for key in ("r2_linear", "r2_gene", "spearman_lstsq", "spearman_lstsq_per_dim"):
                part[key] = best[key]
            part["gamma"] = default_gamma
            part["gamma_sweep"] = {
                f"{g:g}{' +step2' if pre else ''}": {
                    k: r[k]
                    for k in ("r2_gene", "r2_linear", "spearman_lstsq", "spearman_deeplift")
                    + (("knn_accuracy",) if "knn_accuracy" in r else ("top5_hits",))
                }
                for (g, pre), r in sorted(runs.items())
            }
            targets = {
                "spearman_lstsq >= 0.9": best["spearman_lstsq"] >= 0.9,
                "r2_linear >= 0.8 * r2_gene": best["r2_linear"] >= 0.8 * best["r2_gene"],
                "spearman_deeplift >= 0.7": best["spearman_deeplift"] >= 0.7,
            }
            if zero is not None:
                part["r2_gene_gamma0"] = zero["r2_gene"]
                targets["r2_gene within 0.02 of gamma=0"] = (
                    best["r2_gene"] >= zero["r2_gene"] - 0.02
                )
            part["targets_met"] = targets
            att = data.setdefault("attribution", {})
            att.setdefault("spearman_deeplift", {})[name] = best["spearman_deeplift"]
            att.setdefault("spearman_deeplift_per_dim", {})[name] = best[
                "spearman_deeplift_per_dim"
            ]
            att.setdefault("spearman_deeplift_vs_lstsq_ceiling", {})[name] = best[
                "spearman_deeplift_vs_lstsq"
            ]
        inter["note"] = (
            "Default gamma = 0.5 with the reference's gamma * SSE weighting. M1: one fold, paper "
            "architecture and the 100/50/50-epoch schedule of part b. Hub: 2000 cells (paper: "
            "5000) and 30/30/30 epochs, cut to fit a 2-core machine at load ~20; in 64-d only "
            "the active score dims are compared, and per-dim least-squares coefficients are "
            "not identifiable there (collinear scores), so spearman_lstsq is not meaningful on "
            "the hub; r2_linear vs r2_gene is. The parts hubs / knn / attribution.methods / "
            "speed were not re-run in this session: they were measured with the old weighting "
            "(gamma * SSE / 2, gamma = 0.05)."
        )
        OUT.write_text(json.dumps(data, indent=2, default=float))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", choices=["m1", "hub", "summary"], required=True)
    parser.add_argument("--gammas", type=float, nargs="+", default=[0.0, 0.05, 0.5])
    parser.add_argument("--pretrain-gammas", type=float, nargs="*", default=[])
    parser.add_argument("--epochs", type=int, nargs=3, default=[100, 50, 50])
    parser.add_argument("--n-cells", type=int, default=5000, help="hub simulation cells")
    args = parser.parse_args()
    mv.settings.verbosity = 1
    configs = [(g, False) for g in args.gammas] + [(g, True) for g in args.pretrain_gammas]
    if args.data == "summary":
        summarise(args.gammas[0])
    elif args.data == "m1":
        run_m1(configs, tuple(args.epochs))
    else:
        run_hub(configs, tuple(args.epochs), args.n_cells)


if __name__ == "__main__":
    main()
