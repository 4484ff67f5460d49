"""Datasets (``mv.datasets``): simulators with planted ground truth and readers of real files.

Names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "_pbmc": ["pbmc10k_cite_200"],
        "_read": ["m1_patchseq", "read_paired"],
        "_simulate_gene_network": ["simulate_gene_network"],
        "_simulate_patchseq": ["simulate_patchseq"],
    },
)

if TYPE_CHECKING:
    from ._pbmc import pbmc10k_cite_200
    from ._read import m1_patchseq, read_paired
    from ._simulate_gene_network import simulate_gene_network
    from ._simulate_patchseq import simulate_patchseq
