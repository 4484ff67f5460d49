"""Data handling for partially paired MuData: a padded stack and a device-backed splitter.

scvi-tools' ``AnnDataManager`` cannot register a MuData whose modalities hold different
cells (``SCVI-NOTES.md``), so the coupled autoencoder trains on a *stack*: one AnnData over
the union of the chosen modalities' cells, ``X`` = the modalities' features side by side
(zeros where a cell lacks a modality or a value), ``layers["observed"]`` = 1 where a value
was measured, ``obsm["presence"]`` = 1 where a cell has a modality (MULTIVI's padding and
mask approach). The stack is built from a copy; the user's MuData is never modified.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from mudata import MuData
from scipy import sparse
from scvi.dataloaders import DeviceBackedDataSplitter

from ..._validate import InputError, check_finite, check_mudata, get_layer, get_modality

__all__ = ["STACK_KEY", "CoupledDataSplitter", "modality_rows", "stack_mudata"]

STACK_KEY = "_coupled_stack"


def modality_rows(mdata: MuData, mod: str) -> np.ndarray:
    """Row of each cell of ``mdata`` in ``mdata[mod]`` (-1 where the cell lacks ``mod``)."""
    return np.asarray(mdata.obsmap[mod], dtype=np.int64) - 1


def check_modalities(mdata: MuData, modalities: Sequence[str]) -> list[str]:
    """Validate the modality names: at least two, distinct, all present."""
    check_mudata(mdata)
    if isinstance(modalities, str) or len(modalities) < 2:
        raise InputError(
            f"`modalities={modalities!r}` must name at least two modalities to couple; "
            f"available: {list(mdata.mod)}."
        )
    if len(set(modalities)) != len(modalities):
        raise InputError(f"`modalities={modalities!r}` names a modality twice.")
    for mod in modalities:
        get_modality(mdata, mod, "modalities")
    if not mdata.obs_names.is_unique:
        raise InputError("`mdata.obs_names` are not unique; run `mdata.obs_names_make_unique()`.")
    return list(modalities)


def stack_mudata(
    mdata: MuData,
    modalities: Sequence[str],
    layers: Mapping[str, str | None] | None = None,
) -> AnnData:
    """Build the padded stack of ``modalities`` (see module docstring); validates first.

    Raises :class:`~multiviz.InputError` for: fewer than two modalities, non-numeric or
    infinite values, a pair of modalities without common cells, a present cell with no
    measured value in a modality, a feature never measured.
    """
    modalities = check_modalities(mdata, modalities)
    layers = dict(layers or {})
    unknown = set(layers) - set(modalities)
    if unknown:
        raise InputError(f"`layers` names modalities that are not coupled: {sorted(unknown)}.")
    rows = {mod: modality_rows(mdata, mod) for mod in modalities}
    keep = np.zeros(mdata.n_obs, dtype=bool)
    for r in rows.values():
        keep |= r >= 0
    for a in range(len(modalities)):
        for b in range(a + 1, len(modalities)):
            n_pair = int(((rows[modalities[a]] >= 0) & (rows[modalities[b]] >= 0)).sum())
            if n_pair < 2:
                raise InputError(
                    f"Modalities {modalities[a]!r} and {modalities[b]!r} share {n_pair} cells; "
                    "coupling needs paired cells (the same obs_names in both). Check that the "
                    "obs_names of the modalities match."
                )
    n_cells = int(keep.sum())
    blocks, observed, names = [], [], []
    presence = np.zeros((n_cells, len(modalities)), dtype=np.float32)
    for k, mod in enumerate(modalities):
        adata = mdata.mod[mod]
        arg = f"mdata[{mod!r}]" + (f".layers[{layers[mod]!r}]" if layers.get(mod) else ".X")
        X = get_layer(adata, layers.get(mod), f"layers[{mod!r}]")
        check_finite(X, arg, allow_nan=True)
        X = X.toarray() if sparse.issparse(X) else np.asarray(X)
        X = X.astype(np.float32)
        r = rows[mod][keep]
        here = r >= 0
        block = np.zeros((n_cells, adata.n_vars), dtype=np.float32)
        block[here] = X[r[here]]
        obs = np.zeros_like(block)
        obs[here] = ~np.isnan(block[here])
        empty = here & (obs.sum(axis=1) == 0)
        if empty.any():
            first = mdata.obs_names[keep][np.flatnonzero(empty)[0]]
            raise InputError(
                f"{int(empty.sum())} cells of {arg} have no measured value (all NaN), e.g. "
                f"{first!r}; remove them from modality {mod!r}."
            )
        never = obs.sum(axis=0) == 0
        if never.any():
            raise InputError(
                f"{int(never.sum())} features of {arg} are NaN in every cell, e.g. "
                f"{adata.var_names[np.flatnonzero(never)[0]]!r}; drop them."
            )
        blocks.append(np.nan_to_num(block, nan=0.0))
        observed.append(obs)
        presence[:, k] = here
        names.append(mod + ":" + adata.var_names.astype(str))
    stack = AnnData(
        X=np.hstack(blocks),
        obs=pd.DataFrame(index=mdata.obs_names[keep].astype(str)),
        var=pd.DataFrame(index=np.concatenate(names)),
        layers={"observed": np.hstack(observed)},
        obsm={"presence": presence},
    )
    stack.uns[STACK_KEY] = {
        "modalities": list(modalities),
        "n_vars": [int(mdata.mod[m].n_vars) for m in modalities],
        "layers": {m: layers.get(m) or "" for m in modalities},
    }
    return stack


class _IndexBatches:
    """Iterable of minibatch dicts drawn from device tensors by index.

    ``n_steps`` batches per pass (an "epoch"); training draws consecutive chunks of random
    permutations (so every batch holds distinct cells and mixes paired and unpaired cells at
    their population rate), validation walks the cells in order.
    """

    def __init__(
        self,
        tensors: dict[str, torch.Tensor],
        batch_size: int,
        *,
        n_steps: int | None = None,
        seed: int | None = None,
    ):
        self.tensors = tensors
        self.n = next(iter(tensors.values())).shape[0]
        self.batch_size = min(batch_size, self.n)
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

    def _next_random(self) -> torch.Tensor:
        if self._pos + self.batch_size > self._perm.numel():
            self._perm = torch.randperm(self.n, generator=self.generator)
            self._pos = 0
        idx = self._perm[self._pos : self._pos + self.batch_size]
        self._pos += self.batch_size
        return idx

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        device = next(iter(self.tensors.values())).device
        for step in range(len(self)):
            if self.generator is None:
                idx = torch.arange(
                    step * self.batch_size, min((step + 1) * self.batch_size, self.n)
                )
            else:
                idx = self._next_random()
            idx = idx.to(device)
            yield {k: v[idx] for k, v in self.tensors.items()}


class CoupledDataSplitter(DeviceBackedDataSplitter):
    """:class:`~scvi.dataloaders.DeviceBackedDataSplitter` with a fixed number of steps per epoch.

    The reference implementation trains for epochs of a fixed number of minibatch steps
    (500 steps of batch 200) rather than passes over the data; ``steps_per_epoch`` sets that
    number. The whole stack sits on the training device; each step slices it by index,
    avoiding a ``DataLoader`` per step (``SCVI-NOTES.md``: per-step overhead dominates on
    Patch-seq sized data).
    """

    def __init__(self, adata_manager, *, steps_per_epoch: int = 100, seed: int = 0, **kwargs):
        super().__init__(adata_manager, **kwargs)
        self.steps_per_epoch = steps_per_epoch
        self.seed = seed

    def train_dataloader(self):
        """Random minibatches, ``steps_per_epoch`` per epoch."""
        return _IndexBatches(
            self.train_tensor_dict,
            self.batch_size,
            n_steps=self.steps_per_epoch,
            seed=self.seed,
        )

    def val_dataloader(self):
        """The validation cells in order (an empty list without a validation split)."""
        if self.val_tensor_dict is None:
            return []
        return _IndexBatches(self.val_tensor_dict, self.batch_size)
