"""Consensus gene selection nested in the cross-validation folds.

For each of M1's 10 outer folds: an ensemble of ``--seeds`` sBNN-2 fits on the fold's
training cells only (all folds x seeds train as one batched ensemble), the consensus of
their genes (selected most often, ties by relative weight: ``multiviz.tl._consensus``),
one sBNN-2 refitted on exactly those 25 genes (seed 0, the default schedule), and its R²
on the fold's test cells, which took no part in choosing the genes. Stability is the
mean pairwise Jaccard of the 25-gene sets: of single fits (all folds x seeds) without
consensus, and of the 10 per-fold consensus sets with it (45 pairs; any two folds share
8/9 of their training cells, and every fold has its own seeds' fits).

    python benchmarks/ensemble/consensus_nested.py --seeds 5   # -> results/ensemble_parts/nested.json
    python benchmarks/ensemble/ensemble.py --merge             # adds `nested` to ensemble.json

One torch thread (set below).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
from _common import hardware  # noqa: E402
from ensemble import (  # noqa: E402
    MODEL,
    PARTS,
    Clock,
    _consensus,
    cv_r2,
    folds_data,
    load_m1,
    restrict,
)

from multiviz.metrics import mean_pairwise_jaccard, mean_pairwise_overlap  # noqa: E402
from multiviz.tl._ensemble_fits import fit_sbnn_members  # noqa: E402


def run(n_seeds: int) -> dict:
    mdata = load_m1()
    arrays = folds_data(mdata)
    K = len(arrays)
    trains = [tr for tr, _ in arrays for _ in range(n_seeds)]
    seeds = [s for _ in arrays for s in range(n_seeds)]
    with Clock() as clk:
        fits = fit_sbnn_members(trains, seeds, MODEL, ensemble=True, progress=False)
    out = {"ensemble": clk.record(), "n_folds": K, "seeds_per_fold": n_seeds}
    single = [f.genes for f in fits]
    cons, sub = [], []
    for k, (tr, te) in enumerate(arrays):
        names = [str(g) for g in tr.gene_names]
        genes, _ = _consensus(fits[k * n_seeds : (k + 1) * n_seeds], names)
        cons.append(genes)
        idx = np.array([names.index(g) for g in genes])
        sub.append((restrict(tr, idx), restrict(te, idx)))
    with Clock() as c2:
        refits = fit_sbnn_members(
            [tr for tr, _ in sub], [0] * K, MODEL, ensemble=True, progress=False
        )
    r2_cons = cv_r2(sub, refits)
    # the plain sBNN-2 on the same folds: seed 0's member of each fold
    r2_single = cv_r2(arrays, fits[::n_seeds])
    per_fold_single = [single[k * n_seeds : (k + 1) * n_seeds] for k in range(K)]
    out.update(
        {
            "refit": c2.record(),
            "jaccard_mean_single_fits": mean_pairwise_jaccard(single),
            "jaccard_mean_single_fits_within_fold": float(
                np.mean([mean_pairwise_jaccard(s) for s in per_fold_single])
            ),
            "jaccard_mean_seed0_across_folds": mean_pairwise_jaccard(single[::n_seeds]),
            "jaccard_mean_consensus": mean_pairwise_jaccard(cons),
            "overlap_mean_consensus": mean_pairwise_overlap(cons),
            "n_consensus_pairs": K * (K - 1) // 2,
            "consensus_gene_sets": cons,
            "r2_per_fold_consensus": r2_cons,
            "r2_mean_consensus": float(np.mean(r2_cons)),
            "r2_per_fold_sbnn2_seed0": r2_single,
            "r2_mean_sbnn2_seed0": float(np.mean(r2_single)),
            "consensus_no_lower_than_sbnn2": bool(np.mean(r2_cons) >= np.mean(r2_single)),
            "protocol": "nested: each fold's consensus genes come from seeds trained on that "
            "fold's training cells only; the refit on them is scored on the fold's test cells",
        }
    )
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=5, help="seeds per outer fold")
    args = ap.parse_args()
    PARTS.mkdir(parents=True, exist_ok=True)
    with Clock() as total:
        result = run(args.seeds)
    meta = {**hardware(), "total": total.record(), "command": "python " + " ".join(sys.argv)}
    json.dump({"meta": meta, "result": result}, open(PARTS / "nested.json", "w"), indent=1)
    print(json.dumps({k: v for k, v in result.items() if "sets" not in k}, indent=1))


if __name__ == "__main__":
    main()
