"""The sBNN's argument checks: network sizes, devices, z-scoring, extra keywords, fit outcome."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from multiviz import _logging as logg
from multiviz._validate import (
    FitError,
    InputError,
    check_fit_finite,
    check_int,
    check_kwargs,
    check_network_size,
)
from multiviz._warnings import FitQualityWarning
from multiviz.models.sbnn import _plan as plan
from multiviz.models.sbnn._schedule import N_CLUSTERS
from multiviz.train import TRAINING_VOCABULARY

SCHEDULE_ARGS = (
    "pretrain_epochs",
    "frozen_epochs",
    "unfrozen_epochs",
    "no_pretrain_epochs",
    "pruned_epochs",
    "gene_decoder_epochs",
)
"""The phase-length arguments that ``max_epochs`` scales."""

FIT_ARGS = ("lasso", "lr", "lr_finetune", "ridge", "batch_size", "val_fraction", "handover")
"""The penalty, optimiser and split arguments of :meth:`SBNN.train`."""

TRAIN_ARGS = (
    "pretrain",
    *SCHEDULE_ARGS,
    "n_genes",
    *FIT_ARGS,
    *(name for name in TRAINING_VOCABULARY if name != "batch_size"),
)
"""Every keyword :meth:`SBNN.train` (and, through it, ``mv.tl.sbnn``) accepts."""

GARBAGE_R2 = -0.5
"""Training R² below this is a failed fit (the mean predictor scores 0)."""

WEAK_CE_MARGIN = 0.05
"""The last pre-training epoch must beat the class-frequency validation cross-entropy by
5 %, else the fit is reported as not having found a signal."""


def check_devices(devices, strategy, precision, data_on_device) -> tuple[bool, str | None]:
    """Validate the device arguments of ``SBNN.train``.

    Returns whether to step per batch (``True``: one Lightning step per minibatch, one fit
    per phase, for a DDP strategy) and Lightning's name for ``precision`` (None: float32).
    """
    from multiviz._validate import check_precision

    if data_on_device not in (None, True, False):
        raise InputError(f"`data_on_device` must be True, False or None, got {data_on_device!r}.")
    precision = check_precision(
        precision,
        None,  # float16 is refused on every device
        model="the sBNN",
        float16_refused="it needs loss scaling, which the sBNN's own per-phase optimisers "
        "do not do.",
    )
    from ..._validate import check_strategy

    stepwise = check_strategy(
        strategy,
        devices,
        model="the sBNN",
        spawn_reason="keep the trained (pruned) network. Use `strategy='ddp'` from a script "
        "(an `if __name__ == '__main__':` guard is not needed).",
    )
    return stepwise, precision


def check_zscore(var: pd.DataFrame, zscore, x: str) -> None:
    """``zscore=True`` needs finite ``zscore_mean`` and positive ``zscore_std`` columns."""
    from ..._validate import InputError

    if zscore not in (True, False):
        raise InputError(f"`zscore` must be True or False, got {zscore!r}.")
    if not zscore:
        return
    cols = ("zscore_mean", "zscore_std")
    if any(c not in var for c in cols):
        raise InputError(
            f"`zscore=True` needs `mdata[{x!r}].var['zscore_mean']` and `['zscore_std']` "
            "(written by `mv.pp.prepare_paired`); they are missing."
        )
    mean, std = (var[c].to_numpy(dtype=float) for c in cols)
    if not (np.isfinite(mean).all() and np.isfinite(std).all() and (std > 0).all()):
        raise InputError(
            f"`zscore=True`: `mdata[{x!r}].var['zscore_mean']` must be finite and "
            "`var['zscore_std']` finite and > 0."
        )


def check_sbnn_size(
    n_input: int,
    n_output: int,
    n_latent,
    n_hidden=(512, 128),
    n_clusters: int | None = None,
    *,
    inputs: str = "input genes",
    latent_arg: str = "n_latent",
    copies: int = 1,
) -> tuple[int, tuple[int, int]]:
    """Check the bottleneck and hidden widths against the data and the machine's memory.

    The bottleneck may be at most the number of input genes; the network (times
    ``copies`` for an ensemble) must fit in the available memory
    (:func:`multiviz._validate.check_network_size`). Returns ``(n_latent, n_hidden)``.
    """
    if isinstance(n_hidden, str) or not hasattr(n_hidden, "__len__") or len(n_hidden) != 2:
        raise InputError(
            f"`n_hidden` must be two layer widths, e.g. (512, 128) (the paper's), got {n_hidden!r}."
        )
    h1, h2 = (check_int(h, "n_hidden") for h in n_hidden)
    n_latent = check_int(n_latent, latent_arg)
    check_network_size(
        "sBNN",
        n_latent=n_latent,
        max_latent=int(n_input),
        max_what=inputs,
        chains=[
            [n_input, h1, h2, n_latent],
            [n_latent, h2, h1, n_output],
            [h1, n_clusters or N_CLUSTERS],
        ],
        n_other=2 * int(n_input),  # z-scoring buffers
        copies=copies,
        latent_arg=latent_arg,
        size_args=f"`{latent_arg}={n_latent}`, `n_hidden={(h1, h2)}`",
    )
    return n_latent, (h1, h2)


def check_extra(kwargs: dict[str, Any], where: str) -> None:
    """Unknown keywords → :class:`InputError` listing the valid names."""
    check_kwargs(kwargs, TRAIN_ARGS, where)


def check_outcome(
    *,
    history,
    outputs: list,
    r2_train: float,
    lr: float,
    lr_finetune: float,
    n_cells: int,
    n_targets: int,
    model: str,
    baseline_val_ce: float | None = None,
) -> None:
    """Raise on divergence or garbage; warn when the fit does not beat a trivial baseline.

    The baselines: the mean predictor on the training cells (training R² 0) and, with
    pre-training, the class-frequency predictor on the held-out pre-training cells (their
    k-means labels): a pre-trained network (the last epoch, the one handed over) whose
    validation cross-entropy is not :data:`WEAK_CE_MARGIN` below it has found no signal
    the genes carry about the targets. (The best epoch is no guide: on 80 cells with
    random targets it beat the baseline by up to 12 % by chance.)
    """
    hint = (
        f"The learning rates were lr={lr:g}, lr_finetune={lr_finetune:g}; lower them "
        "(paper: 1e-4 and 5e-5)"
    )
    loss = None if history is None else history[["loss", "fit"]].to_numpy(dtype=float)
    phase = failing_phase(history, n_targets)
    check_fit_finite([loss, *outputs], model=model, phase=phase, hint=hint)
    if not np.isfinite(r2_train) or r2_train < GARBAGE_R2:
        raise FitError(
            f"{model} failed during {phase}: the training R² is {r2_train:.3g}, far below the "
            f"mean predictor's 0. {hint}. Nothing was written into your object."
        )
    cause = (
        "Likely causes: too few cells (%d) for the network, too few optimisation steps, or "
        "too strong a group lasso. Try `pretrain=False`, more epochs (`max_epochs`), a "
        "smaller `lasso`, or the linear `mv.tl.srrr`, and check the held-out score with "
        "`mv.tl.cross_validate`."
    )
    if baseline_val_ce is not None and history is not None and "val_cross_entropy" in history:
        last = float(history["val_cross_entropy"].dropna().iloc[-1])
        if last > (1.0 - WEAK_CE_MARGIN) * baseline_val_ce:
            logg.warning(
                "%s's pre-trained network (handed to the regression) does not beat the "
                "class-frequency baseline on its held-out pre-training cells (validation "
                "cross-entropy %.3f vs %.3f): the classifier over-fitted its clusters or found "
                "no signal, so the layers it hands over may not help. The regression can still "
                "predict well: compare the fit's held-out R² with sRRR's (`mv.tl.sbnn` writes "
                "`r2_heldout` and `r2_heldout_linear`). If it is not better: " + cause,
                model,
                last,
                baseline_val_ce,
                n_cells,
                category=FitQualityWarning,
            )
            return
    if r2_train <= 0.0:
        logg.warning(
            "%s does not beat the mean predictor on its own training cells (training R² "
            "%.3f <= 0). " + cause,
            model,
            r2_train,
            n_cells,
            category=FitQualityWarning,
        )


def failing_phase(history, n_targets: int) -> str:
    """The first phase whose loss is non-finite or far above the mean predictor's."""
    if history is None or len(history) == 0:
        return "the first phase"
    for name in dict.fromkeys(history["phase"]):
        sub = history[history["phase"] == name]
        fit = sub["fit"].to_numpy(dtype=float)
        limit = 20.0 * np.log(max(plan.N_CLUSTERS, 2)) if name == "pretrain" else 20.0
        if not np.all(np.isfinite(fit)) or fit[-1] > limit:
            return f"phase {name!r}"
    return f"phase {history['phase'].iloc[-1]!r}"
