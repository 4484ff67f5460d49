"""Progress lines in the log for fits that show no progress bar (scripts, batch jobs).

Outside a terminal or notebook :func:`~multiviz.train.resolve_progress_bar` turns the bar
off; a long fit would then be silent between its ``running ...`` and ``finished ...``
lines. Instead, every ``mv.settings.progress_interval`` seconds of wall time (30 by
default; ``None``: never) the fit logs one INFO line through the ``multiviz`` logger::

    sBNN-2 pretrain (1/5): epoch 12/250, 0:00:30 elapsed, ~0:09:55 left

The estimate assumes the remaining epochs run as fast as the finished ones (with early
stopping it is an upper bound). :class:`ProgressLog` is the Lightning callback every model's
``train()`` attaches (through :func:`progress_callbacks`); :class:`EpochProgress` counts the
epochs of a loop outside Lightning (the batched sBNN ensemble), with tqdm's ``update()``.
The per-step cost is one :func:`time.monotonic` call and a comparison.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from lightning.pytorch.callbacks import Callback

from .. import _logging as logg
from ._fit_context import format_elapsed

__all__ = ["EpochProgress", "ProgressLog", "progress_callbacks"]

Label = str | Callable[[], str]


def _interval() -> float:
    """Seconds between lines now (``inf``: no lines; off, or INFO not shown)."""
    from .._settings import settings

    interval = settings.progress_interval
    if interval is None or not logg.logger.isEnabledFor(logging.INFO):
        return math.inf
    return float(interval)


class _Clock:
    """When the next line is due, and the line itself."""

    def __init__(self, label: Label, active: bool = True) -> None:
        self.label = label
        self.interval = _interval() if active else math.inf
        self.start = time.monotonic()
        self.next = self.start + self.interval

    def due(self) -> bool:
        """Whether a line is due (cheap: called once per step)."""
        return time.monotonic() >= self.next

    def log(self, position: str, fraction: float) -> None:
        """Log ``<label>: <position>, <elapsed> elapsed, ~<left> left``; schedule the next."""
        now = time.monotonic()
        elapsed = now - self.start
        fraction = min(max(fraction, 0.0), 1.0)
        left = format_elapsed(elapsed * (1 - fraction) / fraction) if fraction > 0 else "?"
        label = self.label() if callable(self.label) else self.label
        logg.info(
            "    %s: %s, %s elapsed, ~%s left", label, position, format_elapsed(elapsed), left
        )
        self.next = now + self.interval


class ProgressLog(Callback):
    """Lightning callback: a progress line every ``mv.settings.progress_interval`` seconds.

    Parameters
    ----------
    label
        The model and phase named in each line (e.g. ``"siVAE step 1/3 (cell pretrain)"``),
        or a function returning it when the line is written (a phase that changes during
        one Lightning fit).
    """

    def __init__(self, label: Label) -> None:
        super().__init__()
        self.label = label
        self._clock = _Clock(label, active=False)
        self._batches = 1

    def on_train_start(self, trainer, pl_module) -> None:
        """Start the clock (global rank 0 only) and read the fit's length."""
        self._clock = _Clock(self.label, active=bool(trainer.is_global_zero))
        batches = trainer.num_training_batches
        self._batches = int(batches) if math.isfinite(batches) and batches > 0 else 1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        """Log a line when one is due."""
        if not self._clock.due():
            return
        max_epochs = trainer.max_epochs
        if max_epochs is None or max_epochs < 1:  # a fit bounded in steps
            total = max(int(trainer.max_steps), 1)
            step = int(trainer.global_step)
            self._clock.log(f"step {step}/{total}", step / total)
            return
        epoch = int(trainer.current_epoch)
        done = epoch + (batch_idx + 1) / self._batches
        position = f"epoch {epoch + 1}/{max_epochs}"
        if self._batches > 1:
            position += f" (step {batch_idx + 1}/{self._batches})"
        self._clock.log(position, done / max_epochs)


class EpochProgress:
    """Progress lines for a loop of ``total`` epochs outside Lightning (tqdm's ``update``).

    Parameters
    ----------
    label
        The model and phase named in each line, or a function returning it.
    total
        Epochs in the whole loop.
    """

    def __init__(self, label: Label, total: int) -> None:
        self.total = max(int(total), 1)
        self.done = 0
        self._clock = _Clock(label)

    def update(self, n: int = 1) -> None:
        """Count ``n`` finished epochs; log a line when one is due."""
        self.done += n
        if self._clock.due():
            self._clock.log(f"epoch {self.done}/{self.total}", self.done / self.total)


def progress_callbacks(label: Label, progress_bar: bool) -> list[Callback]:
    """``[ProgressLog(label)]`` when no progress bar is shown, else ``[]``.

    Parameters
    ----------
    label
        As in :class:`ProgressLog`.
    progress_bar
        Whether the fit shows Lightning's progress bar (the resolved
        ``enable_progress_bar``); the bar already shows the progress.
    """
    return [] if progress_bar else [ProgressLog(label)]
