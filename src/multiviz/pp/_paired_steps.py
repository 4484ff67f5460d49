"""Validation and writing steps of :func:`multiviz.pp.prepare_paired` (fitting stays there)."""

from __future__ import annotations

import re
from typing import Any, NamedTuple

import numpy as np
from anndata import AnnData
from mudata import MuData
from scipy import sparse

from .. import _logging as logg
from .._mudata import quiet_update
from .._validate import (
    InputError,
    check_counts,
    check_finite,
    check_min_obs,
    check_n_top,
    check_paired,
    get_layer,
    get_modality,
    resolve_target,
)
from .._warnings import DataWarning
from ._args import all_excluded_error, excluded_mask
from ._checks import check_log_features, check_some_varying
from ._targets import resolve_target_transform


class CheckedInputs(NamedTuple):
    """What :func:`read_paired`, :func:`kept_targets` and :func:`candidate_genes` resolved."""

    rna: AnnData
    y: str  # the resolved target modality
    target: AnnData
    counts: Any  # raw counts of ``rna`` (dense or sparse)
    keep: np.ndarray  # cells with complete targets
    y_kept: np.ndarray  # their target values, float64
    transform: str | None  # the resolved target transform
    log_mask: np.ndarray  # target features to log
    excluded: np.ndarray  # technical genes, never predictors
    excluded_names: list[str]
    n_top: int  # genes to select (capped at the candidates)


class FittedValues(NamedTuple):
    """Everything :func:`multiviz.pp.prepare_paired` writes, computed before writing."""

    selected: np.ndarray
    thr: float | None
    target_sum: float
    log2norm: Any
    x_mean: np.ndarray
    x_std: np.ndarray
    x_scaled: np.ndarray
    y_unscaled: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray
    y_scaled: np.ndarray


def read_paired(mdata: MuData, x: str, y: str | None, layer: str | None, drop_nan: bool):
    """The two modalities, the resolved ``y``, the raw counts and the targets (float64)."""
    rna = get_modality(mdata, x, "x")
    y = resolve_target(mdata, y)
    if y == x:
        raise InputError(f"`x` and `y` must be different modalities; both are {x!r}.")
    target = get_modality(mdata, y, "y")
    check_paired(mdata, [x, y], ["`x`", "`y`"])
    counts = get_layer(rna, layer)
    check_counts(counts, f"mdata[{x!r}]" + (f".layers[{layer!r}]" if layer else ".X"))
    y_values = target.X.toarray() if sparse.issparse(target.X) else np.asarray(target.X)
    check_finite(y_values, f"mdata[{y!r}].X", allow_nan=drop_nan, names=target.var_names)
    return rna, y, target, counts, np.array(y_values, dtype=np.float64)


def kept_targets(
    target: AnnData,
    y: str,
    y_values: np.ndarray,
    target_transform: str | None,
    log_features: list[str] | None,
) -> tuple[np.ndarray, np.ndarray, str | None, np.ndarray]:
    """Cells with complete targets, their values, the resolved transform, the features to log."""
    keep = ~np.isnan(y_values).any(axis=1)
    check_min_obs(int(keep.sum()), 3, f"mdata (cells with complete `{y}` targets)")
    y_kept = y_values[keep]
    check_some_varying(y_kept, y)
    transform = resolve_target_transform(
        target_transform, y, y_kept, log_features=bool(log_features)
    )
    log_mask = check_log_features(target, y, y_kept, log_features, transform)
    return keep, y_kept, transform, log_mask


def candidate_genes(
    rna: AnnData,
    x: str,
    n_top_genes: int,
    gene_selection: str,
    pattern: re.Pattern | None,
    exclude_genes: str | None,
    exclude_ribosomal: bool,
) -> tuple[np.ndarray, list[str], int]:
    """Excluded technical genes (mask and names) and the genes to select among the rest."""
    if gene_selection != "none":
        check_n_top(n_top_genes, rna.n_vars)
    excluded = excluded_mask(rna, pattern)
    candidates = ~excluded
    if not candidates.any():
        raise all_excluded_error(rna, x, exclude_genes, exclude_ribosomal)
    n_top = int(n_top_genes)
    if gene_selection != "none" and n_top > int(candidates.sum()):
        logg.warning(
            "    n_top_genes=%d, but only %d genes remain after excluding %d technical genes: "
            "keeping all %d",
            n_top,
            int(candidates.sum()),
            int(excluded.sum()),
            int(candidates.sum()),
            category=DataWarning,
        )
        n_top = int(candidates.sum())
    return excluded, [str(g) for g in rna.var_names[excluded]], n_top


