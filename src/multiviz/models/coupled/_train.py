"""Training of :class:`~multiviz.models.CoupledAutoencoder`: a fixed schedule, no early stop.

The reference (Gala et al. code) trains a fixed 1,500 epochs x 500 steps of batch 200
(750k steps) with no early stopping. Early stopping on a validation loss dominated by the
reconstruction halts at ~3.5k steps on M1 while the cell-type structure of the latents is
still forming (``benchmarks/paper/coupled_ae_m1.py``), so the default is a fixed schedule too:
:data:`DEFAULT_STEPS`, shorter than the reference so a CPU fit takes minutes, and at most
:data:`MAX_PASSES` passes over the training cells (small datasets overfit beyond), with
the reference's length one argument away (``max_epochs=REFERENCE_STEPS // steps_per_epoch``).
"""

from __future__ import annotations

import contextlib
import io
import sys

import numpy as np
import torch
from lightning.pytorch.callbacks import Callback
from scipy import sparse
from scvi.train import TrainRunner

from ..._validate import (
    FitError,
    InputError,
    check_bool,
    check_fit_finite,
    check_float,
    check_int,
    check_kwargs,
    check_lightning,
)
from ...train import fit_context, resolve_progress_bar
from ...train._progress import progress_callbacks
from ._data import batcher_of
from ._loader import CoupledDataSplitter

__all__ = [
    "DEFAULT_STEPS",
    "MAX_PASSES",
    "REFERENCE_STEPS",
    "CoupledTrainingMixin",
    "default_steps",
]

#: Reference schedule (Gala et al. code): 1,500 epochs x 500 steps of batch 200 = 750k steps.
REFERENCE_STEPS = 750_000
#: Default schedule: at most 10,000 steps of batch 200 ...
DEFAULT_STEPS = 10_000
#: ... and at most 1,000 passes over the training cells: on the 200-cell PBMC CITE-seq
#: fixtures 10k steps (10k passes) overfit, the held-out protein R² from RNA falling from
#: 0.45 (1k steps) to 0.06 (``benchmarks/results/coupled_prediction.json``).
MAX_PASSES = 1_000


