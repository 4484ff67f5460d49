"""siVAE's default schedule: each step trains until a held-out criterion stops improving.

With ``max_epochs=None`` every step runs between a minimum and a maximum number of epochs
that scale with the data and stops earlier when its criterion has not improved for
``patience`` epochs (:class:`ConvergenceStop`). The criteria:

* step 1 (cell VAE): the loss on the validation cells (``train_size < 1``), judged only
  after a KL warm-up over the first :data:`WARMUP_FRACTION` of its maximum (during the
  warm-up the ELBO is not comparable between epochs); the last weights are kept (the map
  kept sharpening after the validation ELBO bottomed out on a 5,000-cell simulation);
* step 2 (feature VAE, iterating over genes, which have no validation split): its training
  loss, an average over every gene once per epoch; the best epoch's weights are restored;
* step 3: the validation loss; the best epoch's weights are restored.

Without validation cells every step monitors its training loss. The bounds:

* the maximum of step 1 is scvi-tools' own default length for ``scvi.model.SCVI``
  (400 epochs below 20,000 cells, ``400 * 20,000 / n`` above); steps 2 and 3 keep the caps
  of :func:`~multiviz.models.sivae._schedule.default_schedule`;
* every step trains at least :data:`MIN_STEPS` optimisation steps and :data:`MIN_EPOCHS`
  epochs, step 1 at least its warm-up plus its patience;
* patience: scvi-tools' 45 epochs at 1,000 cells (:data:`PATIENCE_DRAWS` draws), between
  :data:`MIN_PATIENCE` and :data:`MAX_PATIENCE` epochs.
"""

from __future__ import annotations

import copy
import math

import torch
from lightning.pytorch.callbacks import Callback

from multiviz._docs import SIVAE_SIZES, doc_params

from ._schedule import default_schedule_for_batches

#: Fewest optimisation steps of a step (100 steps: 12,800 cells at 128 per step).
MIN_STEPS = 100
#: Fewest epochs of a step.
MIN_EPOCHS = 5
#: Draws without improvement before a step stops (scvi-tools: 45 epochs; 1,000 cells).
PATIENCE_DRAWS = 45_000
#: Bounds of the patience, in epochs (scvi-tools' default is the upper one).
MIN_PATIENCE, MAX_PATIENCE = 10, 45
#: scvi-tools' default training length for SCVI: ``min(400, round(400 * 20_000 / n))`` epochs.
SCVI_EPOCHS, SCVI_CELLS = 400, 20_000

#: Fraction of step 1's maximum spent warming the KL weight up from 0 to 1 (scvi-tools warms
#: it up over its whole default length); the validation ELBO is judged only afterwards.
WARMUP_FRACTION = 0.25

#: Logged metric each step monitors when validation cells exist / when they do not.
MONITOR = {1: "validation_loss", 2: "train_loss", 3: "validation_loss"}


def scvi_default_epochs(n_cells: int) -> int:
    """scvi-tools' default ``max_epochs`` of ``scvi.model.SCVI`` for ``n_cells`` cells."""
    return int(min(round(SCVI_EPOCHS * SCVI_CELLS / max(n_cells, 1)), SCVI_EPOCHS))


