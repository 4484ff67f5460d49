"""siVAE and SCVI rows of ``benchmarks/scale/scale.py``, kept apart to keep files small.

- :func:`run_sivae`: siVAE (``likelihood="nb"`` on integer counts, the paper-size network
  1024-512-128, 2-d) for ``steps`` optimisation steps of each of its three steps (step 2
  has only ``genes / 32`` gene minibatches per epoch), joint step at the default schedule's
  512 cells per step; the feature-wise input (randomised SVD of the sparse Xᵀ of at most
  20,000 training cells) is built and timed first.
- :func:`run_scvi`: ``scvi.model.SCVI`` with its defaults, ``steps`` steps of 128 cells.
- :func:`compare`: both on the same data in one process, interleaved (``rounds`` x (siVAE
  steps 1 and 3, SCVI, then siVAE's joint step with 512-gene minibatches of the feature
  branch)), wall and process CPU time per step, load averages.
- :func:`flops`: FLOPs of one training step of each siVAE step (``FlopCounterMode``), the
  default schedule's steps at 1.3 M cells, and the projected H100 hours.

Every timing is steady state: the seconds between the end of step ``steps // 4`` and the
end of the last step (data loading included), one torch thread.
"""

from __future__ import annotations

import time

import numpy as np

#: Fraction of an H100's dense FP32 peak assumed sustained (see :func:`flops`).
H100_FP32_TFLOPS = 67.0
H100_SUSTAINED_FRACTION = 0.25
#: Assumed fixed cost per optimisation step on a GPU (Lightning's loop, kernel launches, Adam):
#: the lean plan's loop overhead measured 1.4 ms per step on this CPU; 10 ms is a safe margin.
GPU_STEP_OVERHEAD_S = 0.010


def _timer():
    from lightning.pytorch.callbacks import Callback

    class StepTimer(Callback):
        """Wall and CPU timestamps at the end of every training step, per fit."""

        def __init__(self):
            self.fits: list[dict] = []

        def on_fit_start(self, trainer, pl_module):
            phase = getattr(pl_module, "phase", 0)
            self.fits.append({"phase": phase, "t": [], "c": [], "t0": time.perf_counter()})

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if pl_module.device.type == "cuda":  # time finished steps, not queued kernels
                import torch

                torch.cuda.synchronize(pl_module.device)
            self.fits[-1]["t"].append(time.perf_counter())
            self.fits[-1]["c"].append(time.process_time())

        def on_fit_end(self, trainer, pl_module):
            self.fits[-1]["t1"] = time.perf_counter()

    return StepTimer()


def _steady(fit: dict, per_step: int) -> dict:
    """Items/s over the last three quarters of the steps of one fit (wall and CPU)."""
    t, c = fit["t"], fit["c"]
    s0 = len(t) // 4
    n = len(t) - 1 - s0
    wall, cpu = t[-1] - t[s0], c[-1] - c[s0]
    return {
        "steps": len(t),
        "timed_steps": n,
        "per_step": per_step,
        "seconds_per_step": round(wall / n, 5),
        "cpu_seconds_per_step": round(cpu / n, 5),
        "items_per_s": round(n * per_step / wall, 1),
        "fit_seconds": round(fit["t1"] - fit["t0"], 2),
    }


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _sivae_model(X, n_hidden=(1024, 512, 128)):
    import anndata as ad

    from multiviz.models import SIVAE

    adata = ad.AnnData(X)
    rss = _rss_mb()
    SIVAE.setup_anndata(adata)
    return SIVAE(adata, likelihood="nb", n_hidden=n_hidden, random_state=0), rss


#: Where :func:`compare` and the runs train; ``benchmarks/gpu_check.py`` sets ``"gpu"`` and
#: a precision.
TRAIN_ON = {"accelerator": "cpu"}


