"""Data handling for partially paired MuData: a sparse stack and streamed minibatches.

scvi-tools' ``AnnDataManager`` cannot register a MuData whose modalities hold different
cells (``SCVI-NOTES.md``), so the coupled autoencoder trains on a *stack*: one AnnData over
the union of the chosen modalities' cells, ``X`` = the modalities' features side by side as
a sparse CSR matrix (empty rows where a cell lacks a modality; MULTIVI's padding and mask
approach without the dense padding), ``layers["missing"]`` = a sparse mask of the values
that are NaN in a present cell, ``obsm["presence"]`` = 1 where a cell has a modality.
Minibatches are sliced from the sparse stack and made dense one batch at a time
(:class:`StackBatcher`), with the per-batch "observed" mask built from the presence and
missing masks, so memory grows with the minibatch, not with a dense copy of all cells.
The stack is built from a copy; the user's MuData is never modified.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from mudata import MuData
from scipy import sparse
from scvi.dataloaders import DataSplitter
from scvi.model._utils import parse_device_args

from ..._validate import InputError, check_finite, check_mudata, get_layer, get_modality

__all__ = [
    "STACK_KEY",
    "CoupledDataSplitter",
    "StackBatcher",
    "dense_batch",
    "modality_rows",
    "stack_mudata",
]

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
    var_names: Mapping[str, Sequence[str]] | None = None,
) -> AnnData:
    """Build the padded stack of ``modalities`` (see module docstring); validates first.

    ``var_names`` (``{modality: feature names}``, e.g. a trained model's features) selects
    and orders each modality's features by name; a missing name raises, extra features are
    ignored. Raises :class:`~multiviz.InputError` for: fewer than two modalities, non-numeric
    or infinite values, a pair of modalities without common cells (unless ``var_names`` is
    given: new cells need no pairing), a present cell with no measured value in a modality,
    a feature never measured (training only).
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
    for a in range(len(modalities) if var_names is None else 0):
        for b in range(a + 1, len(modalities)):
            n_pair = int(((rows[modalities[a]] >= 0) & (rows[modalities[b]] >= 0)).sum())
            if n_pair < 2:
                raise InputError(
                    f"Modalities {modalities[a]!r} and {modalities[b]!r} share {n_pair} cells; "
                    "coupling needs paired cells (the same obs_names in both). Check that the "
                    "obs_names of the modalities match."
                )
    n_cells = int(keep.sum())
    blocks, missing, names = [], [], []
    presence = np.zeros((n_cells, len(modalities)), dtype=np.float32)
    for k, mod in enumerate(modalities):
        adata = mdata.mod[mod]
        arg = f"mdata[{mod!r}]" + (f".layers[{layers[mod]!r}]" if layers.get(mod) else ".X")
        X = get_layer(adata, layers.get(mod), f"layers[{mod!r}]")
        check_finite(X, arg, allow_nan=True)
        cols = None
        if var_names is not None:
            wanted = pd.Index(np.asarray(var_names[mod]).astype(str))
            cols = adata.var_names.astype(str).get_indexer(wanted)
            if (cols < 0).any():
                miss = list(wanted[cols < 0])
                raise InputError(
                    f"{len(miss)} of the {len(wanted)} features the model was trained on are "
                    f"missing from `adata[{mod!r}]`, e.g. {miss[:5]}. Add them (matched by "
                    "var_names; extra features are ignored)."
                )
            if adata.n_vars and not adata.var_names.is_unique:
                raise InputError(
                    f"`adata[{mod!r}].var_names` are not unique; run "
                    "`var_names_make_unique()` first."
                )
        r = rows[mod][keep]
        here = r >= 0
        block, nan = _present_rows(X, r, here, cols)
        n_feat = block.shape[1]
        empty = here & (np.asarray(nan.getnnz(axis=1)).ravel() == n_feat)
        if empty.any():
            first = mdata.obs_names[keep][np.flatnonzero(empty)[0]]
            raise InputError(
                f"{int(empty.sum())} cells of {arg} have no measured value (all NaN), e.g. "
                f"{first!r}; remove them from modality {mod!r}."
            )
        never = np.asarray(nan.getnnz(axis=0)).ravel() == int(here.sum())
        if never.any() and var_names is None:
            raise InputError(
                f"{int(never.sum())} features of {arg} are NaN in every cell, e.g. "
                f"{adata.var_names[np.flatnonzero(never)[0]]!r}; drop them."
            )
        blocks.append(block)
        missing.append(nan)
        presence[:, k] = here
        feats = adata.var_names.astype(str)
        names.append(mod + ":" + (feats if cols is None else feats[cols]))
    stack = AnnData(
        X=sparse.hstack(blocks, format="csr", dtype=np.float32),
        obs=pd.DataFrame(index=mdata.obs_names[keep].astype(str)),
        var=pd.DataFrame(index=np.concatenate(names)),
        layers={"missing": sparse.hstack(missing, format="csr", dtype=np.float32)},
        obsm={"presence": presence},
    )
    stack.uns[STACK_KEY] = {
        "modalities": list(modalities),
        "n_vars": [int(b.shape[1]) for b in blocks],
        "layers": {m: layers.get(m) or "" for m in modalities},
    }
    return stack


def _present_rows(X, r: np.ndarray, here: np.ndarray, cols) -> tuple[sparse.csr_matrix, ...]:
    """Stack-ordered CSR block of one modality and the CSR mask of its NaN values.

    Absent cells get empty rows, NaN values become 0; only present cells' rows are touched.
    A sparse modality that already holds every stack cell in stack order (e.g. the RNA of
    a partially paired MuData) is used as it is (no copy unless it holds NaN values).
    """
    n_cells = r.size
    src = r[here]
    in_order = bool(here.all()) and np.array_equal(src, np.arange(n_cells))
    if sparse.issparse(X):
        sub = sparse.csr_matrix(X)
        if not (in_order and sub.shape[0] == n_cells):
            sub = sub[src]
        if cols is not None:
            sub = sub[:, cols]
        if sub.dtype != np.float32:
            sub = sub.astype(np.float32)
    else:
        dense = np.asarray(X)[src]
        if cols is not None:
            dense = dense[:, cols]
        sub = sparse.csr_matrix(np.asarray(dense, dtype=np.float32))
    nan_pos = np.isnan(sub.data)
    if nan_pos.any():
        sub = sub.copy()  # never modify the user's matrix
        nan = sub.copy()
        nan.data = nan_pos.astype(np.float32)
        nan.eliminate_zeros()
        sub.data[nan_pos] = 0.0
        sub.eliminate_zeros()
    else:
        nan = sparse.csr_matrix(sub.shape, dtype=np.float32)
    if in_order:
        return sub, nan
    # place the present rows into the stack's row order (absent cells: empty rows)
    place = sparse.csr_matrix(
        (np.ones(src.size, np.float32), (np.flatnonzero(here), np.arange(src.size))),
        shape=(n_cells, src.size),
    )
    return (place @ sub).tocsr(), (place @ nan).tocsr()


class StackBatcher:
    """Dense minibatch tensors from the sparse stack: ``X``, ``observed``, ``presence``."""

    def __init__(self, stack: AnnData):
        self.X = sparse.csr_matrix(stack.X, dtype=np.float32)
        self.missing = sparse.csr_matrix(stack.layers["missing"], dtype=np.float32)
        self.presence = np.asarray(stack.obsm["presence"], dtype=np.float32)
        n_vars = stack.uns[STACK_KEY]["n_vars"]
        self.arm_of_feature = np.repeat(np.arange(len(n_vars)), n_vars)
        self.n_obs = self.X.shape[0]

    def batch(self, idx: np.ndarray, device=None) -> dict[str, torch.Tensor]:
        """The rows ``idx`` as dense float32 tensors (on ``device``)."""
        idx = np.asarray(idx)
        pres = self.presence[idx]
        observed = pres[:, self.arm_of_feature]
        if self.missing.nnz:
            observed = observed - self.missing[idx].toarray()
        out = {
            "X": torch.from_numpy(self.X[idx].toarray()),
            "observed": torch.from_numpy(np.ascontiguousarray(observed)),
            "presence": torch.from_numpy(np.ascontiguousarray(pres)),
        }
        if device is not None:
            out = {k: v.to(device) for k, v in out.items()}
        return out


def dense_batch(stack: AnnData, idx=None) -> dict[str, torch.Tensor]:
    """All (or the ``idx``) cells of a stack as dense tensors (small data and tests)."""
    b = StackBatcher(stack)
    return b.batch(np.arange(b.n_obs) if idx is None else idx)


class _IndexBatches:
    """Iterable of minibatch dicts streamed from the sparse stack by index.

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
        batcher: StackBatcher,
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
    """:class:`~scvi.dataloaders.DataSplitter` streaming minibatches from the sparse stack.

    The reference implementation trains for epochs of a fixed number of minibatch steps
    (500 steps of batch 200) rather than passes over the data; ``steps_per_epoch`` sets that
    number. Each step slices its cells from the sparse stack and makes only them dense on
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
        """Split indices and wrap the stack for streaming."""
        super().setup(stage)
        self.batcher = StackBatcher(self.adata_manager.adata)

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
