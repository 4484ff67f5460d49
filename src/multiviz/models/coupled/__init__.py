"""Coupled autoencoders (Gala et al., NeurIPS 2019): module, coupling functions, model."""

from ._coupling import COUPLINGS, batchnorm, euclidean, fullcov, msv
from ._model import CoupledAutoencoder
from ._module import CoupledAEModule

__all__ = [
    "COUPLINGS",
    "CoupledAEModule",
    "CoupledAutoencoder",
    "batchnorm",
    "euclidean",
    "fullcov",
    "msv",
]
