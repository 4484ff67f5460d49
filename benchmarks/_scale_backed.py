"""siVAE on a backed (on-disk) ``.h5ad``: one epoch of each step, for ``scale.py --backed``."""

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


def backed(path: str) -> dict:
    """siVAE for one epoch of each step on ``path`` opened with ``backed="r"``.

    A smaller network (:data:`BACKED_HIDDEN`) and minibatch (:data:`BACKED_BATCH` cells in
    steps 1 and 3) than the timed runs keep one epoch over 1 M cells within minutes on one
    CPU thread; memory does not depend on them beyond the minibatch.
    """
    import anndata as ad

    from multiviz.models import SIVAE

    rss0 = _rss_mb()
    t0, c0 = time.perf_counter(), time.process_time()
    adata = ad.read_h5ad(path, backed="r")
    SIVAE.setup_anndata(adata)
    model = SIVAE(adata, likelihood="nb", n_hidden=BACKED_HIDDEN, random_state=0)
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    model._prepare_feature_side()
    feat_s = time.perf_counter() - t1
    timer = _timer()
    model.train(
        max_epochs=1,
        batch_size=BACKED_BATCH,
        joint_batch_size=BACKED_BATCH,
        accelerator="cpu",
        enable_progress_bar=False,
        callbacks=[timer],
    )
    z = model.get_latent_representation(indices=np.arange(2000))
    return {
        "backed": True,
        "x_type": type(adata.X).__name__,
        "n_cells": int(adata.n_obs),
        "n_genes": int(adata.n_vars),
        "n_hidden": list(BACKED_HIDDEN),
        "batch_size": BACKED_BATCH,
        "epochs_per_step": [1, 1, 1],
        "steps_per_fit": [len(f["t"]) for f in timer.fits],
        "fit_seconds_per_step": [round(f["t1"] - f["t0"], 1) for f in timer.fits],
        "setup_and_check_seconds": round(setup_s, 1),
        "feature_input_seconds": round(feat_s, 1),
        "seconds": round(time.perf_counter() - t0, 1),
        "cpu_seconds": round(time.process_time() - c0, 1),
        "rss_after_import_mb": round(rss0, 1),
        "peak_rss_mb": round(_rss_mb(), 1),
        "latent_finite": bool(np.isfinite(z).all()),
        "train_loss_per_step": {
            k: round(float(v["train_loss"][-1]), 3) for k, v in model.phase_history_.items()
        },
    }
