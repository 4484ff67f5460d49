"""Multi-phase sBNN training schedule as one lean Lightning training plan.

The paper's schedule (Bernaerts et al., Methods "Training" / "Pre-training") is a
sequence of phases that differ in loss, learning rate, penalty and frozen layers. One
Lightning epoch is one pass over the training cells: the whole epoch's minibatches
run inside ``training_step`` on tensors that stay on the training device, so
Lightning's per-step bookkeeping is paid once per epoch. For Patch-seq sized data
(~10³ cells, batch 32 → ~35 steps per epoch) this is what brings the wrapper to the
speed of a bare PyTorch loop.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch
from lightning import LightningDataModule
from torch.nn import functional as F
from torch.utils.data import DataLoader

from ...train import LeanTrainingPlan
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


class EpochDataModule(LightningDataModule):
    """One item per epoch: the plan draws its own minibatches from device tensors."""

    def train_dataloader(self):
        """A loader with a single dummy batch."""
        return DataLoader([0], batch_size=1)


class SBNNTrainingPlan(LeanTrainingPlan):
    """Runs :class:`Phase` s in order; one Lightning epoch = one pass over the cells.

    Parameters
    ----------
    module
        The :class:`~multiviz.models.sbnn.SBNNModule`.
    X, Y
        Training inputs ``(n, genes)`` and targets ``(n, q)`` as float32 tensors.
    phases
        The schedule, e.g. :func:`paper_schedule`.
    n_genes
        Number of genes kept at pruning.
    batch_size
        Minibatch size (32 in the paper).
    ridge
        L2 penalty on all weights (paper: 1e-10, "no effect"), applied as Adam weight
        decay ``2 * ridge``.
    n_clusters
        k-means clusters for pre-training (20 in the paper).
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
    """

    def __init__(
        self,
        module,
        *,
        X: torch.Tensor,
        Y: torch.Tensor,
        phases: list[Phase],
        n_genes: int,
        batch_size: int = BATCH_SIZE,
        ridge: float = RIDGE,
        n_clusters: int = N_CLUSTERS,
        val_fraction: float = VAL_FRACTION,
        handover: str = HANDOVER,
        seed: int = 0,
        labels: np.ndarray | None = None,
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
        self._X, self._Y = X, Y
        self._given_labels = labels
        self._labels: torch.Tensor | None = None
        self._val: torch.Tensor | None = None
        self._gen = torch.Generator().manual_seed(int(seed))
        self._bounds = np.cumsum([p.epochs for p in phases])
        self._phase_idx = -1
        self._opt: torch.optim.Optimizer | None = None
        self._best: tuple[float, dict] | None = None
        self.epoch_log: list[dict] = []
        self.baseline_val_ce: float | None = None
        self.weight_norms_before_pruning: np.ndarray | None = None

    # --------------------------------------------------------------- lightning
    def configure_optimizers(self):
        """Optimisers are built per phase (a fresh Adam each phase, as Keras recompiles)."""
        return None

    def train_dataloader(self):  # pragma: no cover - data come from EpochDataModule
        return EpochDataModule().train_dataloader()

    def _phase_at(self, epoch: int) -> int:
        return int(np.searchsorted(self._bounds, epoch, side="right"))

    def on_train_epoch_start(self) -> None:
        """Enter the next phase when its first epoch starts."""
        idx = self._phase_at(self.current_epoch)
        while idx != self._phase_idx:
            if self._phase_idx >= 0:
                self._end_phase(self.phases[self._phase_idx])
            self._phase_idx += 1
            self._start_phase(self.phases[self._phase_idx])
        self._describe_progress()

    def _describe_progress(self) -> None:
        """Show the phase on the progress bar ("sBNN unfrozen 3/5")."""
        trainer = getattr(self, "_trainer", None)
        bar = getattr(getattr(trainer, "progress_bar_callback", None), "train_progress_bar", None)
        if bar is not None and hasattr(bar, "set_description"):
            phase = self.phases[self._phase_idx]
            bar.set_description(f"sBNN {phase.name} {self._phase_idx + 1}/{len(self.phases)}")

    def on_train_end(self) -> None:
        """Finish the last phase (pruning or restoring the best pre-training epoch)."""
        while self._phase_idx < len(self.phases) - 1:
            if self._phase_idx >= 0:
                self._end_phase(self.phases[self._phase_idx])
            self._phase_idx += 1
            self._start_phase(self.phases[self._phase_idx])
        if self._phase_idx >= 0:
            self._end_phase(self.phases[self._phase_idx])
            self._phase_idx = len(self.phases)

    # ------------------------------------------------------------------ phases
    def _to_device(self) -> None:
        dev = self.module.first.weight.device
        if self._X.device != dev:
            self._X, self._Y = self._X.to(dev), self._Y.to(dev)
            if self._labels is not None:
                self._labels = self._labels.to(dev)

    def _start_phase(self, phase: Phase) -> None:
        self._to_device()
        module = self.module
        for name, p in module.named_parameters():
            p.requires_grad_(not any(name.startswith(f) for f in phase.frozen))
        if phase.loss == "ce":
            self._setup_pretraining()
        if phase.loss == "genes" and module.gene_decoder is None:
            module.add_gene_decoder(self._X.shape[1], self.seed + 2)
        params = [p for p in module.parameters() if p.requires_grad]
        self._opt = torch.optim.Adam(params, lr=phase.lr, eps=1e-7, weight_decay=2 * self.ridge)

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
            keep_t = torch.as_tensor(keep, device=self._X.device)
            module.prune(keep_t)
            self._X = self._X.index_select(1, keep_t).contiguous()

    def _setup_pretraining(self) -> None:
        """k-means labels of the targets; 40 % hold-out among the cells of kept clusters."""
        if self._given_labels is None:
            y = self._Y.detach().cpu().numpy()
            labels = pretrain_labels(y, self.n_clusters, self.seed)
        else:
            labels = np.asarray(self._given_labels, dtype=np.int64)
        self.n_classes = int(labels.max()) + 1
        dev = self._X.device
        self._labels = torch.as_tensor(np.maximum(labels, 0), dtype=torch.long, device=dev)
        usable = torch.as_tensor(np.flatnonzero(labels >= 0), dtype=torch.long)
        perm = usable[torch.randperm(usable.numel(), generator=self._gen)]
        n_val = int(round(self.val_fraction * perm.numel()))
        self._val = perm[:n_val].to(dev)
        self._train_pre = perm[n_val:].to(dev)
        self.baseline_val_ce = baseline_cross_entropy(
            labels[perm[n_val:].numpy()], labels[perm[:n_val].numpy()], self.n_classes
        )

    # -------------------------------------------------------------------- step
    def training_step(self, batch, batch_idx):
        """One full epoch of minibatch Adam steps on the current phase."""
        phase = self.phases[self._phase_idx]
        module, opt = self.module, self._opt
        X, Y = self._X, self._Y
        rows = self._train_pre if phase.loss == "ce" else None
        n = X.shape[0] if rows is None else rows.numel()
        perm = torch.randperm(n, generator=self._gen).to(X.device)
        if rows is not None:
            perm = rows[perm]
        lasso_on = phase.lasso > 0 and "first." not in phase.frozen
        tot = torch.zeros(3, device=X.device)
        n_steps = 0
        for start in range(0, n, self.batch_size):
            idx = perm[start : start + self.batch_size]
            xb = X.index_select(0, idx)
            if phase.loss == "genes":
                with torch.no_grad():
                    z = module.encode(xb)
                fit = F.mse_loss(module.gene_decoder(z), xb)
            elif phase.loss == "ce":
                _, logits = module.forward_targets(xb, classify=True)
                logits = logits[:, : self.n_classes]  # the kept clusters only
                fit = F.cross_entropy(logits, self._labels.index_select(0, idx))
            else:
                _, out = module.forward_targets(xb)
                fit = F.mse_loss(out, Y.index_select(0, idx))
            if lasso_on:
                pen = module.group_lasso()
                loss = fit + phase.lasso * pen
            else:
                pen = torch.zeros((), device=X.device)
                loss = fit
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tot += torch.stack([loss.detach(), fit.detach(), pen.detach()])
            n_steps += 1
        tot = (tot / max(n_steps, 1)).cpu().numpy()
        rec = {"epoch": int(self.current_epoch), "phase": phase.name, "loss": float(tot[0])}
        rec["fit"], rec["group_lasso"] = float(tot[1]), float(tot[2])
        if phase.loss == "ce":
            val_ce = self._validate_pretraining()
            if val_ce is not None:
                rec["val_cross_entropy"] = val_ce
        self.epoch_log.append(rec)
        self.log("train_loss", float(tot[0]), on_step=False, on_epoch=True)
        return None

    @torch.no_grad()
    def _validate_pretraining(self) -> float | None:
        module = self.module
        if self._val.numel() == 0:
            return None
        xb = self._X.index_select(0, self._val)
        _, logits = module.forward_targets(xb, classify=True)
        logits = logits[:, : self.n_classes]
        ce = float(F.cross_entropy(logits, self._labels.index_select(0, self._val)))
        if self.handover == "best" and (self._best is None or ce < self._best[0]):
            self._best = (ce, {k: v.detach().clone() for k, v in module.state_dict().items()})
        return ce

    def on_train_epoch_end(self) -> None:
        """Logging happens in :meth:`training_step`."""

    def schedule(self) -> list[dict]:
        """The phases as plain dicts (for ``uns``)."""
        return [asdict(p) for p in self.phases]
