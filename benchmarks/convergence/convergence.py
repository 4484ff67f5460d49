"""``benchmarks/results/convergence.json``: do the default schedules converge at every size?

Assembles the two measurements, each made by its own script (run those first):

* ``convergence_sbnn.py`` -> ``convergence_sbnn.json``: sBNN-2 at 80, 300 and 1,213 cells
  (subsamples of M1) and at 10,000 simulated cells; the optimisation steps of the default
  schedule per phase and the 10-fold held-out R² against sRRR rank 2 on the same folds;
* ``convergence_sivae.py`` -> ``convergence_sivae.json``: siVAE's default fit against
  ``scvi.model.SCVI``'s default fit on M1 RNA and on a simulated 5,000-cell set (process CPU
  seconds and their ratio, one run each, interleaved), the 2-d k-NN accuracy of siVAE,
  SCVI (2-d and its default 10-d) and PCA-2 on held-out cells, and the feature-input build
  as a fraction of the siVAE fit.

Usage: ``python benchmarks/convergence/convergence.py`` (no training; reads the two JSON files).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
from _common import RESULTS  # noqa: E402


def sbnn_part(src: dict) -> dict:
    out = {}
    for size, r in src["sbnn2"].items():
        row = {
            "n_cells": r["n_cells"],
            "steps_default": r["steps_default"],
            "r2_default": r["r2_default"],
            "r2_srrr2": r["r2_srrr2"],
            "default_minus_srrr2": r["r2_default"] - r["r2_srrr2"],
        }
        if "r2_paper_epochs" in r:
            row["r2_paper_epochs"] = r["r2_paper_epochs"]
        for extra in ("n_clusters_default", "epochs_default"):
            if extra in r:
                row[extra] = r[extra]
        out[size] = row
    return out


def sivae_part(src: dict) -> dict:
    out = {}
    for name in ("m1", "sim5000"):
        d = src.get(name)
        if not d:
            continue
        out[name] = {
            "n_train": d["n_train"],
            "n_genes": d["n_genes"],
            "sivae_cpu_s": d["sivae_cpu_seconds"],
            "scvi_default_cpu_s": d["scvi_cpu_seconds"],
            "time_ratio_sivae_over_scvi": d["time_ratio"],
            "time_ratio_target": 1.5,
            "knn_sivae_2d": d["knn_sivae"],
            "knn_scvi_2d": d.get("knn_scvi2"),
            "knn_scvi_default_10d": d["knn_scvi"],
            "knn_pca_2d": d["knn_pca2"],
            "feature_input_fraction_of_fit": d["feature_input_fraction"],
            "feature_input_target": 0.10,
            "steps_per_step": d["sivae_fit"].get("steps_per_step"),
        }
    return out


def main() -> None:
    sbnn = json.loads((RESULTS / "convergence_sbnn.json").read_text())
    sivae = json.loads((RESULTS / "convergence_sivae.json").read_text())
    out = {
        "what": "Default training length at every data size. sbnn2: 10-fold held-out "
        "R² of sBNN-2 (25 genes) under the default schedule against sRRR rank 2 on the same "
        "folds. sivae: default siVAE fit vs scvi.model.SCVI's default fit on the same "
        "training cells (process CPU seconds, one run each) and 2-d k-NN accuracy on "
        "held-out cells.",
        "sources": {
            "sbnn2": "convergence_sbnn.json (benchmarks/convergence/convergence_sbnn.py)",
            "sivae": "convergence_sivae.json (benchmarks/convergence/convergence_sivae.py)",
        },
        "sbnn_schedule_rule": sbnn.get("schedule_rule"),
        "torch_threads": 1,
        "sbnn2": sbnn_part(sbnn),
        "sivae": sivae_part(sivae),
        "hardware": sbnn.get("hardware"),
    }
    (RESULTS / "convergence.json").write_text(json.dumps(out, indent=1))
    print(json.dumps({k: out[k] for k in ("sbnn2", "sivae")}, indent=1))


if __name__ == "__main__":
    main()
