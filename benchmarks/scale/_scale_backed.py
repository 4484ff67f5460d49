"""``mv.tl.sivae`` on a backed (on-disk) ``.h5ad``: one epoch of each step, for ``scale.py --backed``."""

from __future__ import annotations

import time

import numpy as np
from _scale_sivae import _rss_mb, _timer

#: Network and minibatches of the backed one-epoch run (memory is the point; see :func:`backed`).
BACKED_HIDDEN = (128, 64)
BACKED_BATCH = 1024


def write_h5ad(path: str, X) -> float:
    """Write counts ``X`` to ``path`` (CSR in the file); seconds taken."""
    import anndata as ad

    t0 = time.perf_counter()
    ad.AnnData(X).write_h5ad(path)
    return time.perf_counter() - t0


def _rss_marks():
    """A Lightning callback noting peak RSS (MB) when each fit starts and ends."""
    from lightning.pytorch.callbacks import Callback

    class RssMarks(Callback):
        def __init__(self):
            self.marks: list[tuple[str, float]] = []

        def on_fit_start(self, trainer, pl_module):
            self.marks.append((f"fit{len(self.marks) // 2 + 1}_start", round(_rss_mb(), 1)))

        def on_fit_end(self, trainer, pl_module):
            self.marks.append((f"fit{len(self.marks) // 2 + 1}_end", round(_rss_mb(), 1)))

    return RssMarks()


def backed(path: str) -> dict:
    """``mv.tl.sivae`` for one epoch of each step on ``path`` opened with ``backed="r"``.

    The user-facing tool end to end: its checks (finite counts, constant genes) read the
    file in row blocks, the model streams minibatches from disk, and the outputs (scores of
    every cell, loadings, per-gene R² twice) are inference passes over all cells. A smaller
    network (:data:`BACKED_HIDDEN`) and larger minibatch (:data:`BACKED_BATCH` cells in
    steps 1 and 3) than the default keep one epoch over 1 M cells within minutes on one
    CPU thread; memory does not depend on them beyond the minibatch.
    """
    import anndata as ad

    import multiviz as mv
    from multiviz.models.sivae._backed import is_backed

    rss0 = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    adata = ad.read_h5ad(path, backed="r")
    open_s = time.perf_counter() - t0
    rss_open = _rss_mb()
    timer, marks = _timer(), _rss_marks()
    mv.tl.sivae(
        adata,
        likelihood="nb",
        n_hidden=BACKED_HIDDEN,
        max_epochs=1,
        pretrain_epochs=1,
        feature_pretrain_epochs=1,
        batch_size=BACKED_BATCH,
        joint_batch_size=BACKED_BATCH,
        accelerator="cpu",
        enable_progress_bar=False,
        random_state=0,
        callbacks=[timer, marks],
    )
    t_end = time.perf_counter()
    z = adata.obsm["X_sivae"]
    res = adata.uns["sivae"]
    return {
        "backed": True,
        "via": "mv.tl.sivae",
        "x_type": type(adata.X).__name__,
        "x_still_on_disk": bool(adata.isbacked and is_backed(adata.X)),
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "likelihood": "nb",
        "n_hidden": list(BACKED_HIDDEN),
        "batch_size": BACKED_BATCH,
        "epochs_per_step": [int(v) for v in res["params"]["epochs"]],
        "steps_per_fit": [len(f["t"]) for f in timer.fits],
        "fit_seconds_per_step": [round(f["t1"] - f["t0"], 1) for f in timer.fits],
        "open_seconds": round(open_s, 1),
        "checks_setup_and_feature_input_seconds": round(timer.fits[0]["t0"] - t0 - open_s, 1),
        "outputs_seconds": round(t_end - timer.fits[-1]["t1"], 1),
        "seconds": round(t_end - t0, 1),
        "cpu_seconds": round(time.process_time() - c0, 1),
        "rss_after_import_mb": round(rss0, 1),
        "peak_rss_after_open_mb": round(rss_open, 1),
        "peak_rss_marks_mb": dict(marks.marks),
        "peak_rss_mb": round(_rss_mb(), 1),
        "scores_shape": list(z.shape),
        "scores_finite": bool(np.isfinite(z).all()),
        "r2_gene": round(float(res["r2_gene"]), 4),
        "r2_linear": round(float(res["r2_linear"]), 4),
        "n_genes_used": int(res["n_genes_used"]),
        "train_loss_per_step": {
            k: round(float(v["train_loss"][-1]), 3) for k, v in res["history_phases"].items()
        },
    }