@doc_params(sivae_sizes=SIVAE_SIZES)
def convergence_plan(
    n_train: int,
    n_genes: int,
    *,
    batch_sizes: tuple[int, int, int],
    has_validation: bool,
) -> dict[int, dict]:
    """Per step (1, 2, 3): ``warmup_epochs``, ``min_epochs``, ``max_epochs``, ``patience``, ``monitor``.

    Parameters
    ----------
    {sivae_sizes}
    batch_sizes
        Cells per step of step 1, genes per step of step 2, cells per step of step 3.
    has_validation
        Whether validation cells exist (else steps 1 and 3 monitor their training loss).

    Examples
    --------
    >>> plan = convergence_plan(1000, 1000, batch_sizes=(128, 32, 512), has_validation=True)
    >>> [(p["min_epochs"], p["max_epochs"], p["patience"]) for p in plan.values()]
    [(145, 400, 45), (5, 63, 45), (50, 63, 45)]
    """
    fixed = default_schedule_for_batches(n_train, n_genes, batch_sizes)
    items = {1: n_train, 2: n_genes, 3: n_train}
    caps = {
        1: scvi_default_epochs(n_train),
        2: fixed["feature_pretrain"]["epochs"],
        3: fixed["joint"]["epochs"],
    }
    plan = {}
    for step, n in items.items():
        per_epoch = max(math.ceil(n / batch_sizes[step - 1]), 1)
        lowest = max(MIN_EPOCHS, math.ceil(MIN_STEPS / per_epoch))
        patience = min(max(math.ceil(PATIENCE_DRAWS / max(n, 1)), MIN_PATIENCE), MAX_PATIENCE)
        monitor = MONITOR[step] if has_validation else "train_loss"
        warmup = math.ceil(caps[step] * WARMUP_FRACTION) if step == 1 else 0
        plan[step] = {
            "warmup_epochs": int(warmup),
            "min_epochs": int(min(max(lowest, warmup + patience if step == 1 else 0), caps[step])),
            "max_epochs": int(caps[step]),
            "patience": int(patience),
            "monitor": monitor,
        }
    return plan


class ConvergenceStop(Callback):
    """Stop a step when ``monitor`` has not improved for ``patience`` epochs.

    Epochs before ``start_epoch`` (the KL warm-up of step 1, during which the validation
    ELBO is not comparable from epoch to epoch) are not judged. With ``restore=True`` the
    weights of the best epoch are put back at the end. A training-loss monitor is read at
    the start of the next epoch (and at the end), when the module has logged the finished
    epoch's mean and the weights are still that epoch's.
    """

    def __init__(self, monitor: str, patience: int, start_epoch: int = 0, restore: bool = True):
        super().__init__()
        self.monitor, self.patience = monitor, int(patience)
        self.start_epoch, self.restore = int(start_epoch), bool(restore)
        self.best, self.best_epoch, self.stopped = math.inf, -1, False
        self._seen = -1
        self._state: dict | None = None

    def _check(self, trainer, pl_module, epoch: int) -> None:
        value = trainer.callback_metrics.get(self.monitor)
        if value is None or epoch < self.start_epoch or epoch == self._seen:
            return
        self._seen = epoch
        value = float(value)
        if math.isfinite(value) and value < self.best:
            self.best, self.best_epoch = value, epoch
            if self.restore:
                self._state = copy.deepcopy(pl_module.module.state_dict())
        elif epoch - self.best_epoch >= self.patience and epoch + 1 >= (trainer.min_epochs or 0):
            trainer.should_stop = True
            self.stopped = True

    def on_validation_end(self, trainer, pl_module) -> None:  # noqa: D102
        if self.monitor.startswith("validation") and not trainer.sanity_checking:
            self._check(trainer, pl_module, int(trainer.current_epoch))

    def on_train_epoch_start(self, trainer, pl_module) -> None:  # noqa: D102
        if self.monitor.startswith("train"):
            self._check(trainer, pl_module, int(trainer.current_epoch) - 1)

    def on_train_end(self, trainer, pl_module) -> None:  # noqa: D102
        if self.monitor.startswith("train"):
            self._check(trainer, pl_module, int(trainer.current_epoch) - 1)
        if self._state is not None:
            with torch.no_grad():
                pl_module.module.load_state_dict(self._state)


def stop_reason(stop: ConvergenceStop, plan_step: dict) -> str:
    """What ended a step, in words (logged and stored)."""
    if stop.stopped:
        return f"{plan_step['monitor']} did not improve for {plan_step['patience']} epochs"
    return f"reached the maximum of {plan_step['max_epochs']} epochs"
