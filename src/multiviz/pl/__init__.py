"""Plotting (``mv.pl``): matplotlib figures that read what ``mv.tl`` wrote."""

from ._coupled_latents import coupled_latents
from ._cross_modal import cross_modal
from ._cv_r2 import cv_r2
from ._latent_overlay import latent_overlay
from ._loadings import loadings
from ._network_similarity import network_similarity
from ._selection_stability import selection_stability
from ._training_history import training_history

__all__ = [
    "coupled_latents",
    "cross_modal",
    "cv_r2",
    "latent_overlay",
    "loadings",
    "network_similarity",
    "selection_stability",
    "training_history",
]
