"""Held-out R² at every fit: what `mv.tl.sbnn` / `mv.tl.srrr` report and warn by default.

Usage (from the repository root; about 5 minutes on one CPU thread):

    python benchmarks/quality/heldout_at_fit.py

On every paired dataset we have (M1 Patch-seq ephys, both 200-cell PBMC CITE-seq fixtures'
proteins, an 80-cell random subset of M1, a 300-cell `simulate_patchseq`), each prepared
with `mv.pp.prepare_paired(n_top_genes=1000)`, runs the default fits (`train_size=0.9`):
sRRR-2 and sBNN-2 with 25 genes, and records the held-out R² (10 % of the cells), the
training R², sRRR's held-out R² on the same split, and which `mv.FitQualityWarning`s fired.
It also times sBNN-2 with `train_size=1.0` (no held-out numbers), interleaved
(default, full, default, full), to give `heldout_overhead` = process CPU time of the default
fit / the fit on every cell (the default trains on 10 % fewer cells and adds one sRRR fit).
One torch thread; the load average is recorded.

Writes `benchmarks/results/heldout_at_fit.json`:
`{"datasets": {NAME: {"sbnn": {...}, "srrr": {...}}}, "heldout_overhead": {NAME: x}}`.
"""

from __future__ import annotations

import json
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

import multiviz as mv  # noqa: E402

OUT = RESULTS / "heldout_at_fit.json"
KEYS = ("r2_train", "r2_heldout", "r2_heldout_linear", "n_heldout")


def _datasets() -> dict:
    m1 = md.read_h5mu(DATA / "m1_patchseq_scala2021.h5mu")
    small = m1[np.sort(np.random.default_rng(0).choice(m1.n_obs, 80, replace=False))].copy()
    out = {"m1_ephys": (m1, "ephys"), "m1_80_cells": (small, "ephys")}
    for name in ("pbmc_10k_protein_v3_200cells", "pbmc_5k_protein_v3_200cells"):
        out[name] = (md.read_h5mu(DATA / f"{name}_fixture.h5mu"), "protein")
    out["simulate_patchseq_300"] = (
        mv.datasets.simulate_patchseq(n_cells=300, n_genes=1000, random_state=0),
        "ephys",
    )
    return out


def _fit(fn, m, key: str, **kw) -> tuple[dict, list[str], float]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", mv.MultivizWarning)
        start = time.process_time()
        fn(m, key_added=key, **kw)
        cpu = time.process_time() - start
    stats = {k: round(float(m.uns[key][k]), 4) for k in KEYS if k in m.uns[key]}
    fired = [str(w.message)[:160] for w in seen if issubclass(w.category, mv.FitQualityWarning)]
    return stats, fired, cpu


def main() -> None:
    results, overhead = {}, {}
    for name, (m, y) in _datasets().items():
        mv.pp.prepare_paired(m, x="rna", y=y, n_top_genes=1000)
        row = {}
        stats, fired, cpu = _fit(mv.tl.srrr, m, "srrr", rank=2, n_genes=25)
        row["srrr"] = {**stats, "fit_quality_warnings": fired, "cpu_s": round(cpu, 2)}
        cpus = {"default": [], "full": []}
        for rep in range(2):  # interleaved: default, full, default, full
            stats, fired, cpu = _fit(mv.tl.sbnn, m, "sbnn", bottleneck=2, n_genes=25)
            cpus["default"].append(cpu)
            if rep == 0:
                row["sbnn"] = {**stats, "fit_quality_warnings": fired}
            _, _, cpu = _fit(mv.tl.sbnn, m, "sbnn_full", train_size=1.0)
            cpus["full"].append(cpu)
        row["sbnn"]["cpu_s_default"] = [round(c, 2) for c in cpus["default"]]
        row["sbnn"]["cpu_s_train_size_1"] = [round(c, 2) for c in cpus["full"]]
        overhead[name] = round(float(np.mean(cpus["default"]) / np.mean(cpus["full"])), 3)
        results[name] = row
        print(name, json.dumps(row), overhead[name], flush=True)
    write_result(
        OUT,
        {"datasets": results, "heldout_overhead": overhead},
        torch_threads_note="torch.set_num_threads(1)",
    )


if __name__ == "__main__":
    main()
