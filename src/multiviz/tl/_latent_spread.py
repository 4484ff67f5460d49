"""Where a cell sits in the latent, and how far that position moves between fits.

The members of a cross-validation ensemble each place every cell. Their latents differ by
an arbitrary rotation or reflection (a bottleneck's axes are not identified), so each
member is first rotated onto a common reference by orthogonal Procrustes with centring
(rotation and reflection, no scaling). The reference is the full fit's latent when one is
given (``mv.tl.cross_validate(..., align_to="X_sbnn")``), which also puts the axes of
every run and seed into that fit's frame; otherwise the first fold's. A cell's spread is
the root-mean-square distance of its aligned positions from their mean: small where the
members agree, large where the map is unsure of it (cells unlike the training data,
regions few cells support).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def align(latent: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Orthogonal Procrustes (with centring) of ``latent`` onto ``reference``."""
    mu_l, mu_r = latent.mean(0), reference.mean(0)
    u, _, vt = np.linalg.svd((latent - mu_l).T @ (reference - mu_r))
    return (latent - mu_l) @ (u @ vt) + mu_r


def member_spread(
    latents: Sequence[np.ndarray], reference: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-cell spread of several fits' latents of the same cells.

    Returns ``(per_axis_sd, rms)``: ``(n_cells, n_latent)`` standard deviations over the
    members along each reference axis, and ``(n_cells,)`` root-mean-square distance from
    the members' mean position (``sqrt(sum of per-axis variances)``).
    """
    ref = np.asarray(reference, dtype=np.float64)
    stack = np.stack([align(np.asarray(z, dtype=np.float64), ref) for z in latents])
    sd = stack.std(axis=0)
    return sd, np.sqrt((sd**2).sum(axis=1))