def _train_kw(steps: int, timer) -> dict:
    return {
        "limit_train_batches": steps,
        "limit_val_batches": 0,
        "enable_progress_bar": False,
        "callbacks": [timer],
        **TRAIN_ON,
    }


def run_sivae(X, drivers, steps: int) -> dict:
    """siVAE's three steps, ``steps`` steps each, after the timed feature-input build."""
    from multiviz.models.sivae._feature_input import MAX_PCA_CELLS
    from multiviz.models.sivae._schedule import GENE_BATCH, JOINT_BATCH

    t0 = time.perf_counter()
    model, rss_adata = _sivae_model(X)
    setup_s = time.perf_counter() - t0
    t1, c1 = time.perf_counter(), time.process_time()
    model._prepare_feature_side()  # library statistics + randomised SVD of Xᵀ
    feat_s, feat_cpu = time.perf_counter() - t1, time.process_time() - c1
    timer = _timer()
    model.train(
        max_epochs=1,
        batch_size=128,
        joint_batch_size=JOINT_BATCH,
        **_train_kw(steps, timer),
    )
    f1, f2, f3 = timer.fits
    out = {
        "peak_rss_after_mudata_mb": round(rss_adata, 1),  # the AnnData (the name as elsewhere)
        "likelihood": "nb",
        "n_hidden": [1024, 512, 128],
        "n_latent": 2,
        "setup_seconds": round(setup_s, 2),
        "feature_input_seconds": round(feat_s, 2),
        "feature_input_cpu_seconds": round(feat_cpu, 2),
        "feature_input_cells": int(min(len(model._train_idx), MAX_PCA_CELLS)),
        "gene_batch_size_joint": model.module.gene_batch_size,
        "step1_cell_pretrain": _steady(f1, 128),
        "step2_feature_pretrain_genes": _steady(f2, GENE_BATCH),
        "step3_joint": _steady(f3, JOINT_BATCH),
        # between steps 2 and 3: the least-squares start of the intercepts, a pass over all cells
        "interp_init_seconds": round(f3["t0"] - f2["t1"], 2),
        "batch_size": 128,
        "joint_batch_size": JOINT_BATCH,
        "steps_per_epoch": steps,
    }
    out["cells_per_s"] = out["step3_joint"]["items_per_s"]
    out["cells_per_s_step1"] = out["step1_cell_pretrain"]["items_per_s"]
    return out


run_sivae.counts = True  # NB likelihood: integer counts


def run_scvi(X, drivers, steps: int) -> dict:
    """``scvi.model.SCVI`` defaults (ZINB, 128 hidden, 10-d), ``steps`` steps of 128 cells."""
    import anndata as ad
    import scvi

    adata = ad.AnnData(X)
    rss_adata = _rss_mb()
    scvi.model.SCVI.setup_anndata(adata)
    model = scvi.model.SCVI(adata)
    timer = _timer()
    model.train(max_epochs=1, batch_size=128, **_train_kw(steps, timer))
    res = _steady(timer.fits[0], 128)
    return {
        "peak_rss_after_mudata_mb": round(rss_adata, 1),
        "scvi_defaults": True,
        "step": res,
        "cells_per_s": res["items_per_s"],
    }


run_scvi.counts = True


