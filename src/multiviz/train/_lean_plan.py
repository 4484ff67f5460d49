"""A scvi-tools training plan that logs once per epoch instead of every step.

The stock :class:`scvi.train.TrainingPlan` calls ``self.log`` several times per step,
which costs milliseconds per step on a CPU (``SCVI-NOTES.md``: ~3 ms of ~4 ms
overhead). For Patch-seq sized data (~10³ cells, batch 32) that overhead dominates
training time, so this plan accumulates the step losses as detached tensors and logs
their epoch means once, in ``on_*_epoch_end``.
"""

from __future__ import annotations

import torch
from scvi.train import TrainingPlan


def fused_flag(params, trainer=None) -> bool | None:
    """``fused=`` for a torch Adam: True where PyTorch's one-kernel update can run.

    Not under Lightning's float16 gradient scaling, which cannot clip gradients before a
    fused step; ``None`` (torch's default update) there and on other devices.
    """
    half = trainer is not None and str(trainer.precision).startswith("16")
    return (not half and all(p.device.type in ("cpu", "cuda") for p in params)) or None


class LeanTrainingPlan(TrainingPlan):
    """:class:`scvi.train.TrainingPlan` with one ``log`` call per metric per epoch.

    Logged keys (they become ``model.history_`` columns): ``train_loss`` and
    ``validation_loss`` (epoch means of ``LossOutput.loss``), and for every entry
    ``name`` of ``LossOutput.extra_metrics``, ``{name}_train`` / ``{name}_validation``.
    The reduction runs on the training device; nothing is synchronised per step.
    """

    def __init__(self, module, **kwargs):
        kwargs.setdefault("optimizer", "Adam")
        super().__init__(module, **kwargs)
        self._sums: dict[str, dict[str, torch.Tensor]] = {"train": {}, "validation": {}}
        self._counts: dict[str, int] = {"train": 0, "validation": 0}

    def _optimizer_creator_fn(self, optimizer_cls):
        """scvi-tools' Adam/AdamW, with PyTorch's fused (one-kernel) update where it exists.

        The fused step does the same arithmetic as the default one in a single kernel per
        parameter group: about 4x faster on a CPU for siVAE's 1024-512-128 network, and the
        usual fast path on a GPU.
        """

        def create(params):
            params = list(params)
            return optimizer_cls(
                params,
                lr=self.lr,
                eps=self.eps,
                weight_decay=self.weight_decay,
                fused=fused_flag(params, self._trainer),  # attached by now
            )

        return create

    def _accumulate(self, mode: str, loss_output) -> None:
        sums = self._sums[mode]
        metrics = {"loss": loss_output.loss}
        if loss_output.extra_metrics:
            metrics.update(loss_output.extra_metrics)
        for name, value in metrics.items():
            value = torch.as_tensor(value).detach().float().mean()
            sums[name] = sums[name] + value if name in sums else value
        self._counts[mode] += 1

    def _flush(self, mode: str) -> None:
        count = self._counts[mode]
        if count == 0:
            return
        for name, total in self._sums[mode].items():
            key = f"{mode}_loss" if name == "loss" else f"{name}_{mode}"
            self.log(key, total / count, on_step=False, on_epoch=True, sync_dist=self.use_sync_dist)
        self._sums[mode] = {}
        self._counts[mode] = 0

    def training_step(self, batch, batch_idx):
        """Forward, accumulate the detached loss, return the loss for backprop."""
        _, _, loss_output = self.forward(batch, loss_kwargs=self.loss_kwargs)
        self._accumulate("train", loss_output)
        return loss_output.loss

    def validation_step(self, batch, batch_idx):
        """Forward on a validation batch and accumulate its loss."""
        _, _, loss_output = self.forward(batch, loss_kwargs=self.loss_kwargs)
        self._accumulate("validation", loss_output)

    def on_train_epoch_end(self) -> None:
        """Log the epoch means of the training metrics."""
        self._flush("train")

    def on_validation_epoch_end(self) -> None:
        """Log the epoch means of the validation metrics."""
        self._flush("validation")