def drop_cells(mdata: MuData, keep: np.ndarray) -> list[str]:
    """Drop the cells outside ``keep`` from every modality; their names."""
    if keep.all():
        return []
    dropped_cells = list(mdata.obs_names[~keep])
    for mod in mdata.mod.values():
        mod._inplace_subset_obs(mod.obs_names.isin(mdata.obs_names[keep]))
    with quiet_update():
        mdata.update()
    return dropped_cells


def write_paired(
    mdata: MuData,
    x: str,
    checked: CheckedInputs,
    fitted: FittedValues,
    *,
    layer: str | None,
    subset: bool,
) -> list[str]:
    """Write the fitted values into ``mdata`` (cells dropped first); the dropped cells."""
    out_rna, out_y = mdata.mod[x], mdata.mod[checked.y]
    dropped_cells = drop_cells(mdata, checked.keep)
    raw_counts = out_rna.layers[layer] if layer is not None else out_rna.X
    out_rna.var["highly_variable"] = fitted.selected
    if subset:
        out_rna._inplace_subset_var(fitted.selected)
        raw_counts = raw_counts[:, fitted.selected]
    out_rna.layers["counts"] = raw_counts
    out_rna.layers["log2norm"] = fitted.log2norm
    out_rna.X = fitted.x_scaled
    out_rna.var["zscore_mean"] = fitted.x_mean
    out_rna.var["zscore_std"] = fitted.x_std
    out_y.layers["raw"] = checked.y_kept.astype(np.float32)
    out_y.layers["unscaled"] = fitted.y_unscaled.astype(np.float32)
    out_y.X = fitted.y_scaled
    out_y.var["log_transformed"] = checked.log_mask
    out_y.var["zscore_mean"] = fitted.y_mean
    out_y.var["zscore_std"] = fitted.y_std
    with quiet_update():
        mdata.update()
    return dropped_cells


def paired_record(
    params: dict, checked: CheckedInputs, fitted: FittedValues, dropped_cells: list[str]
) -> dict:
    """``uns["prepare_paired"]``: ``params`` and what was dropped, excluded and selected."""
    excluded_names = checked.excluded_names
    return {
        "params": params,
        "n_cells_dropped": int((~checked.keep).sum()),
        "dropped_cells": dropped_cells,
        "n_genes_excluded": len(excluded_names),
        "excluded_genes": excluded_names,
        "median_library_size": fitted.target_sum,
        "n_genes_selected": int(fitted.selected.sum()),
    }


def log_paired_summary(
    record: dict,
    n_kept: int,
    gene_selection: str,
    n_genes: int,
    n_features: int,
    y: str,
    transform: str | None,
) -> None:
    """The INFO line of :func:`multiviz.pp.prepare_paired`."""
    excluded_names = record["excluded_genes"]
    logg.info(
        "prepare_paired: kept %d cells (dropped %d with NaN targets), excluded %d technical "
        "genes%s, %d genes selected by %r, median library size %.4g, z-scored %d genes; "
        "%d %s features: %s",
        n_kept,
        record["n_cells_dropped"],
        len(excluded_names),
        f" ({', '.join(excluded_names[:6])}{', ...' if len(excluded_names) > 6 else ''})"
        if excluded_names
        else "",
        record["n_genes_selected"],
        gene_selection,
        record["median_library_size"],
        n_genes,
        n_features,
        y,
        {"clr": "CLR per cell, z-scored", "log1p": "log1p, z-scored", "zscore": "z-scored"}.get(
            transform, "left as they are"
        ),
    )
