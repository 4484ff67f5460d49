"""The Lightning runs of one :meth:`SBNN.train <multiviz.models.SBNN.train>` and its outcome checks."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import torch
from scvi.train import TrainRunner

from ... import _logging as logg
from ._data import fit_epochs, forward_all, phase_fits
from ._datamodules import EpochDataModule, StepDataModule

_QUIET = (
    ".*configure_optimizers.*",
    ".*num_workers.*",
    ".*LightningModule.*optimizer.*",
    ".*validation_step.*",
    ".*log_every_n_steps.*",
)
"""Lightning warnings that do not apply to the plan's own epoch loop."""


def run_phases(
    model,
    training_plan,
    phases,
    *,
    what: str,
    stepwise: bool,
    strategy,
    precision,
    accelerator: str,
    devices,
    progress: bool,
) -> None:
    """Train every phase: one Lightning fit (one per phase with DDP, ``stepwise``)."""
    from ...train._progress import progress_callbacks

    def label(plan=training_plan) -> str:
        k = min(max(plan._phase_idx, 0), len(plan.phases) - 1)
        return f"{what} {plan.phases[k].name} ({k + 1}/{len(plan.phases)})"

    for offset, n_steps in phase_fits(training_plan, phases) if stepwise else [(0, None)]:
        training_plan._epoch_offset = offset
        extra = {"use_distributed_sampler": False}
        if stepwise:
            extra["strategy"] = strategy
        if precision is not None:
            extra["precision"] = precision
        runner = TrainRunner(
            model,
            training_plan=training_plan,
            data_splitter=StepDataModule(n_steps) if stepwise else EpochDataModule(),
            max_epochs=fit_epochs(phases, offset, stepwise),
            accelerator=accelerator,
            devices=devices if devices != "auto" or stepwise else 1,
            limit_val_batches=0,
            enable_progress_bar=progress,
            callbacks=progress_callbacks(label, progress),
            **extra,
        )
        with warnings.catch_warnings():
            for msg in _QUIET:
                warnings.filterwarnings("ignore", message=msg)
            runner()


def checked_outcome(
    module, training_plan, Y: torch.Tensor, *, lr: float, lr_finetune: float, what: str
) -> tuple[pd.DataFrame, float]:
    """The epoch history and training R²; :class:`~multiviz.FitError` if the fit failed."""
    from multiviz.models.sbnn._checks import check_outcome

    from ...metrics._r2 import r2_score

    history = pd.DataFrame(training_plan.epoch_log)
    module.eval()
    with torch.inference_mode():
        z, pred = forward_all(module, training_plan._rows)
    y = Y.numpy()
    finite = np.isfinite(pred).all()
    r2 = r2_score(y, pred, train_mean=y.mean(0)) if finite else float("nan")
    check_outcome(
        history=history,
        outputs=[z, pred, training_plan.weight_norms_before_pruning],
        r2_train=r2,
        lr=lr,
        lr_finetune=lr_finetune,
        n_cells=Y.shape[0],
        n_targets=Y.shape[1],
        model=what,
        baseline_val_ce=training_plan.baseline_val_ce,
    )
    return history, r2


def log_phases(history: pd.DataFrame) -> None:
    """Debug log: epochs and final loss of every phase."""
    for name in dict.fromkeys(history.get("phase", [])):
        sub = history[history["phase"] == name]
        logg.debug(
            "    sbnn phase %-12s %3d epochs, final loss %.4f", name, len(sub), sub["loss"].iloc[-1]
        )
