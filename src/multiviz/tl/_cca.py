"""``mv.tl.cca``: the PC-CCA baseline of the coupled-autoencoder paper (Gala et al. 2019)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from anndata import AnnData
from mudata import MuData
from scipy import sparse

from .. import _logging as logg
from .._docs import COPY_MDATA, RETURNS_COPY, doc_params
from .._validate import (
    InputError,
    check_bool,
    check_finite,
    check_fit_finite,
    check_int,
    check_mudata,
    check_random_state,
    check_str,
    check_unique_names,
    check_writable,
    get_layer,
    get_modality,
)
from .._warnings import DataWarning
from ._checks import (
    check_cca_sizes,
    check_new_features,
    check_paired_cells,
    warn_if_scaled_differently,
)

__all__ = ["PCCCA", "cca", "cca_project"]


class PCCCA:
    """PCA per modality → CCA → whitening, fitted on paired cells (paper, Fig. 3 baseline).

    Each modality is reduced to its top principal components, CCA finds ``n_components``
    maximally correlated projections, and each modality's projections are whitened with
    their covariance on the fitting cells so both arms share one scale. Every step is
    affine, so each arm's map is one matrix and one offset (:meth:`affine`).
    """

    def __init__(self, n_components: int = 3, n_pcs: Sequence[int] = (20, 20), random_state=0):
        self.n_components = n_components
        self.n_pcs = tuple(n_pcs)  # mv.tl.cca passes them already capped (_checks)
        self.random_state = random_state

    def fit(self, Xa: np.ndarray, Xb: np.ndarray) -> PCCCA:
        """Fit on paired rows ``Xa``, ``Xb`` (same cells, same order, no constant column)."""
        from sklearn.cross_decomposition import CCA
        from sklearn.decomposition import PCA

        self.pcas_ = []
        scores = []
        for X, n in zip((Xa, Xb), self.n_pcs):
            n = min(n, X.shape[1], X.shape[0] - 1)
            pca = PCA(n_components=n, random_state=self.random_state).fit(X)
            var = pca.explained_variance_
            n_ok = int((var > 1e-10 * var[0]).sum())  # rank-deficient data: drop null PCs
            if n_ok < n:
                pca = PCA(n_components=n_ok, random_state=self.random_state).fit(X)
            self.pcas_.append(pca)
            scores.append(pca.transform(X))
        if self.n_components > min(s.shape[1] for s in scores):
            raise InputError(
                f"`n_components={self.n_components}` exceeds the principal components each "
                f"modality supports {[s.shape[1] for s in scores]} (its rank); lower "
                "`n_components` or raise `n_pcs`."
            )
        self.cca_ = CCA(n_components=self.n_components, scale=True, max_iter=2000).fit(*scores)
        ua, ub = self.cca_.transform(*scores)
        self.whiten_ = [self._whitener(u) for u in (ua, ub)]
        return self

    @staticmethod
    def _whitener(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean = u.mean(axis=0)
        evals, evecs = np.linalg.eigh(np.atleast_2d(np.cov(u - mean, rowvar=False)))
        return mean, evecs @ np.diag(1.0 / np.sqrt(np.maximum(evals, 1e-12))) @ evecs.T

    def affine(self, arm: int) -> tuple[np.ndarray, np.ndarray]:
        """``(W, b)`` with latents ``X @ W + b`` for modality ``arm`` (0 or 1)."""
        pca = self.pcas_[arm]
        if arm == 0:
            mean, std, rot = self.cca_._x_mean, self.cca_._x_std, self.cca_.x_rotations_
        else:
            mean, std, rot = self.cca_._y_mean, self.cca_._y_std, self.cca_.y_rotations_
        w_mean, w = self.whiten_[arm]
        W = pca.components_.T @ (rot / std[:, None]) @ w
        b = (((-pca.mean_ @ pca.components_.T) - mean) / std) @ rot @ w - w_mean @ w
        return W, b

    def transform(self, X: np.ndarray, arm: int) -> np.ndarray:
        """Whitened canonical variates of modality ``arm`` (0 or 1) for any cells."""
        W, b = self.affine(arm)
        return (np.asarray(X, dtype=np.float64) @ W + b).astype(np.float32)


def _dense(X) -> np.ndarray:
    return X.toarray() if sparse.issparse(X) else np.asarray(X, dtype=np.float64)


@doc_params(copy_mdata=COPY_MDATA, returns_copy=RETURNS_COPY)
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
    cell of a modality is then projected with that modality's transform. Features constant
    over the fitting cells carry no information for CCA: they are dropped with a warning
    naming them (weight 0).

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
        Principal components per modality before CCA (an int for both, or one per modality;
        capped at each modality's rank).
    key_added
        Results go to ``mdata[mod].obsm[f"X_{key_added}"]``, ``mdata.obsm[f"X_{key_added}_{mod}"]``
        (NaN rows for cells without ``mod``), the fitted projection to
        ``mdata[mod].varm[f"{key_added}_weights"]`` (features × components) and
        ``mdata.uns[key_added]["offset"][mod]``, with ``"params"``, ``"dropped_features"``
        and the canonical correlations on the fitting cells (``"correlations"``) in
        ``mdata.uns[key_added]``. New cells: :func:`multiviz.tl.cca_project`.
    random_state
        Seed of the PCA solver.
    {copy_mdata}

    {returns_copy}

    Examples
    --------
    >>> mv.tl.cca(mdata, modalities=("rna", "ephys"))
    >>> z_new = mv.tl.cca_project(new_mdata["ephys"], mdata, "ephys")
    """
    modalities, n_components, pcs, key_added, random_state, copy = _check_cca_args(
        mdata, modalities, n_components, n_pcs, key_added, random_state, copy
    )
    layers = dict(layers or {})
    data, rows = _read_modalities(mdata, modalities, layers)
    paired = (rows[0] >= 0) & (rows[1] >= 0)
    check_paired_cells(int(paired.sum()), modalities)
    fit_rows = [data[k][rows[k][paired]] for k in range(2)]
    used, dropped = _varying_features(mdata, modalities, fit_rows)
    pcs = check_cca_sizes(
        int(paired.sum()), [int(u.sum()) for u in used], pcs, n_components, modalities
    )
    with logg.timed(f"fitting PC-CCA ({n_components} components) on {int(paired.sum())} cells"):
        model = PCCCA(n_components, pcs, random_state).fit(
            fit_rows[0][:, used[0]], fit_rows[1][:, used[1]]
        )
        weights, offsets, latents = [], [], []
        for k in range(2):
            W_used, b = model.affine(k)
            W = np.zeros((data[k].shape[1], n_components))
            W[used[k]] = W_used
            weights.append(W)
            offsets.append(b)
            latents.append((data[k] @ W + b).astype(np.float32))
        za, zb = (latents[k][rows[k][paired]] for k in range(2))
        corr = np.array([np.corrcoef(za[:, i], zb[:, i])[0, 1] for i in range(n_components)])
        check_fit_finite(
            {"latents": latents, "weights": weights, "correlations": corr},
            model="PC-CCA",
            phase="fitting",
            hint="Check the inputs for near-constant or duplicated features",
        )
    out = mdata.copy() if copy else mdata
    for k, mod in enumerate(modalities):
        full = np.full((out.n_obs, n_components), np.nan, dtype=np.float32)
        full[rows[k] >= 0] = latents[k][rows[k][rows[k] >= 0]]
        out.mod[mod].obsm[f"X_{key_added}"] = latents[k]
        out.mod[mod].varm[f"{key_added}_weights"] = weights[k]
        out.obsm[f"X_{key_added}_{mod}"] = full
    out.uns[key_added] = {
        "params": {
            "modalities": modalities,
            "n_components": n_components,
            "n_pcs": [int(p.n_components_) for p in model.pcas_],
            "layers": {m: layers.get(m) or "" for m in modalities},
            "random_state": random_state,
        },
        "offset": {mod: offsets[k] for k, mod in enumerate(modalities)},
        "dropped_features": {mod: dropped.get(mod, []) for mod in modalities},
        "correlations": corr,
    }
    return out if copy else None


