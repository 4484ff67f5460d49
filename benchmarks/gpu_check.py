"""The GPU checks in one command -> ``benchmarks/results/gpu_check.json``.

Prepared for a session that is lent a GPU machine (none has been so far): the machine lacks
scvi-tools and the single-cell stack, which travel as wheels (``benchmarks/gpu/README.md``).
Three parts, each on the device and each in float32 and ``precision="bf16-mixed"``:

1. **Fits through ``mv.tl``** on planted-truth simulations (``mv.datasets.simulate_patchseq``):
   ``mv.tl.sbnn`` (1,000 cells, 300 genes, 10 planted drivers; the demo's short schedule),
   ``mv.tl.coupled_autoencoder`` (RNA + ephys, 20 % of cells held out and predicted across
   modalities) and ``mv.tl.sivae`` (5,000 cells x 2,000 genes, NB likelihood, paper network,
   k-NN accuracy of the 2-d latent on held-out cells' types). Recorded: seconds, the quality
   against planted truth, and whether every output written is float32 and finite.
2. **Host synchronisations** during each fit: ``torch.cuda.set_sync_debug_mode("warn")``
   makes every synchronising CUDA call warn; the count per optimisation step and the code
   lines that caused them are recorded (the hot path should have none).
3. **Throughput**: siVAE's steps 1 and 3 against SCVI on 100,000 x 2,000 simulated counts,
   interleaved in one process (``benchmarks/scale/_scale_sivae.py::compare``), cells/s per step.

Usage (about 5 minutes on an H100): ``python benchmarks/gpu_check.py``. A smoke test of the
script on a CPU: ``python benchmarks/gpu_check.py --device cpu --quick --out /tmp/g.json``.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch

import multiviz as mv

HERE = Path(__file__).resolve().parent
PRECISIONS = (None, "bf16-mixed")


def _outputs_ok(*arrays) -> bool:
    return all(
        np.asarray(a).dtype == np.float32 and np.isfinite(np.asarray(a)).all() for a in arrays
    )


class _SyncCounter:
    """Count synchronising CUDA calls (``set_sync_debug_mode``) while the block runs."""

    def __enter__(self):
        if torch.cuda.is_available():
            torch.cuda.set_sync_debug_mode("warn")
        self._catch = warnings.catch_warnings(record=True)
        self.records = self._catch.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *exc):
        if torch.cuda.is_available():
            torch.cuda.set_sync_debug_mode(0)
        self._catch.__exit__(*exc)
        syncs = [r for r in self.records if "synchroniz" in str(r.message)]
        where: dict[str, int] = {}
        for r in syncs:
            key = f"{Path(r.filename).name}:{r.lineno}"
            where[key] = where.get(key, 0) + 1
        self.n = len(syncs)
        self.where = dict(sorted(where.items(), key=lambda kv: -kv[1])[:10])


def _timed(fn) -> tuple[float, _SyncCounter]:
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    with _SyncCounter() as sync:
        fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t0, sync


def check_sbnn(acc: str, precision, quick: bool) -> dict:
    from multiviz._demo import QUICK_SCHEDULE

    mdata = mv.datasets.simulate_patchseq(n_cells=1000, n_genes=500, random_state=0)
    drivers = set(mdata.uns["simulation"]["drivers"])
    mv.pp.prepare_paired(mdata, n_top_genes=300)
    kw = {"precision": precision} if precision else {}
    seconds, sync = _timed(
        lambda: mv.tl.sbnn(
            mdata,
            n_genes=len(drivers),
            accelerator=acc,
            enable_progress_bar=False,
            **kw,
            **QUICK_SCHEDULE,
        )
    )
    genes = {str(g) for g in mdata.uns["sbnn"]["selected_genes"]}
    return {
        "seconds": round(seconds, 1),
        "drivers_found": len(genes & drivers),
        "n_drivers": len(drivers),
        "r2_train": round(float(mdata.uns["sbnn"]["r2_train"]), 3),
        "outputs_float32_finite": _outputs_ok(mdata.obsm["X_sbnn"]),
        "sync_calls": sync.n,
        "sync_where": sync.where,
    }


def check_coupled(acc: str, precision, quick: bool) -> dict:
    import anndata as ad
    import mudata as md

    sim = mv.datasets.simulate_patchseq(n_cells=2000, n_genes=500, random_state=0)
    mv.pp.prepare_paired(sim, n_top_genes=300)
    test = np.zeros(sim.n_obs, bool)
    test[::5] = True  # these cells keep only their ephys; their RNA is predicted from it
    names, X = sim.obs_names.to_numpy(), np.asarray(sim["rna"].X)
    truth = X[test]
    rna = ad.AnnData(X[~test].copy())
    rna.obs_names, rna.var_names = names[~test], sim["rna"].var_names
    eph = ad.AnnData(np.asarray(sim["ephys"].X).copy())
    eph.obs_names, eph.var_names = names, sim["ephys"].var_names
    mdata = md.MuData({"rna": rna, "ephys": eph})
    epochs = 10 if quick else None
    seconds, sync = _timed(
        lambda: mv.tl.coupled_autoencoder(
            mdata,
            accelerator=acc,
            precision=precision,
            max_epochs=epochs,
            enable_progress_bar=False,
            random_state=0,
        )
    )
    mv.tl.cross_modal_predict(mdata, source="ephys", target="rna")
    pred = mdata.obsm["cae_from_ephys_rna"][mdata.obs_names.get_indexer(names[test])]
    mean = rna.X.mean(axis=0)
    return {
        "seconds": round(seconds, 1),
        "held_out_r2_rna_from_ephys": round(
            float(mv.metrics.r2_score(truth, pred, train_mean=mean)), 3
        ),
        "outputs_float32_finite": _outputs_ok(mdata.obsm["X_cae_ephys"], pred),
        "sync_calls": sync.n,
        "sync_where": sync.where,
    }


def check_sivae(acc: str, precision, quick: bool) -> dict:
    sim = mv.datasets.simulate_patchseq(
        n_cells=1000 if quick else 5000,
        n_genes=2000,
        n_types=10,
        marker_fraction=0.02,
        theta=2.0,
        random_state=0,
    )
    adata = sim["rna"].copy()
    adata.X = adata.layers["counts"] if "counts" in adata.layers else adata.X
    types = np.asarray(sim.obs["cell_type"] if "cell_type" in sim.obs else adata.obs["cell_type"])
    rng = np.random.default_rng(0)
    test = np.zeros(adata.n_obs, bool)
    test[rng.choice(adata.n_obs, adata.n_obs // 5, replace=False)] = True
    train = adata[~test].copy()
    kw = {"max_epochs": 3, "pretrain_epochs": 3, "feature_pretrain_epochs": 3} if quick else {}
    box = {}
    seconds, sync = _timed(
        lambda: box.setdefault(
            "model",
            mv.tl.sivae(
                train,
                likelihood="nb",
                accelerator=acc,
                precision=precision,
                enable_progress_bar=False,
                return_model=True,
                random_state=0,
                **kw,
            ),
        )
    )
    z_test = box["model"].get_latent_representation(adata[test].copy())
    knn = mv.metrics.knn_accuracy(train.obsm["X_sivae"], types[~test], z_test, types[test])
    return {
        "seconds": round(seconds, 1),
        "knn_held_out": round(float(knn), 3),
        "outputs_float32_finite": _outputs_ok(train.obsm["X_sivae"], train.varm["sivae_loadings"]),
        "sync_calls": sync.n,
        "sync_where": sync.where,
    }


def throughput(acc: str, precision, quick: bool) -> dict:
    from _common import use_groups

    use_groups("scale")  # benchmarks/scale/: scale.py and its siVAE/SCVI rows
    import _scale_sivae as sv
    from scale import simulate

    sv.TRAIN_ON = {"accelerator": acc, **({"precision": precision} if precision else {})}
    X, _ = simulate(10_000 if quick else 100_000, counts=True)
    return sv.compare(X, 20 if quick else 200, rounds=1 if quick else 3)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"])
    ap.add_argument("--quick", action="store_true", help="small sizes: a smoke test of the script")
    ap.add_argument("--parts", nargs="+", default=["sbnn", "coupled", "sivae", "throughput"])
    ap.add_argument("--out", type=Path, default=HERE / "results" / "gpu_check.json")
    args = ap.parse_args()
    import sys

    sys.path.insert(0, str(HERE))
    from _common import hardware

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --device cpu for a smoke test")
    acc = "gpu" if args.device == "cuda" else "cpu"
    if acc == "cpu":
        torch.set_num_threads(1)
    checks = {
        "sbnn": check_sbnn,
        "coupled": check_coupled,
        "sivae": check_sivae,
        "throughput": throughput,
    }
    res: dict = {"hardware": hardware(args.device), "quick": args.quick}
    for part in args.parts:
        for precision in PRECISIONS:
            name = f"{part}_{precision or 'float32'}"
            t0 = time.perf_counter()
            try:
                res[name] = checks[part](acc, precision, args.quick)
            except Exception as err:  # recorded: one failing part must not hide the others
                res[name] = {"error": f"{type(err).__name__}: {err}"}
            res[name]["wall_seconds"] = round(time.perf_counter() - t0, 1)
            print(name, json.dumps(res[name])[:400], flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(res, indent=1, default=str))


if __name__ == "__main__":
    main()
