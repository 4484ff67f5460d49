"""Tools (``mv.tl``): validate, fit a model, write results into the AnnData/MuData."""

from ._cca import cca
from ._coupled_autoencoder import coupled_autoencoder
from ._cross_modal_predict import cross_modal_predict
from ._cross_validate import cross_validate, cv_folds
from ._sbnn import sbnn
from ._selection_stability import selection_stability
from ._srrr import srrr
from ._tsne import tsne

__all__ = [
    "cca",
    "coupled_autoencoder",
    "cross_modal_predict",
    "cross_validate",
    "cv_folds",
    "sbnn",
    "selection_stability",
    "srrr",
    "tsne",
]