def _check_cca_args(
    mdata: MuData,
    modalities: Sequence[str],
    n_components: int,
    n_pcs: int | Sequence[int],
    key_added: str,
    random_state: int,
    copy: bool,
) -> tuple[list[str], int, list[int], str, int, bool]:
    """The arguments of :func:`cca`, checked (``n_pcs`` as one int per modality)."""
    from ..models.coupled._checks import check_modalities

    check_mudata(mdata)
    if not copy:
        check_writable(mdata, "mdata")
    modalities = check_modalities(mdata, modalities)
    check_unique_names(mdata, "mdata")
    if len(modalities) != 2:
        raise InputError(
            f"`modalities` must name exactly two modalities for CCA, got {modalities}."
        )
    n_components = check_int(n_components, "n_components")
    if isinstance(n_pcs, Sequence) and not isinstance(n_pcs, str):
        pcs = [check_int(p, "n_pcs") for p in n_pcs]
        if len(pcs) != 2:
            raise InputError(f"`n_pcs` must be an int or one int per modality, got {n_pcs!r}.")
    else:
        pcs = [check_int(n_pcs, "n_pcs")] * 2
    key_added = check_str(key_added, "key_added")
    random_state = check_random_state(random_state)
    copy = check_bool(copy, "copy")
    return modalities, n_components, pcs, key_added, random_state, copy


