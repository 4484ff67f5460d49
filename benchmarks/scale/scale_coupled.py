"""Peak memory of the coupled autoencoder on simulated sparse data, before/after a change.

RNA (2,000 genes, ~10 % non-zero counts, log1p, sparse CSR) + 50 dense features, 30 % of
the cells RNA-only. Each size runs in its own process (``--one N``) so ``ru_maxrss`` is
that size's peak; the parent collects them into ``benchmarks/results/scale_coupled.json``
under ``--label`` (e.g. ``before`` / ``after`` a change), keeping the other labels.

Usage: python benchmarks/scale/scale_coupled.py --label after [--sizes 10000 50000] [--steps 50]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(1, str(Path(__file__).resolve().parents[1]))  # benchmarks/: _common
from _common import RESULTS  # noqa: E402

OUT = RESULTS / "scale_coupled.json"


def _data(n: int, n_genes: int = 2000, n_feat: int = 50, seed: int = 0):
    import anndata as ad
    import mudata as md
    import numpy as np
    from scipy import sparse

    rng = np.random.default_rng(seed)
    nnz = int(n * n_genes * 0.1)
    rows, cols = rng.integers(0, n, nnz), rng.integers(0, n_genes, nnz)
    vals = np.log1p(rng.poisson(3.0, nnz) + 1).astype(np.float32)
    X = sparse.csr_matrix((vals, (rows, cols)), shape=(n, n_genes), dtype=np.float32)
    X.sum_duplicates()
    names = np.array([f"c{i}" for i in range(n)])
    rna = ad.AnnData(X)
    rna.obs_names = names
    rna.var_names = [f"g{i}" for i in range(n_genes)]
    keep = rng.random(n) >= 0.3
    eph = ad.AnnData(rng.normal(size=(int(keep.sum()), n_feat)).astype(np.float32))
    eph.obs_names = names[keep]
    eph.var_names = [f"f{i}" for i in range(n_feat)]
    input_mb = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes + eph.X.nbytes) / 2**20
    return md.MuData({"rna": rna, "ephys": eph}), input_mb


def one(n: int, steps: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from multiviz.models import CoupledAutoencoder

    mdata, input_mb = _data(n)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0, c0 = time.perf_counter(), time.process_time()
    model = CoupledAutoencoder(mdata, lam=1.0)
    model.train(max_epochs=1, steps_per_epoch=steps, enable_progress_bar=False)
    model.get_latent_representation()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "n_cells": n,
        "input_sparse_mb": input_mb,
        "rss_after_data_mb": base,
        "peak_rss_mb": peak,
        "peak_over_input": peak / input_mb,
        "model_peak_minus_data_mb": peak - base,
        "steps": steps,
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--label", default="after")
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--one", type=int, default=None)
    args = ap.parse_args()
    if args.one is not None:
        print(json.dumps(one(args.one, args.steps)))
        return
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = {}
    for n in args.sizes:
        cmd = [sys.executable, __file__, "--one", str(n), "--steps", str(args.steps)]
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
        res[str(n)] = json.loads(out.stdout.strip().splitlines()[-1])
        print(n, res[str(n)], flush=True)
    data = json.loads(OUT.read_text()) if OUT.exists() else {}
    data[args.label] = {
        "sizes": res,
        "loadavg": os.getloadavg(),
        "threads": 1,
        "data": "RNA 2000 genes ~10 % non-zero (sparse CSR) + 50 dense features, 30 % RNA-only",
    }
    if "before" in data and "after" in data:
        data["peak_ratio_after_over_before"] = {
            n: data["after"]["sizes"][n]["peak_rss_mb"] / data["before"]["sizes"][n]["peak_rss_mb"]
            for n in data["after"]["sizes"]
            if n in data["before"]["sizes"]
        }
    OUT.write_text(json.dumps(data, indent=1))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
