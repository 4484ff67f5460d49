"""Time every step of the README's Quick start on M1, as a user runs it.

Usage (from the repository root; about 10-15 minutes on one CPU thread):

    python benchmarks/first_hour/quickstart_timings.py

Runs the Quick start's code in order on `m1_patchseq_scala2021.h5mu` (1,213 cells) with
the package defaults and `mv.settings.num_threads = 1` (the default), recording wall and
process CPU time of each step and the load average before and after. The README's timing
table is checked against this file by `tests/test_readme_numbers.py`.

Writes `benchmarks/results/quickstart_timings.json`:
`{"steps": {STEP: {"wall_s", "cpu_s"}}, "load_average_before", "load_average_after", ...}`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
import torch  # noqa: E402
from _common import DATA, RESULTS, hardware  # noqa: E402

torch.set_num_threads(1)


import multiviz as mv  # noqa: E402

OUT = RESULTS / "quickstart_timings.json"


def main() -> None:
    steps: dict[str, dict] = {}
    state: dict = {}

    def timed(name: str, fn) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        steps[name] = {
            "wall_s": round(time.perf_counter() - wall, 1),
            "cpu_s": round(time.process_time() - cpu, 1),
        }
        print(name, steps[name], flush=True)

    load_before = list(os.getloadavg())
    m = mv.datasets.m1_patchseq(DATA / "m1_patchseq_scala2021.h5mu")
    timed("prepare_paired", lambda: mv.pp.prepare_paired(m, x="rna", y="ephys", n_top_genes=1000))
    timed("srrr", lambda: mv.tl.srrr(m, rank=2, n_genes=25))
    timed("sbnn", lambda: mv.tl.sbnn(m, bottleneck=2, n_genes=25, enable_progress_bar=False))
    timed(
        "sbnn64",
        lambda: mv.tl.sbnn(m, bottleneck=64, key_added="sbnn64", enable_progress_bar=False),
    )
    timed("tsne", lambda: mv.tl.tsne(m, use_rep="X_sbnn64"))
    timed("cross_validate_srrr", lambda: mv.tl.cross_validate(m, method="srrr", n_folds=10))
    timed("cross_validate_sbnn", lambda: mv.tl.cross_validate(m, method="sbnn", n_folds=10))
    timed(
        "selection_stability_sbnn",
        lambda: mv.tl.selection_stability(m, method="sbnn", n_seeds=10),
    )
    timed(
        "coupled_autoencoder",
        lambda: mv.tl.coupled_autoencoder(
            m,
            modalities=("rna", "ephys"),
            n_latent=3,
            coupling="msv",
            lam=1.0,
            enable_progress_bar=False,
        ),
    )
    state["adata"] = m["rna"]
    timed("sivae", lambda: mv.tl.sivae(state["adata"], n_latent=2, enable_progress_bar=False))
    OUT.write_text(
        json.dumps(
            {
                "steps": steps,
                "dataset": "m1_patchseq_scala2021.h5mu (1213 cells; prepare_paired n_top_genes=1000)",
                "load_average_before": load_before,
                "load_average_after": list(os.getloadavg()),
                "threads": "torch.set_num_threads(1); mv.settings.num_threads = 1 (default)",
                "hardware": hardware("cpu"),
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
