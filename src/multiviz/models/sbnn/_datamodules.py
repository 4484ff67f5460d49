"""The sBNN's Lightning data modules: the plan draws its own minibatches.

:class:`EpochDataModule` gives one item per epoch (the whole epoch runs inside one
training step); :class:`StepDataModule` gives one item per minibatch, for DDP.
"""

from __future__ import annotations

from lightning import LightningDataModule
from torch.utils.data import DataLoader


class EpochDataModule(LightningDataModule):
    """One item per epoch: the plan draws its own minibatches from device tensors."""

    def train_dataloader(self):
        """A loader with a single dummy batch."""
        return DataLoader([0], batch_size=1)


class StepDataModule(LightningDataModule):
    """``n_steps`` items per epoch: one Lightning step per minibatch (DDP).

    Every process gets all ``n_steps`` items (Lightning must not shard them:
    ``use_distributed_sampler=False``); the plan picks each process's rows.
    """

    def __init__(self, n_steps: int):
        super().__init__()
        self.n_steps = int(n_steps)

    def train_dataloader(self):
        """A loader of the step numbers."""
        return DataLoader(range(self.n_steps), batch_size=1)
