"""Up-front checks of every argument of :func:`multiviz.pp.prepare_paired`.

They run before any data is read, so a bad argument never leaves a half-processed object.
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
    check_option,
    check_pattern,
    check_str,
    check_unique_names,
    check_writable,
)
from .._validate import check_not_backed as _check_not_backed
from ._targets import TARGET_TRANSFORMS

GENE_SELECTIONS = ("detection", "seurat_v3", "seurat", "cell_ranger", "none")

#: Mitochondrial genes (human ``MT-``, mouse ``mt-``), ERCC spike-ins and ribosomal RNA
#: genes (human ``RNA28S5``, ``RNA18S5``, ``RNA45SN1``, ``RNA5-8SN2``, ``RNA5S9``; mouse
#: ``Rn45s``, ``Rn18s``, ``Rn28s1``, ``Rn5-8s``): rRNA reads are capture artefacts in
#: poly-A data and can dominate a cell's library.
TECHNICAL_GENES = (
    r"^(MT-|mt-|Mt-|ERCC-|RNA(?:18S|28S|45S|5-8S|5S)N?\d+$|Rn(?:18s|28s1|45s|5-8s|4\.5s)$)"
)
#: Ribosomal protein genes (human ``RPL10A``, ``RPS4X``, ``RPLP0``; mouse ``Rpl10a`` …), not the
#: ``RPS6K…`` kinases; excluded on request.
RIBOSOMAL_GENES = r"^(?:(?:RPL|RPS|Rpl|Rps)P?\d+[A-JL-Za-jl-z]{0,2}\d*|RPSA|Rpsa)$"


def check_not_backed(obj: Any, arg: str) -> None:
    """Reject a backed (on-disk) MuData/AnnData or modality, naming the fix."""
    _check_not_backed(
        obj,
        arg,
        fix=(
            "`{name}` is backed (opened with `backed=True`/`'r'`); preprocessing reads every "
            "count and needs the data in memory. Load it first: `{arg} = mudata.read_h5mu(path)` "
            "(or `{arg} = {arg}.to_memory()`)."
        ),
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
    check_not_backed(mdata, "mdata")
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


def excluded_mask(adata: AnnData, pattern: re.Pattern | None) -> np.ndarray:
    """Genes of ``adata`` whose name matches ``pattern`` (all False for None)."""
    if pattern is None:
        return np.zeros(adata.n_vars, dtype=bool)
    return np.fromiter(
        (pattern.search(str(g)) is not None for g in adata.var_names), bool, adata.n_vars
    )


def all_excluded_error(
    adata: AnnData, x: str, exclude_genes: str | None, exclude_ribosomal: bool
) -> InputError:
    """The error for an exclusion that leaves no gene, naming the option(s) responsible."""
    by_pattern = excluded_mask(adata, check_pattern(exclude_genes, "exclude_genes"))
    by_ribo = excluded_mask(adata, re.compile(RIBOSOMAL_GENES) if exclude_ribosomal else None)
    if not by_ribo.any():
        return InputError(
            f"`exclude_genes={exclude_genes!r}` excludes all {adata.n_vars} genes of "
            f"mdata[{x!r}]; pass a narrower pattern or `exclude_genes=None`."
        )
    causes, fixes = [], []
    if by_ribo.any():
        causes.append(f"`exclude_ribosomal=True` removes {int(by_ribo.sum())} ribosomal genes")
        fixes.append("`exclude_ribosomal=False`")
    if by_pattern.any():
        causes.append(f"`exclude_genes={exclude_genes!r}` removes {int(by_pattern.sum())}")
        fixes.append("a narrower `exclude_genes` pattern (or `exclude_genes=None`)")
    return InputError(
        f"No gene of mdata[{x!r}] is left as a predictor: {' and '.join(causes)} of its "
        f"{adata.n_vars} genes. Pass {' or '.join(fixes)}."
    )