def compare(X, steps: int, rounds: int = 3) -> dict:
    """siVAE (steps 1 and 3) and SCVI on the same data, interleaved ``rounds`` times."""
    import os

    import anndata as ad
    import scvi

    from multiviz.models.sivae._schedule import JOINT_BATCH

    sv, _ = _sivae_model(X)
    sv._prepare_feature_side()
    sv.train(max_epochs=0, pretrain_epochs=1, feature_pretrain_epochs=1, **_train_kw(20, _timer()))
    adata = ad.AnnData(X)
    scvi.model.SCVI.setup_anndata(adata)
    sc = scvi.model.SCVI(adata)
    out: dict = {"rounds": []}
    for _ in range(rounds):
        t_sv, t_sc = _timer(), _timer()
        load = os.getloadavg()
        sv.train(
            max_epochs=1,
            pretrain_epochs=1,
            feature_pretrain_epochs=0,
            batch_size=128,
            joint_batch_size=JOINT_BATCH,
            **_train_kw(steps, t_sv),
        )
        sc.train(max_epochs=1, batch_size=128, **_train_kw(steps, t_sc))
        # the joint step again with the feature branch on 512-gene minibatches (an option)
        t_g = _timer()
        all_genes, sv.module.gene_batch_size = sv.module.gene_batch_size, 512
        sv.train(
            max_epochs=1,
            pretrain_epochs=0,
            feature_pretrain_epochs=0,
            joint_batch_size=JOINT_BATCH,
            **_train_kw(steps, t_g),
        )
        sv.module.gene_batch_size = all_genes
        rnd = {
            "sivae_step1": _steady(t_sv.fits[0], 128),
            "sivae_step3_joint": _steady(t_sv.fits[1], JOINT_BATCH),
            "scvi": _steady(t_sc.fits[0], 128),
            "sivae_step3_joint_genes512": _steady(t_g.fits[0], JOINT_BATCH),
            "loadavg_start": [round(v, 2) for v in load],
        }
        scv = rnd["scvi"]
        for key in ("sivae_step1", "sivae_step3_joint", "sivae_step3_joint_genes512"):
            rnd[f"ratio_{key}"] = round(rnd[key]["items_per_s"] / scv["items_per_s"], 3)
            cpu_rate = rnd[key]["per_step"] / rnd[key]["cpu_seconds_per_step"]
            scv_cpu = scv["per_step"] / scv["cpu_seconds_per_step"]
            rnd[f"ratio_cpu_{key}"] = round(cpu_rate / scv_cpu, 3)
        out["rounds"].append(rnd)
    for key in ("ratio_sivae_step1", "ratio_sivae_step3_joint", "ratio_sivae_step3_joint_genes512"):
        for kind in ("", "_cpu"):
            name = key.replace("ratio_", f"ratio{kind}_")
            out[f"median_{name}"] = float(np.median([r[name] for r in out["rounds"]]))
    return out


