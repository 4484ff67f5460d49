"""Training plan and gene data module for siVAE's three-step schedule.

Each phase is one Lightning fit of :class:`SIVAETrainingPlan` (Choi & Quon 2023, Methods,
"Training procedure for siVAE"): a fresh Adam per phase, as the paper trains the steps
one after another. Before a phase the model freezes every parameter that phase does not
train (``SIVAEModule.set_phase``), so each trainable parameter receives a gradient in
every step and plain ``strategy="ddp"`` works.

* phase 1 and 3 iterate over cells (scvi-tools' ``DataSplitter``);
* phase 2 iterates over genes (:class:`GeneDataModule`), the feature VAE learning to
  reproduce the free last layer of phase 1.
"""

from __future__ import annotations

import torch
from lightning.pytorch import LightningDataModule
from torch.utils.data import DataLoader, TensorDataset

from multiviz.train._lean_plan import LeanTrainingPlan

#: Names of the three training steps (history ``phase`` column, progress bar).
PHASE_NAMES = {1: "cell_pretrain", 2: "feature_pretrain", 3: "joint"}


class GeneDataModule(LightningDataModule):
    """Minibatches of gene indices for phase 2 (Lightning adds a distributed sampler)."""

    def __init__(self, n_genes: int, batch_size: int, seed: int = 0):
        super().__init__()
        self.n_genes = n_genes
        self.n_train = n_genes
        self.n_val = 0
        self.batch_size = batch_size
        self.seed = seed

    def train_dataloader(self) -> DataLoader:
        """Shuffled gene indices."""
        generator = torch.Generator().manual_seed(self.seed)
        return DataLoader(
            TensorDataset(torch.arange(self.n_genes)),
            batch_size=self.batch_size,
            shuffle=True,
            generator=generator,
        )


class SIVAETrainingPlan(LeanTrainingPlan):
    """:class:`LeanTrainingPlan` for one siVAE phase.

    Parameters
    ----------
    module
        A :class:`~multiviz.models.sivae._module.SIVAEModule` already switched to
        ``phase`` (``module.set_phase``).
    phase
        1 (cell VAE with free last layer), 2 (feature VAE) or 3 (joint).
    n_epochs_kl_warmup
        KL warm-up; ``None`` (default) keeps the KL weight at 1 from the first step.
        The reference implementation leaves the KL weight at 0 when pre-training is
        skipped; the ELBO of the paper (eq. 12) has weight 1.
    **kwargs
        Passed to :class:`scvi.train.TrainingPlan` (``lr``, ``weight_decay``, ...).
    """

    def __init__(self, module, *, phase: int = 3, n_epochs_kl_warmup: int | None = None, **kwargs):
        super().__init__(module, n_epochs_kl_warmup=n_epochs_kl_warmup, **kwargs)
        self.phase = phase

    def on_train_epoch_start(self) -> None:
        """Name the step in scvi-tools' progress bar (``siVAE step 2/3, epoch 5/50``)."""
        bar = getattr(self.trainer.progress_bar_callback, "main_progress_bar", None)
        if bar is not None and hasattr(bar, "set_description"):
            name = PHASE_NAMES[self.phase]
            bar.set_description(
                f"siVAE step {self.phase}/3 ({name}), epoch "
                f"{self.current_epoch + 1}/{self.trainer.max_epochs}"
            )

    def on_train_start(self) -> None:
        """Per-phase set-up once the module sits on its training device.

        Phase 2 starts the scale of its Gaussian over ``W_free`` at the overall SD of
        ``W_free``; phase 3 fills the gene cache used by gene minibatching.
        """
        if self.phase == 2:
            with torch.no_grad():
                sd = self.module.w_free.std().clamp_min(1e-6)
                self.module.w_log_scale.copy_(torch.log(sd))
        if self.phase == 3 and self.module.gene_batch_size is not None:
            self.module.refresh_cache()

    def training_step(self, batch, batch_idx):
        """Phase 2 draws gene minibatches; phases 1 and 3 use the cell batch."""
        kl_weight = float(self.kl_weight)
        if self.phase == 2:
            (idx,) = batch
            out = self.module.feature_pretrain_loss(idx, kl_weight=kl_weight)
        else:
            if "kl_weight" in self.loss_kwargs:
                self.loss_kwargs["kl_weight"] = kl_weight
            _, _, out = self.forward(batch, loss_kwargs=self.loss_kwargs)
        self._accumulate("train", out)
        return out.loss