def default_steps(n_train: int, batch_size: int) -> int:
    """Default number of steps: :data:`DEFAULT_STEPS`, at most :data:`MAX_PASSES` passes."""
    per_step = min(batch_size, n_train)
    return int(min(DEFAULT_STEPS, -(-MAX_PASSES * n_train // per_step)))


#: Lightning ``Trainer`` arguments passed through ``**trainer_kwargs``.
TRAINER_KWARGS = (
    "callbacks",
    "check_val_every_n_epoch",
    "deterministic",
    "enable_checkpointing",
    "enable_model_summary",
    "gradient_clip_val",
    "limit_val_batches",
    "log_every_n_steps",
    "logger",
)


class _StopOnNonFinite(Callback):
    """Raise :class:`FitError` at the end of the first epoch whose training loss is not finite."""

    def __init__(self, lr: float):
        self.lr = lr

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        loss = trainer.callback_metrics.get("train_loss")
        if loss is not None and not bool(torch.isfinite(torch.as_tensor(loss)).all()):
            raise FitError(
                f"coupled autoencoder diverged during training (epoch {trainer.current_epoch}): "
                f"the loss is {float(loss)}. Lower the learning rate `lr` (now {self.lr:g}). "
                "Nothing was written into your object."
            )


class _QuietRunner(TrainRunner):
    """scvi-tools' runner without its ``print("Exception raised during training", ...)``."""

    def _run_training_core(self) -> None:
        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):  # dropped only when the fit raises
            super()._run_training_core()
        if buf.getvalue():
            sys.stdout.write(buf.getvalue())


class CoupledTrainingMixin:
    """``train()`` of the coupled autoencoder."""

    def _set_noise_scale(self, train_idx: np.ndarray, chunk: int = 65_536) -> None:
        """Per-feature SD over the observed values of the *training* cells (sparse-safe).

        The reference used all cells; here only the training fold, so held-out cells do
        not leak into the augmentation. Sums are taken over ``chunk`` cells at a time, read
        from the modalities' own matrices, so memory stays bounded by the chunk.
        """
        batcher = batcher_of(self.adata)
        train = np.zeros(batcher.n_obs, dtype=bool)
        train[np.asarray(train_idx)] = True
        for k, arm in enumerate(self.module.arms):
            n_feat = batcher.n_vars[k]
            total, total_sq = np.zeros(n_feat), np.zeros(n_feat)
            n_missing, n_rows = np.zeros(n_feat), 0
            for idx in batcher.chunks(chunk):
                rows, x = batcher.arm_rows(k, idx[train[idx]])
                n_rows += rows.size
                x = x.astype(np.float64)
                if sparse.issparse(x):
                    nan = np.isnan(x.data)
                    if nan.any():
                        n_missing += np.bincount(x.indices[nan], minlength=n_feat)
                        x.data[nan] = 0.0
                    total += np.asarray(x.sum(axis=0)).ravel()
                    total_sq += np.asarray(x.multiply(x).sum(axis=0)).ravel()
                else:
                    nan = np.isnan(x)
                    if nan.any():
                        n_missing += nan.sum(axis=0)
                        x[nan] = 0.0
                    total += x.sum(axis=0)
                    total_sq += (x * x).sum(axis=0)
            n = np.maximum(n_rows - n_missing, 1)
            mean = total / n
            sd = np.sqrt(np.maximum(total_sq / n - mean**2, 0.0))
            arm.noise_sd.copy_(torch.as_tensor(arm.noise * sd, dtype=torch.float32))

    @torch.no_grad()
    def _initial_loss(self, splitter) -> float:
        """Loss of the untrained model on up to 1,024 training cells (eval mode: no RNG use)."""
        was_training = self.module.training
        self.module.eval()
        idx = np.asarray(splitter.train_idx)[:1024]
        batch = splitter.batcher.batch(idx, splitter.device)
        loss = float(self.module(batch)[2].loss)
        self.module.train(was_training)
        return loss

    def _split(self, train_size: float) -> list[np.ndarray]:
        """Train/validation/test indices from the model's own seed (not scvi's global one)."""
        n = self.adata.n_obs
        order = np.random.default_rng(self.random_state).permutation(n)
        n_val = int(round(n * (1.0 - train_size)))
        return [np.sort(order[n_val:]), np.sort(order[:n_val]), np.array([], dtype=int)]

    def train(
        self,
        max_epochs: int | None = None,
        *,
        steps_per_epoch: int = 100,
        batch_size: int = 200,
        lr: float = 1e-3,
        train_size: float = 1.0,
        early_stopping: bool = False,
        early_stopping_patience: int = 20,
        accelerator: str = "auto",
        devices: int | str = "auto",
        enable_progress_bar: bool | None = None,
        precision: str | int | None = None,
        strategy: str | None = None,
        plan_kwargs: dict | None = None,
        **trainer_kwargs,
    ):
        """Train with Adam on random minibatches for a fixed number of steps.

        Parameters
        ----------
        max_epochs
            Epochs of ``steps_per_epoch`` steps. Default ``None``: :data:`DEFAULT_STEPS`
            (10,000) steps, but at most :data:`MAX_PASSES` (1,000) passes over the
            training cells, which small datasets need not to overfit (200 cells: 1,000
            steps; M1's 1,213 cells: 6,065 steps, about 75 s of CPU time on one thread). The
            reference trains 750,000 steps (1,500 epochs x 500 steps of batch 200):
            ``max_epochs=7500`` with the default ``steps_per_epoch``. The measured effect of
            the length on M1 is in ``benchmarks/results/coupled_ae_m1.json``
            (``steps_curve``) and ``docs/methods/coupled.md``.
        steps_per_epoch
            Minibatch steps per epoch (the loss history has one row per epoch).
        batch_size
            Minibatch size (200 in the reference; at least 2, as the latent batch norm and
            the coupling's minimum singular value need two cells).
        lr
            Adam learning rate (1e-3, as in the reference; Adam eps 1e-8).
        train_size
            Fraction of cells trained on; the rest is a validation split whose loss is
            logged (``history["validation_loss"]``). Default 1.0: all cells, as the paper.
        early_stopping, early_stopping_patience
            Stop when ``validation_loss`` has not improved for this many epochs (needs
            ``train_size < 1``). Off by default: the validation loss is dominated by the
            reconstruction and stops training long before the coupled latents settle.
        accelerator, devices
            Passed to the Lightning ``Trainer`` (``"cpu"``, ``"gpu"``).
        precision
            ``None`` (float32, default), ``"bf16-mixed"`` (bfloat16 autocast, CPU or GPU)
            or ``"16-mixed"`` (float16 autocast with gradient scaling, GPU only). The
            weights, the optimiser, the latents, the coupling and the loss stay float32;
            only the layers' matrix products run in 16 bits. Other values raise
            :class:`~multiviz.InputError`.
        enable_progress_bar
            ``None`` (default): shown when ``mv.settings.verbosity >= 2`` in a terminal or
            notebook.
        strategy
            ``None``/``"auto"``: one device. ``"ddp"`` (or
            ``"ddp_find_unused_parameters_true"``) with ``devices`` > 1: Lightning's DDP.
            Every process draws the same shuffled cells and takes its own ``batch_size``
            of them per step, so the latent batch norm and the coupling see ``batch_size``
            cells as on one device and each step averages ``devices`` minibatches (an
            effective batch of ``devices * batch_size``; same number of steps). Spawning
            strategies (``"ddp_spawn"``, ``"ddp_notebook"``) are refused: the trained
            weights would stay in the spawned processes; run ``"ddp"`` from a script. As in
            scvi-tools, every process continues after ``train()`` and only rank 0 records
            ``history``.
        plan_kwargs
            Extra arguments of the training plan (:class:`scvi.train.TrainingPlan`).
        **trainer_kwargs
            Lightning ``Trainer`` arguments among :data:`TRAINER_KWARGS` (e.g.
            ``callbacks``).

        Returns
        -------
        ``None``; sets ``history`` (per-epoch losses) and ``n_steps_``.

        Raises
        ------
        multiviz.FitError
            The loss or the latents became non-finite (lower ``lr``).

        Examples
        --------
        >>> model.train()  # default: 10k steps, at most 1,000 passes over the cells
        >>> model.train(max_epochs=7500)  # the reference's 750k steps
        """
        steps_per_epoch = check_int(steps_per_epoch, "steps_per_epoch")
        if max_epochs is not None:
            max_epochs = check_int(max_epochs, "max_epochs")
        batch_size = check_int(batch_size, "batch_size", minimum=2)
        lr = check_float(lr, "lr", low=0.0, low_open=True)
        train_size = check_float(train_size, "train_size", low=0.0, high=1.0, low_open=True)
        early_stopping = check_bool(early_stopping, "early_stopping")
        early_stopping_patience = check_int(early_stopping_patience, "early_stopping_patience")
        progress = resolve_progress_bar(enable_progress_bar)
        precision = check_lightning(
            strategy,
            devices,
            precision,
            accelerator,
            model="the coupled autoencoder",
            spawn_reason="keep the trained weights. Use `strategy='ddp'` from a script.",
        )
        check_kwargs(trainer_kwargs, TRAINER_KWARGS, "CoupledAutoencoder.train")
        split = self._split(train_size)
        if early_stopping and len(split[1]) == 0:
            raise InputError(
                "`early_stopping=True` needs a validation split: pass `train_size=0.9` too "
                "(not recommended: see the docstring)."
            )
        if len(split[0]) < 2:
            raise InputError(f"`train_size={train_size}` leaves fewer than 2 training cells.")
        if max_epochs is None:
            steps = default_steps(len(split[0]), batch_size)
            max_epochs = max(1, -(-steps // steps_per_epoch))
        if precision is not None:
            trainer_kwargs["precision"] = precision
        if strategy is not None:
            trainer_kwargs["strategy"] = strategy
        callbacks = list(trainer_kwargs.pop("callbacks", None) or [])
        callbacks.append(_StopOnNonFinite(lr))
        callbacks += progress_callbacks("coupled autoencoder", progress)
        with fit_context("coupled autoencoder"):
            with torch.random.fork_rng(devices=[]):  # seeded; the global RNG is kept
                torch.manual_seed(self.random_state)
                self._fit(
                    split,
                    batch_size,
                    steps_per_epoch,
                    accelerator,
                    devices,
                    plan_kwargs,
                    lr,
                    trainer_kwargs,
                    early_stopping,
                    early_stopping_patience,
                    max_epochs,
                    progress,
                    callbacks,
                )
        return None

    def _fit(
        self,
        split,
        batch_size,
        steps_per_epoch,
        accelerator,
        devices,
        plan_kwargs,
        lr,
        trainer_kwargs,
        early_stopping,
        early_stopping_patience,
        max_epochs,
        progress,
        callbacks,
    ) -> None:
        """The fit itself (inside the fit context and a forked, seeded RNG)."""
        splitter = CoupledDataSplitter(
            self.adata_manager,
            batch_size=batch_size,
            steps_per_epoch=steps_per_epoch,
            seed=self.random_state,
            accelerator=accelerator,
            device=devices,
            external_indexing=split,
        )
        splitter.setup()
        self._set_noise_scale(np.asarray(splitter.train_idx))
        init_loss = self._initial_loss(splitter)
        # scvi-tools defaults to Adam eps=0.01, which stalls these small-gradient nets;
        # the reference uses the framework default (1e-7 TF, 1e-8 torch).
        plan_kwargs = {
            "optimizer": "Custom",
            "optimizer_creator": _adam_creator(lr),
            **(plan_kwargs or {}),
        }
        from ...train import LeanTrainingPlan

        plan = LeanTrainingPlan(self.module, **plan_kwargs)
        trainer_kwargs.setdefault("enable_model_summary", False)
        if len(split[1]) == 0:
            trainer_kwargs.setdefault("limit_val_batches", 0)
        if early_stopping:
            trainer_kwargs["early_stopping_monitor"] = "validation_loss"
            trainer_kwargs["early_stopping_patience"] = early_stopping_patience
        self.module.train()  # Lightning keeps the mode it finds; inference leaves eval
        runner = _QuietRunner(
            self,
            training_plan=plan,
            data_splitter=splitter,
            max_epochs=max_epochs,
            accelerator=accelerator,
            devices=devices,
            early_stopping=early_stopping,
            enable_progress_bar=progress,
            check_val_every_n_epoch=trainer_kwargs.pop("check_val_every_n_epoch", 1),
            callbacks=callbacks,
            **trainer_kwargs,
        )
        try:
            runner()
        except RuntimeError as exc:
            if isinstance(exc, FitError):
                raise
            msg = str(exc).lower()
            if "svd" in msg or "converge" in msg or "non-finite" in msg:
                raise FitError(
                    f"coupled autoencoder diverged during training ({exc}). Lower the "
                    f"learning rate `lr` (now {lr:g}). Nothing was written into your object."
                ) from exc
            raise
        self.module.eval()
        self.n_steps_ = int(plan.global_step)
        hist = {k: v.to_numpy() for k, v in (self.history or {}).items() if "loss" in k}
        if "train_loss" not in hist:  # DDP: only global rank 0 records the history
            return
        check_fit_finite(
            hist,
            model="coupled autoencoder",
            phase="training",
            hint=f"Lower the learning rate `lr` (now {lr:g})",
        )
        _check_not_exploded(hist["train_loss"].ravel(), init_loss, lr)


def _check_not_exploded(
    loss: np.ndarray, init_loss: float, lr: float, factor: float = 100.0
) -> None:
    """A fit whose last-epoch loss is ``factor`` x the untrained model's diverged (finite or not)."""
    if loss.size and loss[-1] > factor * max(init_loss, 1e-3):
        raise FitError(
            f"coupled autoencoder diverged during training: the loss went from {init_loss:.3g} "
            f"(untrained) to {loss[-1]:.3g} (last epoch). Lower the learning rate `lr` "
            f"(now {lr:g}). Nothing was written into your object."
        )


def _adam_creator(lr: float):
    """Adam with the reference's settings; fused on CPU/GPU where torch offers it."""

    def create(params):
        params = list(params)
        try:
            return torch.optim.Adam(params, lr=lr, eps=1e-8, weight_decay=0.0, fused=True)
        except (RuntimeError, TypeError):  # a device without a fused kernel
            return torch.optim.Adam(params, lr=lr, eps=1e-8, weight_decay=0.0)

    return create
