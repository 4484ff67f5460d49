"""Up-front checks of :func:`multiviz.tl.cca` and :func:`multiviz.tl.cca_project`.

They read the user's objects and never write; each problem is an :class:`InputError`
naming the argument and the fix, or a :class:`DataWarning` for legitimate but suspicious
input.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from anndata import AnnData

from .. import _logging as logg
from .._validate import InputError
from .._warnings import DataWarning

#: A feature of new cells counts as "not scaled like the reference" when its mean is more
#: than this many reference SDs from the reference mean, or its SD off by this factor.
SCALE_TOLERANCE = 5.0


def check_paired_cells(n_paired: int, modalities: Sequence[str]) -> None:
    """PC-CCA needs at least 3 cells present in both modalities."""
    if n_paired < 3:
        raise InputError(
            f"{n_paired} cells are present in both modalities {list(modalities)}; PC-CCA "
            "needs at least 3 paired cells. Use more cells."
        )


def check_cca_sizes(
    n_paired: int,
    n_features: Sequence[int],
    n_pcs: Sequence[int],
    n_components: int,
    modalities: Sequence[str],
) -> list[int]:
    """The principal components each modality gets, after checking ``n_components``.

    A modality supports at most ``min(n_pcs, n_features, n_paired - 1)`` components; a
    requested ``n_pcs`` above ``n_paired - 1`` (too few cells, not too few features) is
    lowered with a :class:`DataWarning` naming the value used. ``n_components`` may be at
    most the smaller modality's components and ``n_paired - 2``; above that is an error
    that states the maximum.

    Returns
    -------
    The principal components per modality.
    """
    used = []
    for mod, n_feat, pcs in zip(modalities, n_features, n_pcs):
        used.append(min(pcs, n_feat, n_paired - 1))
        if pcs > n_paired - 1 and n_paired - 1 < n_feat:
            logg.warning(
                "cca: `n_pcs=%d` for %r exceeds the %d paired cells minus 1; used n_pcs=%d. "
                "Pass `n_pcs` <= %d to silence this, or use more cells.",
                pcs,
                mod,
                n_paired,
                used[-1],
                n_paired - 1,
                category=DataWarning,
            )
    maximum = min(*used, n_paired - 2)
    if n_components > maximum:
        raise InputError(
            f"`n_components={n_components}` is more than these data allow: at most "
            f"{maximum}, the smallest of the principal components per modality {used} "
            f"(`n_pcs`, capped by each modality's features and the {n_paired} paired cells "
            f"minus 1) and the paired cells minus 2. Pass `n_components` <= {maximum}."
        )
    return used


def check_new_features(adata: AnnData, modality: str) -> None:
    """Refuse duplicated feature names in the new cells (matching by name is ambiguous)."""
    names = adata.var_names
    if not names.is_unique:
        dup = [str(d) for d in names[names.duplicated()].unique()]
        raise InputError(
            f"`adata` has {len(dup)} duplicated feature names (var_names), e.g. {dup[:5]}; "
            f"features are matched to the reference's {modality!r} by name, so each must be "
            "unique. Run `adata.var_names_make_unique()` first (or drop the duplicates)."
        )


def _column_stats(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=np.float64)
    return X.mean(axis=0), X.std(axis=0)


def warn_if_scaled_differently(
    X_new: np.ndarray, X_ref: np.ndarray | None, names: Sequence[str], modality: str, ref
) -> bool:
    """Warn when new cells are not on the reference's scale (e.g. not z-scored).

    Compares each used feature's mean and SD over the new cells with the reference's
    (or with 0 and 1 when the reference's values are not available). Returns True if
    it warned.
    """
    if X_new.shape[0] == 0 or X_new.shape[1] == 0:
        return False
    mean_new, sd_new = _column_stats(X_new)
    if X_ref is not None and X_ref.shape[0] > 1:
        mean_ref, sd_ref = _column_stats(X_ref)
    else:
        mean_ref, sd_ref = np.zeros_like(mean_new), np.ones_like(sd_new)
    ok = sd_ref > 0
    if not ok.any():
        return False
    shift = np.abs(mean_new[ok] - mean_ref[ok]) / sd_ref[ok]
    off = shift > SCALE_TOLERANCE
    if X_new.shape[0] > 2:
        ratio = sd_new[ok] / sd_ref[ok]
        off |= (ratio > SCALE_TOLERANCE) | (ratio < 1 / SCALE_TOLERANCE)
    if off.sum() < max(1, 0.25 * ok.sum()):
        return False
    bad = [str(n) for n in np.asarray(names)[ok][off]]
    fix = (
        f"`(X - ref.var['zscore_mean']) / ref.var['zscore_std']` with `ref = reference[{modality!r}]`"
        if {"zscore_mean", "zscore_std"} <= set(ref.var)
        else "the means and SDs of the reference's cells"
    )
    logg.warning(
        "cca_project: %d of %d features of `adata` are not on the scale of the reference's "
        "%r data (mean more than %g reference SDs away, or SD off by more than %gx), e.g. %s: "
        "the latents will be off by as much. Z-score the new cells with the reference's "
        "statistics first: %s.",
        int(off.sum()),
        int(ok.sum()),
        modality,
        SCALE_TOLERANCE,
        SCALE_TOLERANCE,
        bad[:5],
        fix,
        category=DataWarning,
    )
    return True
