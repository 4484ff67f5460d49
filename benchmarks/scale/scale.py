"""Throughput and peak memory from 10k to 1M cells: does every model fit an atlas?

Simulated sparse data: 2,000 genes, a fixed 7 % of the genes non-zero in every cell (drawn
per cell with gene-specific weights), values ``log1p(1 + Poisson)`` as float32 CSR; 10
driver genes carry the signal of the targets. Per model:

- ``sbnn``: RNA -> 20 targets (``SBNN``, no pre-training: its k-means with 1,000 restarts
  is not part of the streaming path and is not timed here), the library's automatic data
  path (device tensors up to 50M cells x genes, streamed above);
- ``coupled``: RNA + 50 features, 30 % of the cells RNA-only (``CoupledAutoencoder``);
- ``sivae`` and its reference ``scvi`` (``benchmarks/scale/_scale_sivae.py``): integer counts
  ``1 + Poisson`` (no log1p) for the NB likelihoods, also at 20,000 genes (``--genes``);
  ``--compare N`` times both interleaved in one process, ``--flops`` counts siVAE's FLOPs
  per step at 28,000 genes and projects a 1.3 M-cell fit on one H100, ``--backed N``
  trains siVAE for one epoch on an ``N``-cell ``.h5ad`` opened with ``backed="r"``.

Each (model, size) runs in its own process (``--worker MODEL N``) so ``ru_maxrss`` is that
size's peak; every process uses one torch thread. A fixed number of training steps runs
(not a full fit); cells/s is measured on the last (steady-state) epoch. The parts land in
``benchmarks/results/scale_parts/`` and are assembled into ``scale.json``. A model is added
by one ``run_<model>(X, drivers, steps)`` function registered in :data:`MODELS`.

Usage: python benchmarks/scale/scale.py [--sizes 10000 100000 1000000] [--models sbnn coupled]
       [--steps 200] [--genes 2000] [--compare 100000] [--flops] [--backed 1000000]
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
from _common import RESULTS, hardware  # noqa: E402

PARTS = RESULTS / "scale_parts"
N_GENES, DENSITY, N_DRIVERS = 2000, 0.07, 10


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def simulate(n: int, seed: int = 0, chunk: int = 2_000, n_genes: int = N_GENES, counts=False):
    """``(X, drivers)``: CSR log-counts built in place (no second copy) and driver columns.

    ``counts=True``: the integer counts ``1 + Poisson`` instead of ``log1p(1 + Poisson)``.
    """
    import numpy as np
    from scipy import sparse

    rng = np.random.default_rng(seed)
    k = int(round(DENSITY * n_genes))
    weight = rng.lognormal(0.0, 1.0, n_genes).astype(np.float32)
    mean = (0.5 + 3.0 * weight / weight.max()).astype(np.float32)
    driver_cols = np.argsort(-weight)[:N_DRIVERS]
    data = np.empty(n * k, np.float32)
    indices = np.empty(n * k, np.int32)
    for start in range(0, n, chunk):
        c = min(chunk, n - start)
        keys = rng.exponential(size=(c, n_genes)).astype(np.float32) / weight
        cols = np.sort(np.argpartition(keys, k, axis=1)[:, :k], axis=1)
        vals = 1.0 + rng.poisson(mean[cols])
        vals = (vals if counts else np.log1p(vals)).astype(np.float32)
        data[start * k : (start + c) * k] = vals.ravel()
        indices[start * k : (start + c) * k] = cols.ravel()
    indptr = np.arange(0, (n + 1) * k, k, dtype=np.int64)
    X = sparse.csr_matrix((data, indices, indptr), shape=(n, n_genes))
    drivers = X[:, driver_cols].toarray()
    return X, drivers


def _targets(drivers, q: int, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    d = (drivers - drivers.mean(0)) / drivers.std(0)
    Y = np.tanh(d @ rng.normal(size=(d.shape[1], q)) / 2) + 0.3 * rng.normal(size=(len(d), q))
    return ((Y - Y.mean(0)) / Y.std(0)).astype(np.float32)


def _names(n: int, prefix: str):
    import numpy as np

    return np.char.add(prefix, np.arange(n).astype(str))


def run_sbnn(X, drivers, steps: int) -> dict:
    """sBNN RNA -> 20 targets: ``steps`` minibatches per epoch, 2 lasso + 1 pruned epoch."""
    import anndata as ad
    import mudata as md

    from multiviz.models import SBNN
    from multiviz.models.sbnn._data import STREAM_ABOVE

    n = X.shape[0]
    cells = _names(n, "c")
    rna, y = ad.AnnData(X), ad.AnnData(_targets(drivers, 20, 1))
    rna.obs_names = y.obs_names = cells
    mdata = md.MuData({"rna": rna, "y": y})
    rss_mudata = _rss_mb()
    SBNN.setup_mudata(mdata, x="rna", y="y")
    model = SBNN(mdata, n_latent=2, random_state=0)
    SBNN._max_steps_per_epoch = steps
    model.train(pretrain=False, no_pretrain_epochs=2, pruned_epochs=1, enable_progress_bar=False)
    plan = model.trainer.lightning_module
    batch = plan.batch_size
    return {
        "peak_rss_after_mudata_mb": round(rss_mudata, 1),
        "data_path": "streamed" if plan._rows.streamed else "device",
        "stream_above_cells_x_genes": STREAM_ABOVE,
        "batch_size": batch,
        "steps_per_epoch": steps,
        "epoch_seconds": [round(s, 3) for s in plan.epoch_seconds],
        "cells_per_s": round(steps * batch / plan.epoch_seconds[1], 1),
        "r2_train": round(float(model.r2_train_), 4),
    }


def run_coupled(X, drivers, steps: int) -> dict:
    """Coupled AE, RNA + 50 features (30 % RNA-only): 2 epochs of ``steps`` steps."""
    import anndata as ad
    import mudata as md
    import numpy as np
    from lightning.pytorch.callbacks import Callback

    from multiviz.models import CoupledAutoencoder

    class Timer(Callback):
        def __init__(self):
            self.seconds: list[float] = []

        def on_train_epoch_start(self, trainer, pl_module):
            self._t0 = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module):
            self.seconds.append(time.perf_counter() - self._t0)

    n = X.shape[0]
    cells = _names(n, "c")
    keep = np.random.default_rng(2).random(n) >= 0.3
    rna, feat = ad.AnnData(X), ad.AnnData(_targets(drivers[keep], 50, 3))
    rna.obs_names, feat.obs_names = cells, cells[keep]
    mdata = md.MuData({"rna": rna, "feat": feat})
    rss_mudata = _rss_mb()
    t0 = time.perf_counter()
    model = CoupledAutoencoder(mdata, modalities=("rna", "feat"), random_state=0)
    setup_s = time.perf_counter() - t0
    rss_after_setup = _rss_mb()
    timer = Timer()
    batch = 200
    model.train(
        max_epochs=2,
        steps_per_epoch=steps,
        batch_size=batch,
        accelerator="cpu",
        enable_progress_bar=False,
        callbacks=[timer],
    )
    return {
        "batch_size": batch,
        "steps_per_epoch": steps,
        "peak_rss_after_mudata_mb": round(rss_mudata, 1),
        "setup_seconds": round(setup_s, 2),
        "peak_rss_after_setup_mb": round(rss_after_setup, 1),
        "epoch_seconds": [round(s, 3) for s in timer.seconds],
        "cells_per_s": round(steps * batch / timer.seconds[-1], 1),
        "paired_fraction": round(float(keep.mean()), 3),
    }


import _scale_backed as bk  # noqa: E402
import _scale_sivae as sv  # noqa: E402
from _scale_sivae import run_scvi, run_sivae  # noqa: E402

MODELS = {"sbnn": run_sbnn, "coupled": run_coupled, "sivae": run_sivae, "scvi": run_scvi}


def worker(model: str, n: int, steps: int, n_genes: int = N_GENES) -> dict:
    """One (model, size) in this process: simulate, train, report memory and time."""
    import torch

    torch.set_num_threads(1)
    import scvi  # noqa: F401

    import multiviz.models  # noqa: F401  (imports, scvi-tools and Lightning: the baseline)

    rss_import = _rss_mb()
    t0, c0, load0 = time.perf_counter(), time.process_time(), os.getloadavg()
    X, drivers = simulate(n, n_genes=n_genes, counts=getattr(MODELS[model], "counts", False))
    sim_s = time.perf_counter() - t0
    input_mb = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20
    rss_data = _rss_mb()
    t1, c1 = time.perf_counter(), time.process_time()
    out = MODELS[model](X, drivers, steps)
    peak = _rss_mb()
    out.update(
        {
            "n_cells": n,
            "n_genes": n_genes,
            "density": DENSITY,
            "input_sparse_mb": round(input_mb, 1),
            "rss_after_import_mb": round(rss_import, 1),
            "peak_rss_after_data_mb": round(rss_data, 1),
            "peak_rss_mb": round(peak, 1),
            "peak_minus_input_mb": round(peak - input_mb, 1),
            "peak_over_input": round(peak / input_mb, 2),
            "simulate_seconds": round(sim_s, 1),
            "fit_wall_seconds": round(time.perf_counter() - t1, 1),
            "fit_cpu_seconds": round(time.process_time() - c1, 1),
            "total_cpu_seconds": round(time.process_time() - c0, 1),
            "loadavg_start": [round(v, 2) for v in load0],
            "loadavg_end": [round(v, 2) for v in os.getloadavg()],
            "torch_threads": torch.get_num_threads(),
        }
    )
    return out


def special(kind: str, n: int, steps: int) -> dict:
    """The siVAE-only runs, each in its own process: compare, flops, write_h5ad, backed."""
    import torch

    torch.set_num_threads(1)
    import scvi  # noqa: F401

    import multiviz.models  # noqa: F401

    rss_import = _rss_mb()
    t0, c0, load0 = time.perf_counter(), time.process_time(), os.getloadavg()
    if kind == "compare":
        X, _ = simulate(n, counts=True)
        out = {"n_cells": n, "n_genes": N_GENES, **sv.compare(X, steps)}
    elif kind == "flops":
        out = sv.flops(n, sim=lambda m: simulate(m, n_genes=n, counts=True))
    elif kind == "write_h5ad":
        X, _ = simulate(n, counts=True)
        input_mb = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20
        out = {"write_seconds": round(bk.write_h5ad(BACKED_PATH(n), X), 1)}
        out["input_sparse_mb"] = round(input_mb, 1)
    else:  # backed
        out = bk.backed(BACKED_PATH(n))
    out.update(
        {
            "rss_after_import_mb": round(rss_import, 1),
            "peak_rss_mb": round(_rss_mb(), 1),
            "wall_seconds": round(time.perf_counter() - t0, 1),
            "cpu_seconds": round(time.process_time() - c0, 1),
            "loadavg_start": [round(v, 2) for v in load0],
            "loadavg_end": [round(v, 2) for v in os.getloadavg()],
            "torch_threads": torch.get_num_threads(),
        }
    )
    return out


SPECIAL = ("compare", "flops", "write_h5ad", "backed")


def BACKED_PATH(n: int) -> str:  # noqa: N802
    """Where the backed run's ``.h5ad`` is written (a temporary file, not committed)."""
    import tempfile

    return str(Path(tempfile.gettempdir()) / f"multiviz_scale_{n}.h5ad")