def _read_modalities(
    mdata: MuData, modalities: Sequence[str], layers: Mapping[str, str | None]
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each modality's data (dense float) and the row of each cell in it (-1: absent)."""
    from ..models.coupled._data import modality_rows

    data, rows = [], []
    for mod in modalities:
        adata = get_modality(mdata, mod, "modalities")
        X = get_layer(adata, layers.get(mod), f"layers[{mod!r}]")
        check_finite(X, f"mdata[{mod!r}]", names=adata.var_names)
        data.append(_dense(X))
        rows.append(modality_rows(mdata, mod))
    return data, rows


def _varying_features(
    mdata: MuData, modalities: Sequence[str], fit_rows: list[np.ndarray]
) -> tuple[list[np.ndarray], dict[str, list[str]]]:
    """Per modality the features that vary over the fitting cells; the others, by name."""
    used, dropped = [], {}
    for k, mod in enumerate(modalities):
        const = np.ptp(fit_rows[k], axis=0) == 0
        names = mdata.mod[mod].var_names
        if const.all():
            raise InputError(f"Every feature of `mdata[{mod!r}]` is constant; CCA needs signal.")
        if const.any():
            dropped[mod] = [str(v) for v in names[const]]
            logg.warning(
                f"cca: dropped {int(const.sum())} features of {mod!r} that are constant over the "
                f"paired cells: {dropped[mod][:10]}",
                category=DataWarning,
            )
        used.append(~const)
    return used, dropped


def cca_project(
    adata: AnnData,
    reference: MuData,
    modality: str,
    *,
    key: str = "cca",
    layer: str | None = None,
) -> np.ndarray:
    """Project new cells of one modality with a PC-CCA fitted by :func:`cca`.

    Uses the stored affine map (``reference[modality].varm[f"{key}_weights"]`` and
    ``reference.uns[key]["offset"][modality]``); features are matched by name, so the new
    data may hold them in another order or hold extra ones. Preprocess the new cells as the
    reference (e.g. z-score with the reference's statistics). Projecting the reference's
    own cells reproduces its ``obsm[f"X_{key}"]`` exactly.

    Parameters
    ----------
    adata
        New cells of ``modality`` (an AnnData, e.g. ``new_mdata["ephys"]``).
    reference
        The MuData :func:`cca` was run on.
    modality
        Which arm's map to apply.
    key
        ``key_added`` of the :func:`cca` run.
    layer
        Layer of ``adata`` to read instead of ``.X``.

    Returns
    -------
    ``adata.n_obs x n_components`` latents (float32).

    Examples
    --------
    >>> z = mv.tl.cca_project(new_mdata["ephys"], mdata, "ephys")
    """
    check_mudata(reference, "reference")
    if isinstance(adata, MuData) or not isinstance(adata, AnnData):
        raise InputError(
            f"`adata` must be the AnnData of one modality (e.g. `new_mdata[{modality!r}]`), "
            f"got {type(adata).__name__}."
        )
    ref = get_modality(reference, modality, "modality")
    wkey = f"{key}_weights"
    info = reference.uns.get(key)
    if wkey not in ref.varm or not isinstance(info, Mapping) or "offset" not in info:
        raise InputError(
            f"`reference` holds no PC-CCA under `key={key!r}`; run "
            f"`mv.tl.cca(reference, key_added={key!r})` first."
        )
    check_new_features(adata, modality)
    cols = adata.var_names.get_indexer(ref.var_names)
    W = np.asarray(ref.varm[wkey], dtype=np.float64)
    needed = np.abs(W).sum(axis=1) > 0
    if (cols[needed] < 0).any():
        miss = list(ref.var_names[needed & (cols < 0)])
        raise InputError(
            f"{len(miss)} features the PC-CCA uses are missing from `adata`, e.g. {miss[:5]}."
        )
    X = _dense(get_layer(adata, layer, "layer"))
    check_finite(X, "adata", names=adata.var_names)
    Xm = np.zeros((adata.n_obs, ref.n_vars))
    Xm[:, needed] = X[:, cols[needed]]
    ref_layer = (info.get("params", {}).get("layers", {}) or {}).get(modality) or None
    ref_X = ref.X if ref_layer is None else ref.layers.get(ref_layer)
    warn_if_scaled_differently(
        Xm[:, needed],
        None if ref_X is None else _dense(ref_X)[:, needed],
        ref.var_names[needed],
        modality,
        ref,
    )
    return (Xm @ W + np.asarray(info["offset"][modality])).astype(np.float32)
