"""Minibatch streams of the coupled autoencoder: a ``DataSplitter`` over the stack's cells.

Each step gathers its cells from the modalities' own matrices (:class:`~._blocks.
CoupledBatcher`) and makes only them dense on the training device; no ``DataLoader`` per
step (``SCVI-NOTES.md``: per-step overhead dominates on Patch-seq sized data).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from scvi.dataloaders import DataSplitter
from scvi.model._utils import parse_device_args

from ._blocks import CoupledBatcher
from ._data import batcher_of

__all__ = ["CoupledDataSplitter"]


class _IndexBatches:
    """Iterable of minibatch dicts gathered from the modalities by cell index.

    ``n_steps`` batches per pass (an "epoch"); training draws consecutive chunks of random
    permutations (so every batch holds distinct cells and mixes paired and unpaired cells at
    their population rate), validation walks the cells in order.

    Under DDP (``world`` processes) every process draws the same permutations in chunks of
    ``world * batch_size`` cells and takes chunk ``rank``: each process's minibatch has
    ``batch_size`` distinct cells, so the latent batch norm and the coupling's singular
    values see as many cells as on one process; the step averages ``world`` minibatches.
    """

    def __init__(
        self,
        batcher: CoupledBatcher,
        indices: np.ndarray,
        batch_size: int,
        *,
        device=None,
        n_steps: int | None = None,
        seed: int | None = None,
        rank: int = 0,
        world: int = 1,
    ):
        self.batcher, self.indices, self.device = batcher, np.asarray(indices), device
        self.n = self.indices.size
        self.batch_size = min(batch_size, self.n)
        self.rank, self.world = int(rank), int(world)
        self._draw = min(self.batch_size * self.world, self.n)
        self.n_steps = n_steps
        self.generator = None
        if seed is not None:
            self.generator = torch.Generator().manual_seed(seed)
            self._perm = torch.empty(0, dtype=torch.long)
            self._pos = 0

    def __len__(self) -> int:
        if self.n_steps is not None:
            return self.n_steps
        return -(-self.n // self.batch_size)

    def _next_random(self) -> np.ndarray:
        if self._pos + self._draw > self._perm.numel():
            self._perm = torch.randperm(self.n, generator=self.generator)
            self._pos = 0
        pos = self._perm[self._pos : self._pos + self._draw]
        self._pos += self._draw
        if self.world > 1:
            pos = pos.tensor_split(self.world)[self.rank]
        return pos.numpy()

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        for step in range(len(self)):
            if self.generator is None:
                pos = np.arange(step * self.batch_size, min((step + 1) * self.batch_size, self.n))
            else:
                pos = self._next_random()
            yield self.batcher.batch(self.indices[pos], self.device)


class CoupledDataSplitter(DataSplitter):
    """:class:`~scvi.dataloaders.DataSplitter` streaming minibatches from the modalities.

    The reference implementation trains for epochs of a fixed number of minibatch steps
    (500 steps of batch 200) rather than passes over the data; ``steps_per_epoch`` sets that
    number. Each step gathers its cells from the modalities and makes only them dense on
    the training device (no ``DataLoader`` per step: ``SCVI-NOTES.md``, per-step overhead
    dominates on Patch-seq sized data).
    """

    def __init__(
        self,
        adata_manager,
        *,
        batch_size: int,
        steps_per_epoch: int = 100,
        seed: int = 0,
        accelerator: str = "auto",
        device: int | str = "auto",
        external_indexing=None,
    ):
        super().__init__(adata_manager, external_indexing=external_indexing, batch_size=batch_size)
        self.batch_size = batch_size
        self.steps_per_epoch = steps_per_epoch
        self.seed = seed
        _, _, self.device = parse_device_args(
            accelerator=accelerator, devices=device, return_device="torch"
        )

    def setup(self, stage: str | None = None):
        """Split indices and link the modalities' values for streaming."""
        super().setup(stage)
        self.batcher = batcher_of(self.adata_manager.adata)

    def _placement(self) -> tuple:
        """Training device, rank and number of processes (from the Lightning trainer)."""
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return self.device, 0, 1
        return trainer.strategy.root_device, int(trainer.global_rank), int(trainer.world_size)

    def train_dataloader(self):
        """Random minibatches, ``steps_per_epoch`` per epoch (this process's share)."""
        device, rank, world = self._placement()
        return _IndexBatches(
            self.batcher,
            self.train_idx,
            self.batch_size,
            device=device,
            n_steps=self.steps_per_epoch,
            seed=self.seed,
            rank=rank,
            world=world,
        )

    def val_dataloader(self):
        """The validation cells in order (an empty list without a validation split)."""
        if len(self.val_idx) == 0:
            return []
        device = self._placement()[0]
        return _IndexBatches(self.batcher, self.val_idx, self.batch_size, device=device)
