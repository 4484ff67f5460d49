"""Multi-phase sBNN training schedule as one lean Lightning training plan.

The paper's schedule (Bernaerts et al., Methods "Training" / "Pre-training") is a
sequence of phases that differ in loss, learning rate, penalty and frozen layers. One
Lightning epoch is one pass over the training cells: the whole epoch's minibatches
run inside ``training_step`` on tensors that stay on the training device, so
Lightning's per-step bookkeeping is paid once per epoch. For Patch-seq sized data
(~10³ cells, batch 32 → ~35 steps per epoch) this is what brings the wrapper to the
speed of a bare PyTorch loop.

Atlas-sized data stream their minibatches from the host (:mod:`._data`); the epoch loop
is the same. Under a Lightning DDP strategy each Lightning step is one minibatch instead
(DDP synchronises gradients once per forward/backward): every process draws the same
permutation and takes its share of every minibatch (``batch_size / world_size`` rows), so
DDP averages the gradient of the same global minibatch a single process would use.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import numpy as np
import torch

from ...train import LeanTrainingPlan
from ...train._lean_plan import fused_flag
from ._data import CHUNK, DeviceRows, StreamedRows
from ._datamodules import EpochDataModule
from ._module import phase_loss
from ._schedule import (  # noqa: F401  (re-exported: the schedule lives here too)
    BATCH_SIZE,
    FROZEN_EPOCHS,
    HANDOVER,
    KMEANS_INIT,
    KMEANS_N_INIT,
    LASSO,
    LR,
    LR_FINETUNE,
    MIN_CLUSTER_SIZE,
    N_CLUSTERS,
    N_GENES,
    NO_PRETRAIN_EPOCHS,
    PRETRAIN_EPOCHS,
    PRUNED_EPOCHS,
    RIDGE,
    UNFROZEN_EPOCHS,
    VAL_FRACTION,
    Phase,
    baseline_cross_entropy,
    paper_schedule,
    pretrain_labels,
)


class SBNNTrainingPlan(LeanTrainingPlan):
    """Runs :class:`Phase` s in order; one Lightning epoch = one pass over the cells.

    Parameters
    ----------
    module
        The :class:`~multiviz.models.sbnn.SBNNModule`.
    X, Y
        Training inputs ``(n, genes)`` and targets ``(n, q)``: float32 tensors, or for
        ``X`` a row source from :func:`~multiviz.models.sbnn._data.make_rows` (streamed
        minibatches for large data).
    phases
        The schedule, e.g. :func:`paper_schedule`.
    n_genes
        Number of genes kept at pruning.
    batch_size
        Minibatch size (32 in the paper); under DDP the global minibatch, split over the
        processes.
    ridge
        L2 penalty on all weights (paper: 1e-10, "no effect"), applied as Adam weight
        decay ``2 * ridge``.
    n_clusters
        k-means clusters for pre-training (20 in the paper); ``None`` (default): the
        paper's cells per cluster, at most 20 (:func:`size_scaled_clusters`).
    val_fraction
        Fraction of the training cells held out in pre-training; their unpenalised
        cross-entropy is logged every epoch (0.4 in the paper).
    handover
        ``"last"`` (default, the reference code): the last pre-training epoch starts the
        regression; ``"best"``: the epoch with the lowest validation cross-entropy.
    seed
        Seed for k-means, the hold-out split, shuffling and the fresh head.
    labels
        Precomputed pre-training labels (:func:`pretrain_labels`); computed when None.
    stepwise
        One Lightning step per minibatch (needed by DDP) instead of one per epoch.
    max_steps_per_epoch
        Cap on the minibatches of an epoch (benchmarks and smoke tests); ``None``: every
        epoch is a full pass. Wall seconds per epoch are kept in ``epoch_seconds``.
    """

    def __init__(
        self,
        module,
        *,
        X,
        Y: torch.Tensor,
        phases: list[Phase],
        n_genes: int,
        batch_size: int = BATCH_SIZE,
        ridge: float = RIDGE,
        n_clusters: int | None = None,
        val_fraction: float = VAL_FRACTION,
        handover: str = HANDOVER,
        seed: int = 0,
        labels: np.ndarray | None = None,
        stepwise: bool = False,
        max_steps_per_epoch: int | None = None,
    ):
        super().__init__(module)
        self.automatic_optimization = False
        self.phases = phases
        self.n_genes = n_genes
        self.batch_size = batch_size
        self.ridge = ridge
        self.n_clusters = n_clusters
        self.val_fraction = val_fraction
        self.handover = handover
        self.seed = seed
        self.stepwise = stepwise
        self.max_steps_per_epoch = max_steps_per_epoch
        self.epoch_seconds: list[float] = []
        self._t0 = 0.0
        self._rows = X if isinstance(X, (DeviceRows, StreamedRows)) else DeviceRows(X)
        self._Y = Y
        self._given_labels = labels
        self._labels: torch.Tensor | None = None
        self._val: torch.Tensor | None = None
        self._gen = torch.Generator().manual_seed(int(seed))
        self._bounds = np.cumsum([p.epochs for p in phases])
        self._phase_idx = -1
        self._opt: torch.optim.Optimizer | None = None
        self._best: tuple[float, dict] | None = None
        self._epoch_offset = 0
        self._ended = False
        self._perm: torch.Tensor | None = None
        self._tot: torch.Tensor | None = None
        self._n_steps = 0
        self.epoch_log: list[dict] = []
        self.baseline_val_ce: float | None = None
        self.weight_norms_before_pruning: np.ndarray | None = None

    @property
    def _X(self) -> torch.Tensor:
        """The dense input tensor (device-resident data only; used by the ensemble)."""
        return self._rows.X

    # --------------------------------------------------------------- lightning
    def configure_optimizers(self):
        """Optimisers are built per phase (a fresh Adam each phase, as Keras recompiles)."""
        return None

    def train_dataloader(self):  # pragma: no cover - data come from EpochDataModule
        return EpochDataModule().train_dataloader()

    def _phase_at(self, epoch: int) -> int:
        return int(np.searchsorted(self._bounds, epoch, side="right"))

    @property
    def _epoch(self) -> int:
        """Epoch of the whole schedule (a DDP fit runs one Lightning fit per phase)."""
        return int(self.current_epoch) + self._epoch_offset

    def steps_per_epoch(self, phase_idx: int) -> int:
        """Minibatches per epoch in phase ``phase_idx`` (pre-training uses fewer cells)."""
        if self.phases[phase_idx].loss == "ce":
            if self._given_labels is not None:
                labels = np.asarray(self._given_labels)
            else:
                labels = pretrain_labels(self._Y.detach().cpu().numpy(), self.n_clusters, self.seed)
                self._given_labels = labels
            usable = int((labels >= 0).sum())
            n = usable - int(round(self.val_fraction * usable))
        else:
            n = self._rows.shape[0]
        steps = -(-n // self.batch_size)
        return steps if self.max_steps_per_epoch is None else min(steps, self.max_steps_per_epoch)

    def _advance_to(self, idx: int) -> None:
        """End the current phase and start the following ones up to phase ``idx``."""
        while self._phase_idx < idx:
            if self._phase_idx >= 0 and not self._ended:
                self._end_phase(self.phases[self._phase_idx])
            self._phase_idx += 1
            self._ended = False
            self._start_phase(self.phases[self._phase_idx])

    def setup(self, stage: str | None = None) -> None:
        """Stepwise (DDP): freeze this fit's phase before Lightning wraps the module."""
        if self.stepwise:
            self._advance_to(self._phase_at(self._epoch_offset))

    def on_train_epoch_start(self) -> None:
        """Enter the next phase when its first epoch starts; draw the epoch's order."""
        self._advance_to(self._phase_at(self._epoch))
        self._to_device()
        self._describe_progress()
        self._perm = self._epoch_order()
        self._tot = torch.zeros(3, device=self._rows.device)
        self._n_steps = 0
        self._t0 = time.perf_counter()

    def _describe_progress(self) -> None:
        """Show the phase on the progress bar ("sBNN unfrozen 3/5")."""
        trainer = getattr(self, "_trainer", None)
        bar = getattr(getattr(trainer, "progress_bar_callback", None), "train_progress_bar", None)
        if bar is not None and hasattr(bar, "set_description"):
            phase = self.phases[self._phase_idx]
            bar.set_description(f"sBNN {phase.name} {self._phase_idx + 1}/{len(self.phases)}")

    def on_train_end(self) -> None:
        """Finish the phases this fit covered (pruning or restoring the best epoch)."""
        stop = self._epoch_offset + int(self.trainer.max_epochs or 0)
        if self._epoch_offset == 0 and stop >= int(self._bounds[-1]):
            last = len(self.phases) - 1  # the single fit: finish everything
        else:
            last = int(np.searchsorted(self._bounds, stop, side="right")) - 1
        self._advance_to(last)
        if self._phase_idx >= 0 and not self._ended:
            self._end_phase(self.phases[self._phase_idx])
            self._ended = True

    # ------------------------------------------------------------------ phases
    def _to_device(self) -> None:
        dev = self.module.first.weight.device
        if self._rows.device != dev:
            self._rows.to(dev)
        if self._Y.device != dev:
            self._Y = self._Y.to(dev)
            if self._labels is not None:
                self._labels = self._labels.to(dev)

    def _start_phase(self, phase: Phase) -> None:
        self._to_device()
        module = self.module
        if phase.loss == "genes" and module.gene_decoder is None:
            module.add_gene_decoder(self._rows.shape[1], self.seed + 2)
        # parameters the phase's loss does not reach are frozen too (DDP needs every
        # trainable parameter to get a gradient; Adam skips them either way)
        unused = {"ce": ("head.", "gene_decoder."), "mse": ("cluster_head.", "gene_decoder.")}
        off = tuple(phase.frozen) + unused.get(phase.loss, ())
        for name, p in module.named_parameters():
            p.requires_grad_(not any(name.startswith(f) for f in off))
        if phase.loss == "ce":
            self._setup_pretraining()
        params = [p for p in module.parameters() if p.requires_grad]
        adam = {"lr": phase.lr, "eps": 1e-7, "weight_decay": 2 * self.ridge}
        self._opt = torch.optim.Adam(params, **adam, fused=fused_flag(params))  # one kernel

    def _end_phase(self, phase: Phase) -> None:
        module = self.module
        if phase.loss == "ce":
            if self.handover == "best" and self._best is not None:
                module.load_state_dict(self._best[1])
            module.reset_head(self.seed + 1)
            self._best = None
        if phase.prune_after and not bool(module.pruned):
            norms = module.weight_norms().detach().cpu().numpy()
            self.weight_norms_before_pruning = norms
            keep = np.sort(np.argsort(-norms, kind="stable")[: self.n_genes])
            module.prune(torch.as_tensor(keep, device=module.first.weight.device))
            self._rows.keep_columns(keep)

    def _setup_pretraining(self) -> None:
        """k-means labels of the targets; 40 % hold-out among the cells of kept clusters."""
        if self._given_labels is None:
            y = self._Y.detach().cpu().numpy()
            labels = pretrain_labels(y, self.n_clusters, self.seed)
        else:
            labels = np.asarray(self._given_labels, dtype=np.int64)
        self.n_classes = int(labels.max()) + 1
        dev = self._rows.device
        self._labels = torch.as_tensor(np.maximum(labels, 0), dtype=torch.long, device=dev)
        dev = self._index_device
        usable = torch.as_tensor(np.flatnonzero(labels >= 0), dtype=torch.long)
        perm = usable[torch.randperm(usable.numel(), generator=self._gen)]
        n_val = int(round(self.val_fraction * perm.numel()))
        self._val = perm[:n_val].to(dev)
        self._train_pre = perm[n_val:].to(dev)
        self.baseline_val_ce = baseline_cross_entropy(
            labels[perm[n_val:].numpy()], labels[perm[:n_val].numpy()], self.n_classes
        )

    # -------------------------------------------------------------------- step
    @property
    def _index_device(self) -> torch.device:
        """Where cell indices live: the host when rows are sliced there (no sync per step)."""
        return torch.device("cpu") if self._rows.streamed else self._rows.device

    def _epoch_order(self) -> torch.Tensor:
        """The current epoch's cell order (the same seeded draw on every process)."""
        phase = self.phases[self._phase_idx]
        rows = self._train_pre if phase.loss == "ce" else None
        n = self._rows.shape[0] if rows is None else rows.numel()
        perm = torch.randperm(n, generator=self._gen)
        if self.max_steps_per_epoch is not None:
            perm = perm[: self.max_steps_per_epoch * self.batch_size]
        if rows is not None:
            perm = rows.cpu()[perm]
        return perm.to(self._index_device)

    def _my_rows(self, idx: torch.Tensor) -> torch.Tensor:
        """The share of a global minibatch for this process (all of it on one process)."""
        trainer = getattr(self, "_trainer", None)
        world = int(trainer.world_size) if trainer is not None else 1
        if world == 1:
            return idx
        return idx.tensor_split(world)[int(trainer.global_rank)]

    def _minibatch(self, idx: torch.Tensor) -> torch.Tensor:
        """One optimisation step on the rows ``idx``; returns (loss, fit, penalty)."""
        phase = self.phases[self._phase_idx]
        module, opt = self.module, self._opt
        xb = module.standardize(self._rows.rows(idx))
        if phase.loss == "genes":
            target = None  # the inputs themselves
        else:
            target = (self._labels if phase.loss == "ce" else self._Y).index_select(
                0, idx.to(xb.device)
            )
        fit = module.phase_fit(xb, target, phase.loss, getattr(self, "n_classes", None))
        opt.zero_grad(set_to_none=True)
        if self.stepwise:
            self.manual_backward(fit)
        else:
            fit.backward()
        if phase.lasso > 0 and "first." not in phase.frozen:
            pen = module.add_group_lasso_gradient(phase.lasso)
            loss = fit + phase.lasso * pen
        else:
            pen = torch.zeros((), device=fit.device)
            loss = fit
        opt.step()
        return torch.stack([loss.detach(), fit.detach(), pen.detach()]).float()

    def training_step(self, batch, batch_idx):
        """All minibatches of an epoch (``stepwise``: the ``batch_idx``-th one)."""
        perm = self._perm
        if self.stepwise:
            start = int(batch_idx) * self.batch_size
            if start < perm.numel():
                idx = self._my_rows(perm[start : start + self.batch_size])
                self._tot += self._minibatch(idx)
                self._n_steps += 1
            return None
        for start in range(0, perm.numel(), self.batch_size):
            self._tot += self._minibatch(perm[start : start + self.batch_size])
            self._n_steps += 1
        self._finish_epoch()
        return None

    def _finish_epoch(self) -> None:
        phase = self.phases[self._phase_idx]
        tot = (self._tot / max(self._n_steps, 1)).cpu().numpy()
        self.epoch_seconds.append(time.perf_counter() - self._t0)
        rec = {"epoch": self._epoch, "phase": phase.name, "loss": float(tot[0])}
        rec["fit"], rec["group_lasso"] = float(tot[1]), float(tot[2])
        if phase.loss == "ce":
            val_ce = self._validate_pretraining()
            if val_ce is not None:
                rec["val_cross_entropy"] = val_ce
        self.epoch_log.append(rec)
        self.log("train_loss", float(tot[0]), on_step=False, on_epoch=True)

    @torch.no_grad()
    def _validate_pretraining(self) -> float | None:
        module = self.module
        if self._val.numel() == 0:
            return None
        total = torch.zeros((), device=self._rows.device, dtype=torch.float64)
        for start in range(0, self._val.numel(), CHUNK):
            idx = self._val[start : start + CHUNK]
            xb = module.standardize(self._rows.rows(idx))
            _, logits = module.forward_targets(xb, classify=True)
            logits = logits[:, : self.n_classes].float()
            labels = self._labels.index_select(0, idx.to(xb.device))
            total += phase_loss(logits, labels, "ce", reduction="sum").double()
        ce = float(total / self._val.numel())
        if self.handover == "best" and (self._best is None or ce < self._best[0]):
            self._best = (ce, {k: v.detach().clone() for k, v in module.state_dict().items()})
        return ce

    def on_train_epoch_end(self) -> None:
        """Stepwise (DDP): log the epoch (the epoch loop logs in :meth:`training_step`)."""
        if self.stepwise:
            self._finish_epoch()

    def schedule(self) -> list[dict]:
        """The phases as plain dicts (for ``uns``)."""
        return [asdict(p) for p in self.phases]
