"""What ``mv.tl.sivae`` reports beside its arrays: the training history and a PCA baseline."""

from __future__ import annotations

import numpy as np

from multiviz import _logging as logg
from multiviz._warnings import FitQualityWarning


def _history(model) -> tuple[dict, dict]:
    """``history`` (one row per epoch, ``phase`` column, metrics every step logs) and per step."""
    phases = model.phase_history_ or {}
    per_phase = {
        name: {k: np.asarray(v, float) for k, v in h.items()} for name, h in phases.items()
    }
    common = set.intersection(*(set(h) for h in per_phase.values())) if per_phase else set()
    table: dict[str, list] = {"phase": [], "epoch": []}
    for metric in sorted(common):
        table[metric] = []
    for name, h in per_phase.items():
        n = len(next(iter(h.values()))) if h else 0
        table["phase"] += [name] * n
        table["epoch"] += list(range(1, n + 1))
        for metric in common:
            table[metric] += list(h[metric])
    history = {
        "phase": np.asarray(table.pop("phase"), dtype=str),
        "epoch": np.asarray(table.pop("epoch"), dtype=np.int64),
        **{k: np.asarray(v, dtype=float) for k, v in table.items()},
    }
    return history, per_phase


#: Largest dense matrix (cells x genes) the PCA baseline is computed on.
PCA_BASELINE_MAX_ELEMENTS = 50_000_000


def _pca_r2(
    x, used: np.ndarray, n_components: int, random_state: int, split=None
) -> dict[str, float]:
    """PCA with ``n_components`` components, the trivial baseline: ``r2_pca`` and ``r2_pca_heldout``.

    ``r2_pca``: mean per-gene R² of PCA fitted on all cells (as ``r2_gene``).
    ``r2_pca_heldout`` (with ``split = (train, validation)`` cell indices, at least two
    validation cells): PCA fitted on the training cells, scored on the validation cells with
    genes pooled (as ``r2_gene_heldout``). Gaussian models only (their R² is on the modelled
    values); empty when the matrix is too large to make dense or the rank is too high. An
    on-disk (backed) matrix under the size cap is read in row blocks straight into the dense
    array of used genes (the same values as in memory, so the same baseline; memory bounded
    by the cap).
    """
    from sklearn.decomposition import PCA

    from multiviz.models.sivae._backed import is_backed

    n, g = x.shape
    if n * g > PCA_BASELINE_MAX_ELEMENTS or n_components >= min(n, g):
        if is_backed(x) and n_components < min(n, g):
            logg.info(
                f"    no PCA baseline (r2_pca): {n} x {g} is above the cap of "
                f"{PCA_BASELINE_MAX_ELEMENTS:,} cells x genes for a dense copy"
            )
        return {}
    xd = _dense_used(x, used)
    pca = PCA(n_components=n_components, svd_solver="randomized", random_state=random_state)
    rec = pca.inverse_transform(pca.fit_transform(xd))
    sst = ((xd - xd.mean(0)) ** 2).sum(0)
    out = {"r2_pca": float(np.mean(1.0 - ((xd - rec) ** 2).sum(0) / sst))}
    train, val = split if split is not None else ((), ())
    if len(val) >= 2 and n_components < min(len(train), g):
        held = xd[np.asarray(val)]
        pca.fit(xd[np.asarray(train)])
        err = ((held - pca.inverse_transform(pca.transform(held))) ** 2).sum()
        out["r2_pca_heldout"] = float(1.0 - err / max(((held - held.mean(0)) ** 2).sum(), 1e-30))
    return out


def _warn_if_not_better_than_pca(out: dict, pca: dict, n_latent: int) -> None:
    if "r2_pca" in pca and out["r2_gene"] < pca["r2_pca"]:
        logg.warning(
            f"siVAE's reconstruction (mean per-gene R² {out['r2_gene']:.3f}) does not beat PCA "
            f"with the same {n_latent} components (R² {pca['r2_pca']:.3f}): the fit is probably "
            "not converged. Train longer (`max_epochs`), raise `lr` (e.g. 3e-3) or use a smaller "
            "`batch_size` on small data; check that the data are centred and scaled per gene.",
            category=FitQualityWarning,
        )
    if "r2_pca_heldout" in pca and "r2_gene_heldout" in out:
        if out["r2_gene_heldout"] < pca["r2_pca_heldout"]:
            logg.warning(
                f"On the {out['n_heldout']} held-out cells siVAE's reconstruction (R², genes "
                f"pooled, {out['r2_gene_heldout']:.3f}) does not beat PCA with the same "
                f"{n_latent} components fitted on the training cells "
                f"({pca['r2_pca_heldout']:.3f}): the decoder does not generalise beyond PCA "
                "here (too few cells for its size, or over-fitted). Read the map, not the "
                "decoder's gene predictions, or use fewer hidden units (`n_hidden`).",
                category=FitQualityWarning,
            )


def _dense_used(x, used: np.ndarray) -> np.ndarray:
    """The used genes of ``x`` (in memory, sparse or backed) as a dense float64 array."""
    from scipy import sparse

    from multiviz.models.sivae._backed import dense_columns, is_backed

    if is_backed(x):
        return dense_columns(x, used)
    return np.asarray(x.toarray() if sparse.issparse(x) else x, dtype=np.float64)[:, used]


def _loadings_vs_lstsq(x, scores: np.ndarray, loadings: np.ndarray, used: np.ndarray):
    """Median over dimensions of |Spearman| between loadings and least-squares coefficients.

    The coefficients regress each used gene on the scores (with an intercept): how the
    genes depend linearly on the map, which the loadings should rank alike. Only active
    dimensions count (score variance over cells above 0.01, Burda et al. 2016): the KL
    term collapses the others to the prior, where both are noise. ``None`` when the
    matrix is above :data:`PCA_BASELINE_MAX_ELEMENTS` or no dimension is active.
    """
    from scipy.stats import spearmanr

    active = np.flatnonzero(scores.var(0) > ACTIVE_VARIANCE)
    if x.shape[0] * int(used.sum()) > PCA_BASELINE_MAX_ELEMENTS or active.size == 0:
        return None
    xd = _dense_used(x, used)
    z = scores[:, active]
    design = np.c_[np.ones(len(z)), z - z.mean(0)]
    coef = np.linalg.lstsq(design, xd, rcond=None)[0][1:].T
    load = loadings[used][:, active]
    rho = [abs(spearmanr(load[:, d], coef[:, d])[0]) for d in range(coef.shape[1])]
    return float(np.median(np.nan_to_num(rho)))


#: Score variance above which a latent dimension counts as active.
ACTIVE_VARIANCE = 0.01
#: Below this Spearman correlation the loadings are said not to describe the map.
MIN_RHO_LSTSQ = 0.5


def _warn_if_loadings_unfaithful(out: dict) -> None:
    rho, r2_lin = out.get("rho_lstsq"), out["r2_linear"]
    if r2_lin <= 0 or (rho is not None and rho < MIN_RHO_LSTSQ):
        rho_txt = (
            ""
            if rho is None
            else (
                f" and the loadings' Spearman correlation with the least-squares coefficients of "
                f"the genes on the scores is {rho:.2f} (warned below {MIN_RHO_LSTSQ})"
            )
        )
        logg.warning(
            f"siVAE's loadings do not describe its map: the linear reconstruction v·z has "
            f"R² {r2_lin:.3f}{rho_txt}. Read the loadings as gene embeddings, not as "
            'explanations of the map; the default `design="map_first"` fits them to it.',
            category=FitQualityWarning,
        )
