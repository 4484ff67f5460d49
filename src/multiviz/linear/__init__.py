"""Closed-form and convex solvers (numpy / scipy / scikit-learn). Names load on first use."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__, {"_srrr": ["SRRRResult", "lambda_max", "srrr_budget", "srrr_fit"]}
)

if TYPE_CHECKING:
    from ._srrr import SRRRResult, lambda_max, srrr_budget, srrr_fit
