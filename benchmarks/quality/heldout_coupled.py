"""Held-out cross-modal R² of the default `mv.tl.coupled_autoencoder` fit on every dataset.

Usage (from the repository root; about 10 minutes on one CPU thread):

    python benchmarks/quality/heldout_coupled.py

On M1 Patch-seq (rna, ephys), both 200-cell PBMC CITE-seq fixtures (rna, protein) and a
1,000-cell `simulate_patchseq`, each prepared with `mv.pp.prepare_paired(n_top_genes=1000)`,
runs the default fit (10k steps, `train_size=0.9`) and records the held-out cross-modal R²
of each direction (training mean as the baseline, 10 % of the cells never trained on), the
linear baseline's on the same cells (ridge from all source features, same training cells), the
`mv.FitQualityWarning`s that fired, and process CPU time. One torch thread; the load
average is recorded.

Writes `benchmarks/results/heldout_coupled.json`:
`{"datasets": {NAME: {"r2_heldout_cross_modal": {...}, "n_heldout_cross_modal": {...},
"fit_quality_warnings": [...], "cpu_s": x}}}`.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import torch

torch.set_num_threads(1)

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
import mudata as md  # noqa: E402
from _common import DATA, RESULTS, write_result  # noqa: E402

import multiviz as mv  # noqa: E402

OUT = RESULTS / "heldout_coupled.json"


def _datasets() -> dict:
    out = {"m1_ephys": (md.read_h5mu(DATA / "m1_patchseq_scala2021.h5mu"), "ephys")}
    for name in ("pbmc_10k_protein_v3_200cells", "pbmc_5k_protein_v3_200cells"):
        out[name] = (md.read_h5mu(DATA / f"{name}_fixture.h5mu"), "protein")
    sim = mv.datasets.simulate_patchseq(n_cells=1000, n_genes=1000, random_state=0)
    out["simulate_patchseq_1000"] = (sim, "ephys")
    return out


def main() -> None:
    results = {}
    for name, (m, y) in _datasets().items():
        mv.pp.prepare_paired(m, x="rna", y=y, n_top_genes=1000)
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", mv.MultivizWarning)
            start = time.process_time()
            mv.tl.coupled_autoencoder(m, modalities=("rna", y), enable_progress_bar=False)
            cpu = time.process_time() - start
        out = m.uns["cae"]
        results[name] = {
            "r2_heldout_cross_modal": {
                k: round(float(v), 4) for k, v in out["r2_heldout_cross_modal"].items()
            },
            "r2_heldout_cross_modal_linear": {
                k: round(float(v), 4) for k, v in out["r2_heldout_cross_modal_linear"].items()
            },
            "n_heldout_cross_modal": dict(out["n_heldout_cross_modal"]),
            "fit_quality_warnings": [
                str(w.message)[:200] for w in seen if issubclass(w.category, mv.FitQualityWarning)
            ],
            "cpu_s": round(cpu, 1),
        }
        print(name, json.dumps(results[name]), flush=True)
    write_result(OUT, {"datasets": results}, torch_threads_note="torch.set_num_threads(1)")


if __name__ == "__main__":
    main()
