"""Model classes (``mv.models``) on scvi-tools base classes."""

from .coupled import CoupledAutoencoder
from .sbnn import SBNN

__all__ = [
    "CoupledAutoencoder",
    "SBNN",
]
