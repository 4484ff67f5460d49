"""Tools (``mv.tl``): validate, fit a model, write results into the AnnData/MuData.

Names load on first use (see :mod:`multiviz._lazy`): ``import multiviz`` does not
import torch, scvi-tools, Lightning or scikit-learn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import attach

__getattr__, __dir__, __all__ = attach(
    __name__,
    {
        "_cca": ["cca", "cca_project"],
        "_compare_methods": ["compare_methods"],
        "_consensus": ["sbnn_consensus"],  # deprecated alias (FutureWarning)
        "_coupled_autoencoder": ["coupled_autoencoder"],
        "_cross_modal_predict": ["cross_modal_predict"],
        "_cross_validate": ["cross_validate", "cv_folds"],
        "_decoder_attribution": ["decoder_attribution"],
        "_gene_centrality": ["gene_centrality"],
        "_gene_neighbors": ["gene_neighbors"],
        "_network_similarity": ["network_similarity"],
        "_project": ["project"],
        "_sbnn": ["sbnn"],
        "_selection_stability": ["selection_stability"],
        "_sivae": ["sivae"],
        "_srrr": ["srrr"],
        "_tsne": ["tsne"],
    },
)

if TYPE_CHECKING:  # static analysers and IDEs see the eager imports
    from ._cca import cca, cca_project
    from ._compare_methods import compare_methods
    from ._consensus import sbnn_consensus
    from ._coupled_autoencoder import coupled_autoencoder
    from ._cross_modal_predict import cross_modal_predict
    from ._cross_validate import cross_validate, cv_folds
    from ._decoder_attribution import decoder_attribution
    from ._gene_centrality import gene_centrality
    from ._gene_neighbors import gene_neighbors
    from ._network_similarity import network_similarity
    from ._project import project
    from ._sbnn import sbnn
    from ._selection_stability import selection_stability
    from ._sivae import sivae
    from ._srrr import srrr
    from ._tsne import tsne
