"""Preprocessing recipes (``mv.pp``). Names load on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "_gene_selection": ["detection_gene_selection"],
        "_prepare_paired": ["prepare_paired"],
        "_zscore": ["apply_zscore", "fit_zscore"],
    },
)

if TYPE_CHECKING:
    from ._gene_selection import detection_gene_selection
    from ._prepare_paired import prepare_paired
    from ._zscore import apply_zscore, fit_zscore
