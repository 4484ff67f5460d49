"""Tools (``mv.tl``): validate, fit a model, write results into the AnnData/MuData."""

from ._cca import cca
from ._coupled_autoencoder import coupled_autoencoder
from ._cross_modal_predict import cross_modal_predict
from ._cross_validate import cross_validate, cv_folds
from ._decoder_attribution import decoder_attribution
from ._gene_centrality import gene_centrality
from ._gene_neighbors import gene_neighbors
from ._network_similarity import network_similarity
from ._sbnn import sbnn
from ._selection_stability import selection_stability
from ._sivae import sivae
from ._srrr import srrr
from ._tsne import tsne

__all__ = [
    "cca",
    "coupled_autoencoder",
    "cross_modal_predict",
    "cross_validate",
    "cv_folds",
    "decoder_attribution",
    "gene_centrality",
    "gene_neighbors",
    "network_similarity",
    "sbnn",
    "selection_stability",
    "sivae",
    "srrr",
    "tsne",
]
