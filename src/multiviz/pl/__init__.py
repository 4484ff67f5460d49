"""Plotting (``mv.pl``): matplotlib figures that read what ``mv.tl`` wrote.

Every function follows scanpy: ``show=None`` shows the figure when matplotlib is
interactive and returns ``None``; ``return_fig=True`` returns the
:class:`~matplotlib.figure.Figure`; ``save=`` writes it. Names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "_compare_methods": ["compare_methods"],
        "_coupled_latents": ["coupled_latents"],
        "_cross_modal": ["cross_modal"],
        "_cv_r2": ["cv_r2"],
        "_latent_overlay": ["latent_overlay"],
        "_latent_spread": ["latent_spread"],
        "_loadings": ["loadings"],
        "_network_similarity": ["network_similarity"],
        "_selection_stability": ["selection_stability"],
        "_training_history": ["training_history"],
    },
)

if TYPE_CHECKING:
    from ._compare_methods import compare_methods
    from ._coupled_latents import coupled_latents
    from ._cross_modal import cross_modal
    from ._cv_r2 import cv_r2
    from ._latent_overlay import latent_overlay
    from ._latent_spread import latent_spread
    from ._loadings import loadings
    from ._network_similarity import network_similarity
    from ._selection_stability import selection_stability
    from ._training_history import training_history
