"""Would a batched ensemble pay for the coupled autoencoder's cross-validation?

The question: should the coupled autoencoder's folds train as one stacked network (as
the sBNN's do)? A stacked K-member network does the work of one network on K x the rows per
step (the same matrix products, batched), so the question is how a training step's cost
grows with its rows. On M1 (RNA 1,000 genes + 16 ephys features, the tutorial's
preparation), the per-step CPU time of ``CoupledAutoencoder.train`` is measured at the
default minibatch (200 cells) and at 10 x that (2,000 cells), each as the slope between
two run lengths (so start-up and validation cancel), interleaved, one torch thread:

``speedup_10_members = 10 * t_step(200) / t_step(2000)``

is what ten folds trained as one stacked network would gain over ten sequential fits
(an upper bound: the stacked version also needs per-member masks and a batched SVD for the
coupling term).

Usage: ``python benchmarks/ensemble/coupled_ensemble_probe.py`` -> ``results/coupled_ensemble_probe.json``.
"""

from __future__ import annotations

import json
import os
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
from multiviz.models import CoupledAutoencoder  # noqa: E402

OUT = RESULTS / "coupled_ensemble_probe.json"
STEPS = (100, 300)
BATCHES = (200, 2000)
REPEATS = 2


def m1():
    m = md.read_h5mu(DATA / "m1_patchseq_scala2021.h5mu")
    mv.pp.prepare_paired(m, x="rna", y="ephys", n_top_genes=1000)
    return m


def cpu_seconds(mdata, batch: int, steps: int) -> float:
    model = CoupledAutoencoder(mdata, modalities=("rna", "ephys"), random_state=0)
    c0 = time.process_time()
    model.train(
        max_epochs=1,
        steps_per_epoch=steps,
        batch_size=batch,
        accelerator="cpu",
        enable_progress_bar=False,
    )
    return time.process_time() - c0


def main() -> None:
    mdata = m1()
    load0 = os.getloadavg()
    runs = {f"{b}x{s}": [] for b in BATCHES for s in STEPS}
    for _ in range(REPEATS):  # interleaved: A, B, A, B ...
        for s in STEPS:
            for b in BATCHES:
                runs[f"{b}x{s}"].append(cpu_seconds(mdata, b, s))
    slope = {
        b: (np.median(runs[f"{b}x{STEPS[1]}"]) - np.median(runs[f"{b}x{STEPS[0]}"]))
        / (STEPS[1] - STEPS[0])
        for b in BATCHES
    }
    ratio = slope[BATCHES[1]] / slope[BATCHES[0]]
    res = {
        "what": __doc__.split("\n\n")[0],
        "cpu_seconds_per_run": runs,
        "cpu_seconds_per_step": {str(b): float(v) for b, v in slope.items()},
        "step_cost_ratio_10x_rows": float(ratio),
        "speedup_10_members": float(10 / ratio),
        "loadavg_before": list(load0),
        "loadavg_after": list(os.getloadavg()),
        "torch_threads": 1,
        "hardware": hardware(),
    }
    OUT.write_text(json.dumps(res, indent=1))
    print(json.dumps({k: res[k] for k in ("cpu_seconds_per_step", "speedup_10_members")}))


if __name__ == "__main__":
    main()
