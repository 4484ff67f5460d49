"""Gene-exclusion patterns of :func:`multiviz.pp.prepare_paired` and what they exclude.

The argument checks themselves are in :mod:`multiviz.pp._checks`.
"""

from __future__ import annotations

import re

import numpy as np
from anndata import AnnData

from .._validate import InputError, check_pattern

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
