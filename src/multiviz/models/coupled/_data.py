"""The cells of a partially paired MuData as one registered AnnData, without copying the data.

scvi-tools' ``AnnDataManager`` cannot register a MuData whose modalities hold different
cells (``SCVI-NOTES.md``), so the coupled autoencoder registers a *stack*: an AnnData over
the union of the chosen modalities' cells whose ``var_names`` are the modalities' features
side by side (``mod:feature``) and whose ``obsm["presence"]`` is 1 where a cell has a
modality. The stack holds **no copy of the values**: its ``X`` is an empty sparse
placeholder of the right shape, and the values stay in the modalities' own matrices, read
through :class:`~._blocks.CoupledBatcher` (one block per modality: a reference to the
matrix and each cell's row in it). Minibatches gather their rows from every block and
are made dense one batch at a time, with per-batch presence and NaN masks, so memory
grows with the minibatch, not with the cells. The user's MuData is never modified.

A stack written with a saved model (``save(save_anndata=True)``) holds the values in its
own ``X`` (:func:`materialise`); loading it reads them from there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from anndata import AnnData
from mudata import MuData
from scipy import sparse

from ..._validate import InputError, check_numeric, get_layer
from ._blocks import CoupledBatcher, ModalityBlock, read_rows
from ._checks import check_modalities

__all__ = [
    "STACK_KEY",
    "batcher_of",
    "dense_batch",
    "materialise",
    "modality_rows",
    "stack_mudata",
]

STACK_KEY = "_coupled_stack"
_BATCHER = "_multiviz_coupled_batcher"  # attribute of a stack AnnData: its data blocks
_CHUNK = 65_536


def modality_rows(mdata: MuData, mod: str) -> np.ndarray:
    """Row of each cell of ``mdata`` in ``mdata[mod]`` (-1 where the cell lacks ``mod``)."""
    return np.asarray(mdata.obsmap[mod], dtype=np.int64) - 1


def _feature_columns(adata: AnnData, mod: str, wanted: Sequence[str]) -> np.ndarray | None:
    """Columns of ``adata`` holding the features ``wanted`` (``None``: all, in order)."""
    wanted = pd.Index(np.asarray(wanted).astype(str))
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
            f"`adata[{mod!r}].var_names` are not unique; run `var_names_make_unique()` first."
        )
    if np.array_equal(cols, np.arange(adata.n_vars)):
        return None  # the training features, in order: read the matrix as it is
    return cols.astype(np.int64)


def _scan(X, cols: np.ndarray | None, arg: str) -> tuple[np.ndarray, np.ndarray]:
    """Check the values chunk by chunk; per-row "all NaN" flags and per-column NaN counts.

    Raises for non-numeric or infinite values. Reads ``_CHUNK`` rows at a time (works
    for in-memory and on-disk matrices; never densifies more than a chunk).
    """
    n_rows, n_all = X.shape
    n_feat = n_all if cols is None else cols.size
    empty = np.zeros(n_rows, dtype=bool)
    col_nan = np.zeros(n_all, dtype=np.int64)
    selected = None
    if cols is not None:
        selected = np.zeros(n_all, dtype=bool)
        selected[cols] = True
    n_inf = 0
    for start in range(0, n_rows, _CHUNK):
        chunk = X[start : start + _CHUNK]
        check_numeric(chunk, arg)
        if sparse.issparse(chunk):
            chunk = sparse.csr_matrix(chunk)
            if chunk.dtype.kind != "f":
                continue
            n_inf += int(np.isinf(chunk.data).sum())
            nan = np.isnan(chunk.data)
            if not nan.any():
                continue
            row = np.repeat(np.arange(chunk.shape[0]), np.diff(chunk.indptr))[nan]
            col = chunk.indices[nan]
            if selected is not None:
                row = row[selected[col]]
            col_nan += np.bincount(col, minlength=n_all)
            per_row = np.bincount(row, minlength=chunk.shape[0])
            empty[start : start + chunk.shape[0]] = per_row == n_feat
        else:
            chunk = np.asarray(chunk)
            if chunk.dtype.kind != "f":
                continue
            n_inf += int(np.isinf(chunk).sum())
            nan = np.isnan(chunk)
            col_nan += nan.sum(axis=0)
            sub = nan if cols is None else nan[:, cols]
            empty[start : start + chunk.shape[0]] = sub.all(axis=1) & (n_feat > 0)
    if n_inf:
        raise InputError(f"`{arg}` contains {n_inf} infinite values; replace or drop them.")
    return empty, col_nan if cols is None else col_nan[cols]


def stack_mudata(
    mdata: MuData,
    modalities: Sequence[str],
    layers: Mapping[str, str | None] | None = None,
    var_names: Mapping[str, Sequence[str]] | None = None,
) -> AnnData:
    """Build the stack of ``modalities`` (see module docstring); validates first.

    ``var_names`` (``{modality: feature names}``, e.g. a trained model's features) selects
    and orders each modality's features by name; a missing name raises, extra features are
    ignored. Raises :class:`~multiviz.InputError` for: fewer than two modalities, non-numeric
    or infinite values, a pair of modalities without common cells (unless ``var_names`` is
    given: new cells need no pairing), a present cell with no measured value in a modality,
    a feature never measured (training only). The values are not copied: the stack reads
    them from the modalities' matrices (:func:`batcher_of`).
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
    all_kept = bool(keep.all())
    n_cells = int(keep.sum())
    blocks, names = [], []
    presence = np.zeros((n_cells, len(modalities)), dtype=np.float32)
    start = 0
    for k, mod in enumerate(modalities):
        adata = mdata.mod[mod]
        arg = f"mdata[{mod!r}]" + (f".layers[{layers[mod]!r}]" if layers.get(mod) else ".X")
        X = get_layer(adata, layers.get(mod), f"layers[{mod!r}]")
        cols = None if var_names is None else _feature_columns(adata, mod, var_names[mod])
        empty, col_nan = _scan(X, cols, arg)
        if empty.any():
            first = adata.obs_names[np.flatnonzero(empty)[0]]
            raise InputError(
                f"{int(empty.sum())} cells of {arg} have no measured value (all NaN), e.g. "
                f"{first!r}; remove them from modality {mod!r}."
            )
        never = col_nan == X.shape[0]
        if never.any() and var_names is None:
            raise InputError(
                f"{int(never.sum())} features of {arg} are NaN in every cell, e.g. "
                f"{adata.var_names[np.flatnonzero(never)[0]]!r}; drop them."
            )
        r = rows[mod] if all_kept else rows[mod][keep]
        presence[:, k] = r >= 0
        in_order = X.shape[0] == n_cells and np.array_equal(r, np.arange(n_cells))
        block = ModalityBlock(X, None if in_order else r, cols, start)
        blocks.append(block)
        start += block.n_vars
        feats = adata.var_names.astype(str)
        names.append(mod + ":" + (feats if cols is None else feats[cols]))
    obs_names = mdata.obs_names if all_kept else mdata.obs_names[keep]
    stack = AnnData(
        X=sparse.csr_matrix((n_cells, start), dtype=np.float32),  # placeholder: no values
        obs=pd.DataFrame(index=obs_names.astype(str)),
        var=pd.DataFrame(index=np.concatenate(names)),
        obsm={"presence": presence},
    )
    n_vars = [int(b.n_vars) for b in blocks]
    stack.uns[STACK_KEY] = {
        "modalities": list(modalities),
        "n_vars": n_vars,
        "layers": {m: layers.get(m) or "" for m in modalities},
        "values": "modalities",
    }
    setattr(stack, _BATCHER, CoupledBatcher(blocks, presence, n_vars))
    return stack


def batcher_of(stack: AnnData) -> CoupledBatcher:
    """The :class:`~._blocks.CoupledBatcher` reading the values of ``stack``'s cells.

    A stack built by :func:`stack_mudata` carries it; a stack with its own values (a
    saved model's data, :func:`materialise`, or one written by an earlier version with
    NaN values stored as 0 plus ``layers["missing"]``) reads them from its ``X``.
    """
    batcher = getattr(stack, _BATCHER, None)
    if batcher is not None and batcher.n_obs == stack.n_obs:
        return batcher
    info = stack.uns[STACK_KEY]
    if info.get("values", "stack") == "modalities":
        raise InputError(
            "This stack of the coupled autoencoder lost the link to its MuData (it was "
            "copied or written to disk without its values). Pass the MuData itself, e.g. "
            "`CoupledAutoencoder.load(path, adata=mdata)`."
        )
    X = stack.X
    if sparse.issparse(X) and X.format != "csr":
        X = sparse.csr_matrix(X)
    missing = stack.layers["missing"] if "missing" in stack.layers else None
    if missing is not None:
        missing = sparse.csr_matrix(missing, dtype=np.float32)
    block = ModalityBlock(X, None, None, 0)
    batcher = CoupledBatcher([block], stack.obsm["presence"], info["n_vars"], missing)
    setattr(stack, _BATCHER, batcher)
    return batcher


def materialise(stack: AnnData, chunk: int = 4096) -> AnnData:
    """A copy of ``stack`` holding its values in ``X`` (CSR; NaN kept), for writing to disk.

    Absent cells have empty rows. Built ``chunk`` cells at a time; the result itself is a
    copy of all cells, so this runs only when the data are written with a model.
    """
    batcher = batcher_of(stack)
    parts = []
    for idx in batcher.chunks(chunk):
        x = np.zeros((idx.size, batcher.n_features), dtype=np.float32)
        for block in batcher.blocks:
            here, rows = batcher.present(block, idx)
            x[here, block.start : block.start + block.n_vars] = read_rows(
                block.matrix, rows, block.cols
            )
        parts.append(sparse.csr_matrix(x))
    X = sparse.vstack(parts, format="csr") if parts else sparse.csr_matrix(stack.shape)
    out = AnnData(
        X=X,
        obs=pd.DataFrame(index=stack.obs_names.copy()),
        var=pd.DataFrame(index=stack.var_names.copy()),
        obsm={"presence": np.asarray(stack.obsm["presence"], dtype=np.float32)},
    )
    out.uns[STACK_KEY] = {**stack.uns[STACK_KEY], "values": "stack"}
    return out


def dense_batch(stack: AnnData, idx=None) -> dict[str, torch.Tensor]:
    """All (or the ``idx``) cells of a stack as dense tensors (small data and tests)."""
    b = batcher_of(stack)
    return b.batch(np.arange(b.n_obs) if idx is None else idx)
