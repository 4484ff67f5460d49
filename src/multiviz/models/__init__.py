"""Model classes (``mv.models``) on scvi-tools base classes.

Each class loads (with torch, scvi-tools and Lightning) on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {".coupled": ["CoupledAutoencoder"], ".sbnn": ["SBNN"], ".sivae": ["SIVAE"]},
    subpackages=("coupled", "sbnn", "sivae"),
)

if TYPE_CHECKING:
    from .coupled import CoupledAutoencoder
    from .sbnn import SBNN
    from .sivae import SIVAE
