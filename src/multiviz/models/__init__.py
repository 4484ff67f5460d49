"""Model classes (``mv.models``) on scvi-tools base classes."""

from .coupled import CoupledAutoencoder
from .sbnn import SBNN
from .sivae import SIVAE

__all__ = [
    "CoupledAutoencoder",
    "SBNN",
    "SIVAE",
]
