"""Closed-form and convex solvers (numpy / scipy / scikit-learn)."""

from ._srrr import SRRRResult, lambda_max, srrr_budget, srrr_fit
