"""Up-front checks of :func:`multiviz.pp.prepare_paired`: its arguments and its targets.

The argument checks run before any data is read, so a bad argument never leaves a
half-processed object; the target checks run on the target values once they are read.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from anndata import AnnData

from .._validate import (
    InputError,
    check_bool,
    check_float,
    check_int,
    check_mudata,
    check_not_backed,
    check_option,
    check_pattern,
    check_str,
    check_unique_names,
    check_writable,
)
from ._args import RIBOSOMAL_GENES
from ._targets import TARGET_TRANSFORMS

GENE_SELECTIONS = ("detection", "seurat_v3", "seurat", "cell_ranger", "none")

#: The hint of a backed (on-disk) ``mdata`` or modality: preprocessing needs it in memory.
BACKED_FIX = (
    "`{name}` is backed (opened with `backed=True`/`'r'`); preprocessing reads every "
    "count and needs the data in memory. Load it first: `{arg} = mudata.read_h5mu(path)` "
    "(or `{arg} = {arg}.to_memory()`)."
)


def check_prepare_args(
    mdata: Any,
    *,
    x: Any,
    y: Any,
    n_top_genes: Any,
    gene_selection: Any,
    threshold: Any,
    layer: Any,
    target_transform: Any,
    log_features: Any,
    exclude_genes: Any,
    exclude_ribosomal: Any,
    drop_nan: Any,
    subset: Any,
    min_cells: Any,
    copy: Any,
) -> tuple[list[str], re.Pattern | None]:
    """Validate the arguments of ``prepare_paired`` (types, ranges, containers).

    Returns
    -------
    ``log_features`` as a list and the compiled gene-exclusion pattern (None: keep all).
    """
    check_mudata(mdata)
    check_bool(copy, "copy")
    check_not_backed(mdata, "mdata", fix=BACKED_FIX)
    if not copy:
        # a view cannot hold results, and mudata would turn it into an object of its own
        # half-way through; refuse before anything is read (copy=True works on views)
        check_writable(mdata, "mdata")
    for name, value in (
        ("drop_nan", drop_nan),
        ("subset", subset),
        ("exclude_ribosomal", exclude_ribosomal),
    ):
        check_bool(value, name)
    check_str(x, "x")
    check_str(y, "y", optional=True)
    check_option(gene_selection, GENE_SELECTIONS, "gene_selection")
    check_int(n_top_genes, "n_top_genes")
    if not (isinstance(threshold, str) and threshold == "auto"):
        if isinstance(threshold, str):
            raise InputError(f"`threshold` must be 'auto' or a number >= 0, got {threshold!r}.")
        check_float(threshold, "threshold", low=0)
    check_int(min_cells, "min_cells", minimum=1)
    check_str(layer, "layer", optional=True)
    check_option(target_transform, TARGET_TRANSFORMS, "target_transform")
    if isinstance(log_features, str) or not (
        log_features is None or isinstance(log_features, Sequence | np.ndarray)
    ):
        raise InputError(
            f"`log_features` must be a list of feature names (or None), got {log_features!r}; "
            f"for one feature write `log_features=[{log_features!r}]`."
        )
    log_features = [str(f) for f in (log_features if log_features is not None else [])]
    pattern = check_pattern(exclude_genes, "exclude_genes")
    if exclude_ribosomal:
        pattern = re.compile(
            RIBOSOMAL_GENES if pattern is None else f"(?:{pattern.pattern})|(?:{RIBOSOMAL_GENES})"
        )
    check_unique_names(mdata, "mdata")
    if not mdata.obs_names.is_unique:
        raise InputError(
            "`mdata` has duplicated obs_names; results would be ambiguous. Run "
            "`mdata.obs_names_make_unique()` first."
        )
    return log_features, pattern


def check_log_features(
    target: AnnData, y: str, y_kept: np.ndarray, log_features: list[str], transform: str | None
) -> np.ndarray:
    """Mask of the ``log_features`` columns, after checking they exist and are > 0."""
    missing = [f for f in log_features if f not in target.var_names]
    if missing:
        raise InputError(
            f"`log_features` names features not in mdata[{y!r}].var_names: {missing}; "
            f"available: {list(target.var_names)}."
        )
    log_mask = np.asarray(target.var_names.isin(log_features))
    if log_mask.any() and transform in ("clr", "log1p"):
        raise InputError(
            f"`log_features` takes the log of single features, but `target_transform={transform!r}` "
            "already log-transforms every feature. Pass `log_features` only with "
            "`target_transform='zscore'` (the sBNN recipe for ephys) or None."
        )
    bad = [
        f"{f!r} ({int((y_kept[:, j] <= 0).sum())} values <= 0)"
        for j, f in enumerate(target.var_names)
        if log_mask[j] and (y_kept[:, j] <= 0).any()
    ]
    if bad:
        raise InputError(
            f"`log_features` must be strictly positive to take their log: {', '.join(bad)}. "
            "For counts with zeros use `target_transform='log1p'` (all features) or "
            "`target_transform='clr'` (ADT counts) instead of adding a pseudo-count by hand."
        )
    return log_mask


def check_some_varying(values: np.ndarray, y: str) -> None:
    """Refuse targets in which every feature is constant: there is nothing to predict."""
    values = np.asarray(values, dtype=np.float64)
    if values.shape[0] < 2 or values.shape[1] == 0:
        return
    with np.errstate(invalid="ignore"):
        spread = np.nanmax(values, axis=0) - np.nanmin(values, axis=0)
    if not (spread > 0).any():
        raise InputError(
            f"Every target feature of mdata[{y!r}] is constant over the {values.shape[0]} "
            f"cells ({values.shape[1]} features): there is nothing to predict. Check that `y` "
            "names the right modality and that its values were filled in (not a placeholder)."
        )