def _input_rss(part: dict) -> float:
    """RSS the input objects took: after building the MuData minus after the imports."""
    return part["peak_rss_after_mudata_mb"] - part["rss_after_import_mb"]


def assemble() -> dict:
    """``scale.json`` from every part found, with the per-model summary keys."""
    import torch

    torch.set_num_threads(1)  # as in every worker
    res: dict = {
        "hardware": hardware("cpu", parts_command="python benchmarks/scale/scale.py --steps 200"),
        "torch_threads": 1,
    }
    loads = []
    for model in MODELS:
        parts, other_genes = {}, {}
        for f in sorted(PARTS.glob(f"{model}_*.json")):
            part = json.loads(f.read_text())
            if part.get("n_genes", N_GENES) != N_GENES:
                other_genes[f"{part['n_cells']}x{part['n_genes']}"] = part
            else:
                parts[str(part["n_cells"])] = part
            loads.append(part["loadavg_start"])
        entry: dict = {"sizes": dict(sorted(parts.items(), key=lambda kv: int(kv[0])))}
        if other_genes:
            entry["sizes_other_genes"] = other_genes
        big, mid = parts.get("1000000"), parts.get("100000")
        entry["peak_ratio_1m_over_100k"] = None
        if big and mid:
            # the input in memory: RSS growth from building the data objects (CSR + names + targets)
            excl = [p["peak_rss_mb"] - _input_rss(p) for p in (big, mid)]
            entry["peak_ratio_1m_over_100k"] = round(excl[0] / excl[1], 3)
            entry["peak_minus_input_objects_mb_1m_100k"] = [round(e, 1) for e in excl]
            entry["peak_ratio_1m_over_100k_minus_csr_bytes"] = round(
                big["peak_minus_input_mb"] / mid["peak_minus_input_mb"], 3
            )
            entry["peak_ratio_1m_over_100k_including_input"] = round(
                big["peak_rss_mb"] / mid["peak_rss_mb"], 3
            )
            grow = [p["peak_rss_mb"] - p["peak_rss_after_mudata_mb"] for p in (big, mid)]
            entry["fit_growth_mb_1m_100k"] = [round(g, 1) for g in grow]
        entry["cells_per_s"] = {k: v["cells_per_s"] for k, v in entry["sizes"].items()}
        res[model] = entry
    if any(PARTS.glob("sivae*.json")):
        res["sivae"].update(sv.summary(PARTS, res))
    res["loadavg"] = loads
    before = {}
    for f in sorted((PARTS / "before_memory_fixes").glob("*.json")):
        part = json.loads(f.read_text())
        before[f.stem] = {k: part[k] for k in ("peak_rss_mb", "peak_minus_input_mb")}
    if before:
        res["before_memory_fixes"] = {
            "note": "same script and data, measured earlier in this round, before the sBNN "
            "wrote its predictions into preallocated arrays and before the coupled model's "
            "stack stopped copying in-order sparse modalities / summed its noise scale in chunks",
            "parts": before,
        }
    res["notes"] = (
        "Peak RSS is ru_maxrss of a process that simulated, built the MuData, set up and "
        "trained one size. peak_ratio_1m_over_100k (target <= 2) = (peak - input) at "
        "1M / (peak - input) at 100k, the input measured in memory: the RSS growth from "
        "simulating the CSR and building the AnnData/MuData (cell names, targets). "
        "peak_ratio_1m_over_100k_minus_csr_bytes subtracts only the CSR arrays (data, indices, "
        "indptr) instead. fit_growth = peak - RSS once the MuData existed. cells/s: steps x "
        "batch / seconds of the last epoch (steady state), one torch thread on a shared 2-core "
        "CPU with two other benchmark jobs running (see loadavg); no GPU in this session. sBNN: "
        "no pre-training (its k-means with 1,000 restarts is not timed); data path automatic "
        "(device tensors at 10k, streamed at 100k and 1M). Coupled: the remaining O(cells) "
        "term is the model's sparse stack, an hstack copy of all modalities (~1.3x the input)."
    )
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--worker", nargs=2, metavar=("MODEL", "N"))
    ap.add_argument("--assemble-only", action="store_true")
    ap.add_argument("--genes", type=int, default=N_GENES, help="genes (sivae, scvi)")
    ap.add_argument("--compare", type=int, metavar="N", help="siVAE vs SCVI interleaved")
    ap.add_argument("--flops", type=int, nargs="?", const=28_000, metavar="GENES")
    ap.add_argument("--backed", type=int, metavar="N", help="siVAE epoch on a backed .h5ad")
    args = ap.parse_args()
    if args.worker:
        kind, n = args.worker[0], int(args.worker[1])
        res = (
            special(kind, n, args.steps)
            if kind in SPECIAL
            else worker(kind, n, args.steps, args.genes)
        )
        print(json.dumps(res))
        return
    PARTS.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    runs = []
    if args.compare:
        runs.append(("compare", args.compare, f"sivae-vs-scvi_{args.compare}"))
    if args.flops:
        runs.append(("flops", args.flops, f"sivae-flops_{args.flops}"))
    if args.backed:
        if not Path(BACKED_PATH(args.backed)).exists():
            runs.append(("write_h5ad", args.backed, f"sivae-backed-write_{args.backed}"))
        runs.append(("backed", args.backed, f"sivae-backed_{args.backed}"))
    special_only = bool(runs)
    suffix = "" if args.genes == N_GENES else f"x{args.genes}"
    for model in [] if args.assemble_only or special_only else args.models:
        runs += [(model, n, f"{model}_{n}{suffix}") for n in args.sizes]
    for kind, n, name in runs:
        cmd = [sys.executable, __file__, "--worker", kind, str(n), "--steps", str(args.steps)]
        cmd += ["--genes", str(args.genes)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            print(f"{kind} {n}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        part = json.loads(proc.stdout.strip().splitlines()[-1])
        if kind not in ("sbnn", "coupled"):
            part["command"] = " ".join(["python benchmarks/scale/scale.py", *sys.argv[1:]])
        (PARTS / f"{name}.json").write_text(json.dumps(part, indent=1) + "\n")
        print(name, part["peak_rss_mb"], part.get("cells_per_s", ""), flush=True)
    (RESULTS / "scale.json").write_text(json.dumps(assemble(), indent=1) + "\n")


if __name__ == "__main__":
    main()
