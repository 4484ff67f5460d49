"""Up-front checks of :meth:`SBNN.train`'s arguments and after-fit diagnostics.

Everything a fit can be told is validated here before any work; a fit that diverged
(non-finite loss or outputs) or that trained into garbage (training R² far below the
mean predictor's 0) is a :class:`~multiviz.FitError` naming the learning rate and the
phase; a fit that merely fails to beat the mean predictor is a warning naming the likely
cause and the fix (issue 11, item 4).
"""

from __future__ import annotations

from typing import Any

from ... import _logging as logg
from ..._validate import (
    InputError,
    check_bool,
    check_float,
    check_int,
    check_option,
    check_positive_int,
)
from . import _plan as plan
from ._checks import (  # noqa: F401  (TRAIN_ARGS: re-exported)
    FIT_ARGS,
    GARBAGE_R2,
    SCHEDULE_ARGS,
    TRAIN_ARGS,
    WEAK_CE_MARGIN,
    check_extra,
)


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


def checked_train_args(model, args: dict[str, Any], kwargs: dict[str, Any], n_cells: int) -> tuple:
    """Check :meth:`SBNN.train`'s arguments (``args``: its named ones) before any work.

    ``n_cells`` is the number of cells the fit trains on (the schedule scales with it).

    Returns whether training runs one Lightning fit per phase (DDP), the precision and
    the phases of the schedule.
    """
    from ..._validate import check_accelerator
    from ._checks import check_devices

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
        epochs={k: args[k] for k in SCHEDULE_ARGS},
        n_cells=int(n_cells),
        precision=None,  # checked by check_devices
        strategy=None,
        **{k: args[k] for k in _RESOLVED_ARGS},
    )
    phases = plan.paper_schedule(
        pretrain=args["pretrain"],
        lr=args["lr"],
        lr_finetune=args["lr_finetune"],
        lasso=args["lasso"],
        **epochs,
    )
    return stepwise, precision, phases


_RESOLVED_ARGS = ("max_epochs", *FIT_ARGS, "early_stopping")
"""The other arguments :func:`resolve_schedule` checks (beside the phase lengths)."""
