"""Coupling functions of the coupled autoencoder (Gala et al., NeurIPS 2019, eqs. 2-6).

Every function takes the latents of the *paired* cells of one minibatch for two arms,
``z_a`` and ``z_b`` (``n_paired x d``, row ``s`` of both is the same cell), and returns a
scalar: the mean over paired cells of a squared latent distance, normalised as in the
paper. Cells present in only one arm never reach these functions (the module selects the
paired rows first).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["COUPLINGS", "batchnorm", "euclidean", "fullcov", "min_variance", "msv"]

_EPS = 1e-6


def _sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean over cells of the squared Euclidean distance between rows."""
    return (a - b).pow(2).sum(dim=1).mean()


def euclidean(z_a: torch.Tensor, z_b: torch.Tensor, **_) -> torch.Tensor:
    """Plain squared distance, eq. 2 (Feng et al. 2014).

    Minimised by shrinking both latents towards 0 (Proposition 1); kept for comparison.
    """
    return _sq_dist(z_a, z_b)


def _standardise(z: torch.Tensor) -> torch.Tensor:
    """Per-dimension batch normalisation without affine parameters (eq. 3)."""
    mean = z.mean(dim=0, keepdim=True)
    std = z.std(dim=0, unbiased=True, keepdim=True)
    return (z - mean) / (std + _EPS)


def batchnorm(z_a: torch.Tensor, z_b: torch.Tensor, **_) -> torch.Tensor:
    """Squared distance of per-dimension batch-normalised latents, eq. 3.

    Fixes the scale of each dimension but lets the latents collapse onto one dimension
    (Proposition 2); kept for comparison.
    """
    return _sq_dist(_standardise(z_a), _standardise(z_b))


def _whiten(z: torch.Tensor) -> torch.Tensor:
    """``(B^T B)^{-1/2}``-whitened latents, B the centred batch scaled by ``sqrt(n - 1)`` (eq. 4)."""
    centred = z - z.mean(dim=0, keepdim=True)
    cov = centred.T @ centred / (z.shape[0] - 1)
    cov = cov + _EPS * torch.eye(cov.shape[0], dtype=z.dtype, device=z.device)
    evals, evecs = torch.linalg.eigh(cov)
    inv_sqrt = evecs @ torch.diag(evals.clamp_min(_EPS).rsqrt()) @ evecs.T
    return centred @ inv_sqrt


def fullcov(z_a: torch.Tensor, z_b: torch.Tensor, **_) -> torch.Tensor:
    """Squared distance of latents whitened with the full minibatch covariance, eq. 4.

    Unreliable when the batch is small compared with the latent dimension (paper Fig. 1C-D).
    """
    return _sq_dist(_whiten(z_a), _whiten(z_b))


def min_variance(z: torch.Tensor, method: str = "svd") -> torch.Tensor:
    """Smallest squared singular value of the centred batch matrix divided by ``n - 1``.

    That is the smallest eigenvalue of the minibatch covariance. ``method="svd"`` uses
    :func:`torch.linalg.svdvals` (the reference implementation's choice); ``"eigh"`` the
    eigenvalues of the ``d x d`` covariance; both are differentiable.
    """
    centred = z - z.mean(dim=0, keepdim=True)
    if method == "svd":
        return torch.linalg.svdvals(centred)[-1].pow(2) / (z.shape[0] - 1)
    cov = centred.T @ centred / (z.shape[0] - 1)
    return torch.linalg.eigvalsh(cov)[0]


def msv(
    z_a: torch.Tensor,
    z_b: torch.Tensor,
    *,
    floor: float = 0.01,
    method: str = "svd",
    **_,
) -> torch.Tensor:
    """Minimum-singular-value normalised coupling, eq. 6 (the paper's proposal, default).

    The mean squared latent difference over paired cells divided by the smaller of the two
    arms' minimum variances (:func:`min_variance`), floored at ``floor`` (0.01 in the
    reference implementation) so a collapsing direction cannot blow the loss up.
    """
    scale = torch.minimum(min_variance(z_a, method), min_variance(z_b, method))
    return _sq_dist(z_a, z_b) / scale.clamp_min(floor)


COUPLINGS: dict[str, Callable[..., torch.Tensor]] = {
    "euclidean": euclidean,
    "batchnorm": batchnorm,
    "fullcov": fullcov,
    "msv": msv,
}
