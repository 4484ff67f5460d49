"""``mv.tl.cca``: the PC-CCA baseline of the coupled-autoencoder paper (Gala et al. 2019)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from mudata import MuData
from scipy import sparse
from sklearn.cross_decomposition import CCA
from sklearn.decomposition import PCA

from .. import _logging as logg
from .._validate import InputError, check_finite, check_positive_int, get_layer, get_modality
from ..models.coupled._data import check_modalities, modality_rows

__all__ = ["PCCCA", "cca"]


class PCCCA:
    """PCA per modality → CCA → whitening, fitted on paired cells (paper, Fig. 3 baseline).

    Each modality is reduced to its top principal components, CCA finds ``n_components``
    maximally correlated projections, and each modality's projections are whitened with
    their covariance on the fitting cells so both arms share one scale.
    """

    def __init__(self, n_components: int = 3, n_pcs: Sequence[int] = (20, 20), random_state=0):
        self.n_components = n_components
        self.n_pcs = tuple(n_pcs)
        self.random_state = random_state

    def fit(self, Xa: np.ndarray, Xb: np.ndarray) -> PCCCA:
        """Fit on paired rows ``Xa``, ``Xb`` (same cells, same order)."""
        self.pcas_ = []
        scores = []
        for X, n in zip((Xa, Xb), self.n_pcs):
            n = min(n, X.shape[1], X.shape[0] - 1)
            pca = PCA(n_components=n, random_state=self.random_state).fit(X)
            self.pcas_.append(pca)
            scores.append(pca.transform(X))
        if self.n_components > min(s.shape[1] for s in scores):
            raise InputError(
                f"`n_components={self.n_components}` exceeds the PCs kept per modality "
                f"{[s.shape[1] for s in scores]}; raise `n_pcs`."
            )
        self.cca_ = CCA(n_components=self.n_components, scale=True, max_iter=2000).fit(*scores)
        ua, ub = self.cca_.transform(*scores)
        self.whiten_ = [self._whitener(u) for u in (ua, ub)]
        return self

    @staticmethod
    def _whitener(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = u.mean(axis=0)
        evals, evecs = np.linalg.eigh(np.cov(u - mean, rowvar=False))
        return mean, evecs @ np.diag(1.0 / np.sqrt(np.maximum(evals, 1e-12))) @ evecs.T

    def transform(self, X: np.ndarray, arm: int) -> np.ndarray:
        """Whitened canonical variates of modality ``arm`` (0 or 1) for any cells."""
        s = self.pcas_[arm].transform(X)
        if arm == 0:
            u = self.cca_.transform(s)
        else:  # sklearn transforms Y only together with an X block; pass a dummy one
            dummy = np.zeros((s.shape[0], self.pcas_[0].n_components_))
            u = self.cca_.transform(dummy, s)[1]
        mean, w = self.whiten_[arm]
        return ((u - mean) @ w).astype(np.float32)


def cca(
    mdata: MuData,
    *,
    modalities: Sequence[str] = ("rna", "ephys"),
    layers: Mapping[str, str | None] | None = None,
    n_components: int = 3,
    n_pcs: int | Sequence[int] = 20,
    key_added: str = "cca",
    random_state: int = 0,
    copy: bool = False,
) -> MuData | None:
    """PC-CCA baseline latents, comparable with :func:`multiviz.tl.coupled_autoencoder`.

    Gala et al. (NeurIPS 2019) compare the coupled autoencoder with 3-d CCA representations
    of PCA-reduced data, "followed by a whitening transformation to ensure that the scale for
    the representations is the same". Fitted on the cells present in both modalities; every
    cell of a modality is then projected with that modality's transform.

    Parameters
    ----------
    mdata
        MuData with both modalities (possibly partially paired). Inputs should be
        standardised, e.g. by :func:`multiviz.pp.prepare_paired`.
    modalities
        The two modalities.
    layers
        ``{modality: layer}`` to read instead of ``.X``.
    n_components
        Canonical dimensions (3, as the paper's comparison).
    n_pcs
        Principal components per modality before CCA (an int for both, or one per modality).
    key_added
        Results go to ``mdata[mod].obsm[f"X_{key_added}"]``, ``mdata.obsm[f"X_{key_added}_{mod}"]``
        (NaN rows for cells without ``mod``) and ``mdata.uns[key_added]["params"]``, plus the
        canonical correlations on the fitting cells in ``uns[key_added]["correlations"]``.
    random_state
        Seed of the PCA solver.
    copy
        Return a modified copy instead of writing into ``mdata``.

    Returns
    -------
    ``None``, or the modified copy when ``copy=True``.
    """
    modalities = check_modalities(mdata, modalities)
    if len(modalities) != 2:
        raise InputError(
            f"`modalities` must name exactly two modalities for CCA, got {modalities}."
        )
    check_positive_int(n_components, "n_components")
    pcs = [n_pcs, n_pcs] if isinstance(n_pcs, int | np.integer) else list(n_pcs)
    for p in pcs:
        check_positive_int(p, "n_pcs")
    layers = dict(layers or {})
    data, rows = [], []
    for mod in modalities:
        X = get_layer(get_modality(mdata, mod, "modalities"), layers.get(mod), f"layers[{mod!r}]")
        check_finite(X, f"mdata[{mod!r}]")
        data.append(X.toarray() if sparse.issparse(X) else np.asarray(X, dtype=np.float64))
        rows.append(modality_rows(mdata, mod))
    paired = (rows[0] >= 0) & (rows[1] >= 0)
    if paired.sum() <= max(pcs):
        raise InputError(
            f"{int(paired.sum())} cells are present in both modalities; CCA needs more than "
            f"`n_pcs`={max(pcs)}."
        )
    with logg.timed(f"fitting PC-CCA ({n_components} components) on {int(paired.sum())} cells"):
        model = PCCCA(n_components, pcs, random_state).fit(
            data[0][rows[0][paired]], data[1][rows[1][paired]]
        )
        latents = [model.transform(X, k) for k, X in enumerate(data)]
        za, zb = (latents[k][rows[k][paired]] for k in range(2))
        corr = [float(np.corrcoef(za[:, i], zb[:, i])[0, 1]) for i in range(n_components)]
    out = mdata.copy() if copy else mdata
    for k, mod in enumerate(modalities):
        full = np.full((out.n_obs, n_components), np.nan, dtype=np.float32)
        full[rows[k] >= 0] = latents[k][rows[k][rows[k] >= 0]]
        out.mod[mod].obsm[f"X_{key_added}"] = latents[k]
        out.obsm[f"X_{key_added}_{mod}"] = full
    out.uns[key_added] = {
        "params": {
            "modalities": modalities,
            "n_components": n_components,
            "n_pcs": pcs,
            "layers": {m: layers.get(m) or "" for m in modalities},
            "random_state": random_state,
        },
        "correlations": np.asarray(corr),
    }
    return out if copy else None