def flops(n_genes: int = 28_000, n_cells_target: int = 1_300_000, sim=None) -> dict:
    """FLOPs per training step of each siVAE step at ``n_genes``; H100 hours at 1.3 M cells.

    FLOPs are counted by ``torch.utils.flop_counter.FlopCounterMode`` over one forward and
    backward pass (matrix products; Adam's element-wise update is not counted, < 1 % of a
    step). The projection multiplies by the steps of
    :func:`~multiviz.models.sivae._schedule.default_schedule` at 90 % of 1.3 M training
    cells and divides by an assumed sustained throughput of
    ``H100_SUSTAINED_FRACTION`` x 67 TFLOP/s: siVAE trains in FP32 by default (no
    ``precision`` given) and PyTorch leaves TF32 matmuls off, so the FP32 (non-tensor-core)
    peak is the relevant one, and minibatches of 128-512 cells through 1024-wide layers keep
    the GPU far from peak.
    """
    import torch
    from scvi import REGISTRY_KEYS
    from torch.utils.flop_counter import FlopCounterMode

    from multiviz.models.sivae._schedule import GENE_BATCH, JOINT_BATCH, default_schedule

    X, _ = sim(4096)
    model, _ = _sivae_model(X)
    model._prepare_feature_side()
    m = model.module
    m.train()
    per_step: dict = {}
    loader_s: dict = {}
    for phase, batch in ((1, 128), (2, GENE_BATCH), (3, JOINT_BATCH)):
        m.set_phase(phase)
        if phase == 3 and m.gene_batch_size is not None:
            m.refresh_cache()
        if phase == 2:
            idx = torch.arange(batch)
            with FlopCounterMode(display=False) as fc:
                m.feature_pretrain_loss(idx).loss.backward()
        else:
            dl = model._make_data_loader(model.adata, model._train_idx, batch_size=batch)
            it = iter(dl)
            tensors = next(it)
            t0, n_loaded = time.perf_counter(), 0
            for _ in range(3):  # the next minibatches: the per-step host cost of loading
                next(it)
                n_loaded += 1
            loader_s[phase] = (time.perf_counter() - t0) / n_loaded
            with FlopCounterMode(display=False) as fc:
                _, _, out = m(tensors)
                out.loss.backward()
            assert tensors[REGISTRY_KEYS.X_KEY].shape == (batch, n_genes)
        m.zero_grad(set_to_none=True)
        per_step[phase] = int(fc.get_total_flops())
    m.unfreeze()
    sched = default_schedule(int(0.9 * n_cells_target), n_genes)
    steps = [v["steps"] for v in sched.values()]
    total = sum(s * per_step[p] for p, s in zip((1, 2, 3), steps))
    sustained = H100_FP32_TFLOPS * H100_SUSTAINED_FRACTION * 1e12
    compute_h = total / sustained / 3600
    # host side: loading one minibatch (CSR rows -> dense) on one CPU thread, not overlapped
    load_h = (steps[0] * loader_s[1] + steps[2] * loader_s[3]) / 3600
    overhead_h = sum(steps) * GPU_STEP_OVERHEAD_S / 3600
    return {
        "n_genes": n_genes,
        "n_cells": n_cells_target,
        "gene_batch_size_joint": m.gene_batch_size,
        "flops_per_step": {"step1": per_step[1], "step2": per_step[2], "step3": per_step[3]},
        "flops_per_cell_step1": per_step[1] / 128,
        "flops_per_cell_step3": per_step[3] / JOINT_BATCH,
        "default_schedule_steps": steps,
        "total_flops": float(total),
        "assumed_sustained_tflops": H100_FP32_TFLOPS * H100_SUSTAINED_FRACTION,
        "assumption": (
            f"{H100_SUSTAINED_FRACTION:.0%} of the H100 SXM's 67 TFLOP/s dense FP32 peak: the "
            "default fit is FP32 (PyTorch leaves TF32 matmuls off) and its minibatches of "
            "128-512 cells keep the GPU far from peak; bf16-mixed would raise the ceiling to "
            "989 TFLOP/s dense but is not the default"
        ),
        "compute_hours": round(compute_h, 4),
        "minibatch_load_seconds_cpu": {str(k): round(v, 4) for k, v in loader_s.items()},
        "load_hours_one_cpu_thread": round(load_h, 4),
        "step_overhead_hours": round(overhead_h, 4),
        "assumed_step_overhead_seconds": GPU_STEP_OVERHEAD_S,
        "projected_hours": round(compute_h + load_h + overhead_h, 3),
        "projection": "compute_hours + load_hours + step_overhead_hours: FLOPs / assumed "
        "sustained throughput, plus loading every minibatch on one CPU thread without overlap "
        "(conservative: Lightning loads the next minibatch while the GPU computes), plus a "
        "fixed cost per optimisation step; the feature-input SVD and the intercepts' pass "
        "over the cells are not included (seconds to minutes, see feature_input_seconds). "
        "Not measured on a GPU (none in this session).",
    }


def _load(parts_dir, name: str) -> dict | None:
    import json

    f = parts_dir / f"{name}.json"
    return json.loads(f.read_text()) if f.exists() else None


