"""sBNN-2 on small data: which training length and pre-training K hold up below M1's size?

The default schedule must converge at every size. On four small data sets
(random 80- and 300-cell subsamples of M1, the 200-cell PBMC 5k CITE-seq fixture with its
29 proteins as targets, and ``simulate_patchseq`` at 150 cells), 10-fold cross-validation
(same folds for every rule) of sBNN-2 with 25 genes under:

* ``paper``: the paper's epochs held fixed (50/50/50/100), k-means K = 20;
* ``floor``: the default phase lengths (the paper's epochs, at least the paper's
  optimisation steps on M1's 1,092-cell folds: ``size_scaled_epochs``), K = 20;
* ``sqrt``: optimisation steps growing as the square root of the cells below 1,092
  (epochs = paper x sqrt(1092 / n)), K = 20;
* a ``K`` suffix: the same with the default K scaled to the cells
  (``size_scaled_clusters``: ~55 cells per cluster, 2-20);

and sRRR rank 2 with 25 genes. K = 20 is forced for the rules without the suffix by
wrapping ``pretrain_labels`` (``mv.tl.cross_validate`` does not take ``n_clusters``).

Usage: ``python benchmarks/convergence/sbnn_small_data.py`` (one torch thread; results are kept per
data set and rule, so a rerun only fills in what is missing).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
import mudata as md  # noqa: E402
from _common import DATA, RESULTS, hardware  # noqa: E402
from convergence_sbnn import m1_subsample  # noqa: E402

import multiviz as mv  # noqa: E402
import multiviz.models.sbnn._ensemble_plan as _ens  # noqa: E402
import multiviz.models.sbnn._plan as _plan  # noqa: E402
import multiviz.models.sbnn._schedule as _sched  # noqa: E402
from multiviz.models.sbnn._schedule import (  # noqa: E402
    PAPER_EPOCHS,
    REFERENCE_CELLS,
    default_epochs,
    size_scaled_clusters,
)

OUT = RESULTS / "sbnn_small_data.json"
MODEL = {"bottleneck": 2, "n_genes": 25}
PLAN = {
    "m1_80": ["srrr", "paper", "paperK", "floor", "floorK", "sqrt", "sqrtK"],
    "m1_300": ["srrr", "paper", "paperK", "floor", "floorK", "sqrtK"],
    "pbmc5k": ["srrr", "paper", "paperK", "floor", "floorK", "sqrtK"],
    "sim150": ["srrr", "paper", "paperK", "floor", "floorK"],
}
_ORIGINAL_LABELS = _sched.pretrain_labels
_SCALE_K = [True]


def _labels(Y, n_clusters=None, random_state=0, **kw):
    return _ORIGINAL_LABELS(Y, None if _SCALE_K[0] else 20, random_state, **kw)


for _mod in (_sched, _plan, _ens):
    if hasattr(_mod, "pretrain_labels"):
        _mod.pretrain_labels = _labels


def sqrt_epochs(n: int) -> dict:
    f = math.sqrt(REFERENCE_CELLS / n) if n < REFERENCE_CELLS else 1.0
    return {k: math.ceil(v * f) for k, v in PAPER_EPOCHS.items() if k != "no_pretrain_epochs"}


def epochs_of(rule: str, n_train: int) -> dict:
    if rule == "paper":
        return {k: v for k, v in PAPER_EPOCHS.items() if k != "no_pretrain_epochs"}
    if rule == "sqrt":
        return sqrt_epochs(n_train)
    return {}  # "floor": the library default


def data(name: str):
    if name.startswith("m1_"):
        return m1_subsample(int(name[3:]))
    if name == "pbmc5k":
        m = md.read_h5mu(DATA / "pbmc_5k_protein_v3_200cells_fixture.h5mu")
        mv.pp.prepare_paired(m, x="rna", y="protein", n_top_genes=1000)
        return m
    m = mv.datasets.simulate_patchseq(n_cells=int(name[3:]), n_genes=1000, random_state=1)
    mv.pp.prepare_paired(m, x="rna", y="ephys", gene_selection="none")
    return m


def cv(m, rule: str, n_train: int) -> dict:
    load0, c0 = os.getloadavg(), time.process_time()
    if rule == "srrr":
        df = mv.tl.cross_validate(m, method="srrr", n_folds=10, rank=2, n_genes=25)
    else:
        _SCALE_K[0] = rule.endswith("K")
        base = rule.removesuffix("K")
        df = mv.tl.cross_validate(
            m, method="sbnn", n_folds=10, linear_baseline=False, **MODEL, **epochs_of(base, n_train)
        )
    a = df[df["feature"] == "all"]
    return {
        "r2": [round(float(r), 4) for r in a["r2"]],
        "mean": float(a["r2"].mean()),
        "train": float(a["r2_train"].mean()),
        "cpu_s": time.process_time() - c0,
        "loadavg_before": list(load0),
    }


def main() -> None:
    res = json.loads(OUT.read_text()) if OUT.exists() else {}
    for name, rules in PLAN.items():
        m = data(name)
        n_train = m.n_obs - math.ceil(m.n_obs / 10)
        r = res.setdefault(name, {})
        r.update(
            n_train=n_train,
            k_scaled=size_scaled_clusters(n_train),
            epochs_floor=default_epochs(n_train),
            epochs_sqrt=sqrt_epochs(n_train),
        )
        for rule in rules:
            if rule not in r:
                r[rule] = cv(m, rule, n_train)
                print(name, rule, round(r[rule]["mean"], 4), flush=True)
                res.update(hardware=hardware(), torch_threads=1)
                OUT.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
