"""Closed-form and convex solvers (numpy / scipy / scikit-learn)."""
