"""Up-front checks of :meth:`SBNN.train`'s arguments and after-fit diagnostics.

Everything a fit can be told is validated here before any work; a fit that diverged
(non-finite loss or outputs) or that trained into garbage (training R² far below the
mean predictor's 0) is a :class:`~multiviz.FitError` naming the learning rate and the
phase; a fit that merely fails to beat the mean predictor is a warning naming the likely
cause and the fix (issue 11, item 4).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _logging as logg
from ..._validate import (
    FitError,
    InputError,
    check_bool,
    check_fit_finite,
    check_float,
    check_int,
    check_kwargs,
    check_option,
    check_positive_int,
)
from ..._warnings import FitQualityWarning
from ...train import TRAINING_VOCABULARY
from . import _plan as plan

SCHEDULE_ARGS = (
    "pretrain_epochs",
    "frozen_epochs",
    "unfrozen_epochs",
    "no_pretrain_epochs",
    "pruned_epochs",
    "gene_decoder_epochs",
)
"""The phase-length arguments that ``max_epochs`` scales."""

TRAIN_ARGS = (
    "pretrain",
    *SCHEDULE_ARGS,
    "n_genes",
    "lasso",
    "lr",
    "lr_finetune",
    "ridge",
    "batch_size",
    "val_fraction",
    "handover",
    *(name for name in TRAINING_VOCABULARY if name != "batch_size"),
)
"""Every keyword :meth:`SBNN.train` (and, through it, ``mv.tl.sbnn``) accepts."""

GARBAGE_R2 = -0.5
"""Training R² below this is a failed fit (the mean predictor scores 0)."""

WEAK_CE_MARGIN = 0.05
"""The last pre-training epoch must beat the class-frequency validation cross-entropy by
5 %, else the fit is reported as not having found a signal."""


def check_extra(kwargs: dict[str, Any], where: str) -> None:
    """Unknown keywords → :class:`InputError` listing the valid names."""
    check_kwargs(kwargs, TRAIN_ARGS, where)


def resolve_schedule(
    *,
    pretrain: bool,
    epochs: dict[str, int | None],
    n_cells: int,
    max_epochs: int | None,
    lasso: float,
    lr: float,
    lr_finetune: float,
    ridge: float,
    batch_size: int,
    val_fraction: float,
    handover: str,
    early_stopping: bool | None,
    precision: Any,
    strategy: Any,
) -> dict[str, int]:
    """Validate the schedule; return the phase lengths (scaled to ``max_epochs``).

    A phase length left at ``None`` is the paper's, bounded in optimisation steps for
    ``n_cells`` training cells (:func:`~multiviz.models.sbnn._schedule.size_scaled_epochs`).
    ``max_epochs`` then scales the phases of the chosen schedule proportionally (each
    phase keeps at least one epoch) so that they sum to about ``max_epochs``.
    """
    from ._schedule import PAPER_EPOCHS, default_epochs

    check_bool(pretrain, "pretrain")
    check_int(batch_size, "batch_size", minimum=1)
    scaled = default_epochs(n_cells, batch_size)
    epochs = {
        k: scaled[k] if v is None and k in scaled else check_int(v, k, minimum=0)
        for k, v in epochs.items()
    }
    changed = [k for k, v in scaled.items() if epochs.get(k) == v != PAPER_EPOCHS[k]]
    if changed:
        logg.info(
            "    sBNN schedule for %d cells: %s epochs (the paper's optimisation steps; "
            "its epochs are defined on 1,092 cells)",
            n_cells,
            ", ".join(f"{k.removesuffix('_epochs')} {epochs[k]}" for k in changed),
        )
    check_float(lasso, "lasso", low=0.0)
    check_float(lr, "lr", low=0.0, low_open=True)
    check_float(lr_finetune, "lr_finetune", low=0.0, low_open=True)
    check_float(ridge, "ridge", low=0.0)
    check_float(val_fraction, "val_fraction", low=0.0, high=1.0, high_open=True)
    check_option(handover, ("last", "best"), "handover")
    if early_stopping not in (None, False):
        raise InputError(
            "`early_stopping` is not supported by the sBNN: the paper trains a fixed schedule "
            "(pre-training, frozen, unfrozen, prune, fine-tune) and stopping on a held-out loss "
            "would cut a phase short. Leave `early_stopping` unset; shorten the schedule with "
            f"`max_epochs` or the phase arguments ({', '.join(SCHEDULE_ARGS)})."
        )
    if precision not in (None, 32, "32", "32-true"):
        raise InputError(
            f"`precision={precision!r}` is not supported: the sBNN trains in float32 "
            "(`precision=32`)."
        )
    if strategy not in (None, "auto", "single_device"):
        raise InputError(
            f"`strategy={strategy!r}` is not supported: the sBNN trains on a single device "
            "(`strategy='auto'`)."
        )
    used = (
        ["pretrain_epochs", "frozen_epochs", "unfrozen_epochs"]
        if pretrain
        else ["no_pretrain_epochs"]
    ) + ["pruned_epochs", "gene_decoder_epochs"]
    before_pruning = used[:-2]
    if sum(epochs[k] for k in before_pruning) == 0:
        raise InputError(
            f"The phases before pruning ({', '.join(f'`{k}`' for k in before_pruning)}) are all "
            "0 epochs: the group lasso never acts, so the genes kept would be arbitrary. Give "
            "at least one of them 1 or more epochs (paper: "
            + ("50, 50, 50)." if pretrain else "100).")
        )
    if max_epochs is not None:
        max_epochs = check_int(max_epochs, "max_epochs", minimum=len(used))
        total = sum(epochs[k] for k in used)
        if total > 0:
            for k in used:
                if epochs[k] > 0:
                    epochs[k] = max(1, int(round(epochs[k] * max_epochs / total)))
    return epochs


def checked_train_args(model, args: dict[str, Any], kwargs: dict[str, Any]) -> tuple:
    """Check :meth:`SBNN.train`'s arguments (``args``: its named ones) before any work.

    Returns whether training runs one Lightning fit per phase (DDP), the precision and
    the phases of the schedule.
    """
    from ...train._accelerator import check_accelerator
    from ._data import check_devices
    from ._schedule import PAPER_EPOCHS

    check_extra(kwargs, "SBNN.train")
    n_input = model.module.gene_index.numel()
    n_genes = args["n_genes"]
    check_positive_int(n_genes, "n_genes")
    if n_genes > n_input:
        raise InputError(f"`n_genes`={n_genes} exceeds the number of input genes ({n_input}).")
    if bool(model.module.pruned):
        raise InputError("This model is already trained and pruned; create a new SBNN.")
    stepwise, precision = check_devices(
        args["devices"], args["strategy"], args["precision"], args["data_on_device"]
    )
    check_accelerator(args["accelerator"])
    epochs = resolve_schedule(
        pretrain=args["pretrain"],
        epochs={k: args[k] for k in (*PAPER_EPOCHS, "gene_decoder_epochs")},
        n_cells=int(model.adata_manager.adata.n_obs),
        precision=None,  # checked by check_devices
        strategy=None,
        **{k: args[k] for k in _SCHEDULE_ARGS},
    )
    phases = plan.paper_schedule(
        pretrain=args["pretrain"],
        lr=args["lr"],
        lr_finetune=args["lr_finetune"],
        lasso=args["lasso"],
        **epochs,
    )
    return stepwise, precision, phases


_SCHEDULE_ARGS = (
    "max_epochs",
    "lasso",
    "lr",
    "lr_finetune",
    "ridge",
    "batch_size",
    "val_fraction",
    "handover",
    "early_stopping",
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