def summary(parts_dir, res: dict) -> dict:
    """The ``sivae`` keys of ``scale.json`` from the parts written by the siVAE runs."""
    out: dict = {}
    sizes = res.get("sivae", {}).get("sizes", {})
    out["feature_input_seconds"] = {k: v["feature_input_seconds"] for k, v in sizes.items()}
    out["feature_input_cpu_seconds"] = {k: v["feature_input_cpu_seconds"] for k, v in sizes.items()}
    out["cells_per_s_step1"] = {k: v["cells_per_s_step1"] for k, v in sizes.items()}
    out["cells_per_cpu_s"] = {  # the joint step per second of process CPU time
        k: round(v["step3_joint"]["per_step"] / v["step3_joint"]["cpu_seconds_per_step"], 1)
        for k, v in sizes.items()
    }
    cmp_ = _load(parts_dir, "sivae-vs-scvi_100000")
    out["throughput_ratio_vs_scvi_100k"] = None
    if cmp_:
        out["throughput_ratio_vs_scvi_100k"] = cmp_["median_ratio_sivae_step3_joint"]
        out["throughput_ratio_vs_scvi_100k_step1"] = cmp_["median_ratio_sivae_step1"]
        out["throughput_ratio_cpu_time_vs_scvi_100k"] = cmp_["median_ratio_cpu_sivae_step3_joint"]
        out["throughput_ratio_cpu_time_vs_scvi_100k_step1"] = cmp_["median_ratio_cpu_sivae_step1"]
        out["throughput_comparison"] = cmp_
        if "median_ratio_sivae_step3_joint_genes512" in cmp_:
            out["throughput_ratio_vs_scvi_100k_joint_genes512"] = cmp_[
                "median_ratio_sivae_step3_joint_genes512"
            ]
            out["throughput_ratio_cpu_time_vs_scvi_100k_joint_genes512"] = cmp_[
                "median_ratio_cpu_sivae_step3_joint_genes512"
            ]
    before = _load(parts_dir / "before_fused_adam", "sivae-vs-scvi_100000")
    if before:
        out["throughput_before_fused_adam"] = {
            "note": "the same --compare run before round 5 (scvi-tools' default Adam update "
            "instead of PyTorch's fused one, and the NB dispersion broadcast to cells x genes "
            "before lgamma); SCVI unchanged",
            "ratio_step3_joint": before["median_ratio_sivae_step3_joint"],
            "ratio_cpu_step3_joint": before["median_ratio_cpu_sivae_step3_joint"],
            "ratio_step1": before["median_ratio_sivae_step1"],
            "ratio_cpu_step1": before["median_ratio_cpu_sivae_step1"],
        }
    fl = _load(parts_dir, "sivae-flops_28000")
    out["h100_projected_hours_1p3m"] = fl["projected_hours"] if fl else None
    if fl:
        out["h100_projection"] = fl
    bk = _load(parts_dir, "sivae-backed_1000000")
    if bk:
        wr = _load(parts_dir, "sivae-backed-write_1000000") or {}
        out["backed_1m"] = {
            **{k: bk[k] for k in ("peak_rss_mb", "seconds", "cpu_seconds", "command")},
            "input_sparse_mb": wr.get("input_sparse_mb"),
            "details": bk,
        }
    out["notes"] = (
        "siVAE (likelihood='nb', 1024-512-128, 2-d) and SCVI (defaults) on integer counts "
        "1 + Poisson from the same simulator (7 % non-zeros). cells_per_s: the joint step "
        "(step 3, the full model, 512 cells per step as in the default schedule); "
        "cells_per_s_step1: step 1 at 128 cells; cells_per_cpu_s: the joint step per second "
        "of process CPU time (the machine was shared by three jobs on 2 cores: wall time per "
        "step was up to 2.3x the CPU time). throughput_ratio_vs_scvi_100k: median over "
        "interleaved rounds in one process of siVAE joint-step cells/s over SCVI cells/s "
        "(wall; the _cpu_time variants use process CPU time). feature_input_seconds: library "
        "statistics plus the randomised SVD of Xᵀ over at most 20,000 training cells. "
        "h100_projected_hours_1p3m: FLOPs counted on one step of each siVAE step at 28,000 "
        "genes x default_schedule steps at 1.3 M cells / an assumed sustained FP32 "
        "throughput, plus minibatch loading measured on one CPU thread (see h100_projection)."
    )
    return out
