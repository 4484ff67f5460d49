"""Up-front data and argument checks of the tools in :mod:`multiviz.tl`.

They read the user's objects and never write; each problem is an :class:`InputError`
naming the argument and the fix, or a :class:`DataWarning` for legitimate but suspicious
input. Grouped by tool: :func:`~multiviz.tl.cca` / :func:`~multiviz.tl.cca_project`;
the paired-data tools (:func:`~multiviz.tl.sbnn`, :func:`~multiviz.tl.srrr`,
:func:`~multiviz.tl.cross_validate`, :func:`~multiviz.tl.selection_stability`,
:func:`~multiviz.tl.compare_methods`); :func:`~multiviz.tl.coupled_autoencoder`;
:func:`~multiviz.tl.project`. The sIVAE's checks are in :mod:`multiviz.tl._sivae_checks`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from anndata import AnnData
from mudata import MuData
from scipy import sparse

from .. import _logging as logg
from .._validate import (
    InputError,
    _values,
    check_finite,
    check_float,
    check_int,
    check_kwargs,
    check_numeric,
    check_option,
    get_layer,
    get_modality,
    resolve_target,
)
from .._warnings import DataWarning

#: A feature of new cells counts as "not scaled like the reference" when its mean is more
#: than this many reference SDs from the reference mean, or its SD off by this factor.
SCALE_TOLERANCE = 5.0

FEW_CELLS = 10
"""Below this many cells, :func:`check_prepared` refuses only clearly unscaled targets."""


# -- cca / cca_project --------------------------------------------------------------------


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


# -- sbnn / srrr / cross_validate / selection_stability / compare_methods -----------------


def check_prepared(mdata: MuData, x: str = "rna", y: str | None = None) -> None:
    """Refuse unprocessed input: raw counts in ``x`` or targets that are not z-scored.

    The sBNN and sRRR take z-scored log expression and z-scored targets (the paper's
    preprocessing, :func:`multiviz.pp.prepare_paired`). Raw counts (non-negative integers)
    let a handful of highly expressed genes (mitochondrial, *Actb*, spike-ins) dominate
    and give meaningless scores, so they are an error. Targets count as z-scored when
    every feature's mean is within ±1 and its SD within [0.2, 5] (a subset of prepared
    cells passes). The cell count is checked first: fewer than 2 cells is an error, and
    fewer than :data:`FEW_CELLS` cannot tell a subset of z-scored cells from unscaled
    data, so only clearly unscaled targets (mean outside ±5, SD above 20) are refused
    there and the tool's own minimum number of cells speaks.
    """
    y = resolve_target(mdata, y, "y")
    rna, target = get_modality(mdata, x, "x"), mdata.mod[y]
    if mdata.n_obs < 2:
        raise InputError(
            f"`mdata` has {mdata.n_obs} cells: too few cells to fit a model (at least 2, and "
            "sRRR needs 3, the sBNN 40 with pre-training). Use more cells."
        )
    check_numeric(target.X, f"mdata[{y!r}].X (the target modality)", names=target.var_names)
    hint = (
        f"Run `mv.pp.prepare_paired(mdata, x={x!r}, y={y!r})` first: it normalises and "
        "log-transforms the counts and z-scores genes and targets (the sBNN paper's recipe)."
    )
    X = rna.X
    if X is not None:
        vals = _values(X)
        if (
            vals.size
            and vals.dtype.kind in "iub"
            or (
                vals.size
                and vals.min() >= 0
                and np.array_equal(vals, np.round(vals))
                and vals.max() > 1
            )
        ):
            raise InputError(f"`mdata[{x!r}].X` holds raw counts (non-negative integers). {hint}")
    Y = np.asarray(_values(target.X) if not sparse.issparse(target.X) else target.X.toarray())
    if Y.size and Y.shape[0] > 1:
        Y = Y.astype(np.float64)
        mean, sd = np.nanmean(Y, axis=0), np.nanstd(Y, axis=0)
        varying = sd > 0
        if Y.shape[0] < FEW_CELLS:  # a few cells of z-scored data stray far from 0 / 1
            bad = varying & ((np.abs(mean) > 5) | (sd > 20))
        else:
            bad = varying & ((np.abs(mean) > 1) | (sd < 0.2) | (sd > 5))
        if bad.any():
            names = [str(n) for n in target.var_names[bad][:5]]
            raise InputError(
                f"`mdata[{y!r}].X` is not z-scored ({int(bad.sum())} features with a mean "
                f"outside ±1 or an SD outside [0.2, 5], e.g. {names}). {hint}"
            )


def check_n_genes(n_genes: int, n_available: int) -> None:
    """``n_genes`` must not exceed the genes available to the model."""
    if isinstance(n_genes, bool) or not isinstance(n_genes, int | np.integer) or n_genes < 1:
        raise InputError(f"`n_genes` must be a positive integer, got {n_genes!r}.")
    if n_genes > n_available:
        raise InputError(
            f"`n_genes`={n_genes} exceeds the {n_available} genes available to the model; "
            "lower `n_genes` or widen `genes`."
        )


def check_model_kwargs(method: str, kwargs: dict, where: str) -> None:
    """Unknown names and out-of-range values are rejected before any work."""
    # deferred: _ensemble_fits loads torch, which the other tools' checks must not
    from ._ensemble_fits import SBNN_MODEL_ARGS, SBNN_TRAIN_ARGS, SRRR_ARGS

    allowed = (
        SRRR_ARGS
        if method == "srrr"
        else (*SBNN_MODEL_ARGS, *SBNN_TRAIN_ARGS, "gene_decoder_epochs")
    )
    check_kwargs(kwargs, allowed, where)
    for name in ("pretrain_epochs", "frozen_epochs", "unfrozen_epochs", "no_pretrain_epochs"):
        if name in kwargs:
            check_int(kwargs[name], name, minimum=0)
    for name in ("pruned_epochs", "batch_size", "bottleneck", "rank"):
        if name in kwargs:
            check_int(kwargs[name], name, minimum=1)
    for name in ("lr", "lr_finetune"):
        if name in kwargs:
            check_float(kwargs[name], name, low=0.0, low_open=True, high=1.0)
    if "lasso" in kwargs:
        check_float(kwargs["lasso"], "lasso", low=0.0)
    if "val_fraction" in kwargs:
        check_float(
            kwargs["val_fraction"], "val_fraction", low=0.0, high=1.0, low_open=True, high_open=True
        )
    if "handover" in kwargs:
        check_option(kwargs["handover"], ("last", "best"), "handover")
    if "pretrain" in kwargs:
        check_option(kwargs["pretrain"], (True, False), "pretrain")
    if kwargs.get("gene_decoder_epochs"):
        raise InputError(
            "`gene_decoder_epochs` does not affect the predictions or the gene selection, so "
            "cross-validation does not train the gene decoder; leave it out."
        )


# -- coupled_autoencoder ------------------------------------------------------------------


def check_standardised(mdata: MuData, modalities: Sequence[str], layers: Mapping) -> None:
    """Refuse raw input: integer counts, or features far from a standardised scale.

    The paper (and :func:`multiviz.pp.prepare_paired`) log-normalises the counts and
    z-scores both modalities; on raw counts or raw ephys values the reconstruction weights
    α and the coupling's scale have no meaning.
    """
    for mod in modalities:
        X = get_layer(mdata.mod[mod], layers.get(mod), f"layers[{mod!r}]")
        vals = X.data if sparse.issparse(X) else np.asarray(X)
        vals = vals[np.isfinite(vals)] if vals.dtype.kind == "f" else vals
        if vals.size == 0:
            continue
        hint = (
            "Preprocess first, e.g. `mv.pp.prepare_paired(mdata, x='rna', y='ephys')` "
            "(log-normalise the counts, z-score both modalities)."
        )
        if vals.min() >= 0 and vals.max() > 20 and np.all(vals == np.round(vals)):
            raise InputError(
                f"`mdata[{mod!r}]` holds raw counts (non-negative integers up to "
                f"{vals.max():.0f}). {hint}"
            )
        with np.errstate(all="ignore"):
            if sparse.issparse(X):  # column moments without densifying the cells
                mean = np.asarray(X.mean(axis=0), dtype=np.float64).ravel()
                sq = np.asarray(X.multiply(X).mean(axis=0), dtype=np.float64).ravel()
                sd = np.sqrt(np.maximum(sq - mean**2, 0.0))
            else:
                dense = np.asarray(X, dtype=np.float64)
                mean, sd = np.nanmean(dense, axis=0), np.nanstd(dense, axis=0)
            scale = np.nanmax(np.abs(mean) + sd)
        if scale > 100:
            raise InputError(
                f"`mdata[{mod!r}]` is not standardised (a feature's |mean| + SD is "
                f"{scale:.3g}). {hint}"
            )


# -- project ------------------------------------------------------------------------------


def check_new_cells(mdata: MuData, x: str) -> None:
    """Refuse new cells the model cannot read: no cells, or NaN/inf in the gene modality.

    Checked before the model looks for raw counts, so an empty object or NaN counts are
    named as such rather than as "needs raw counts".
    """
    rna = get_modality(mdata, x, "x")
    if mdata.n_obs == 0 or rna.n_obs == 0:
        raise InputError(
            f"`mdata[{x!r}]` has no cells (n_obs == 0): there is nothing to project. Pass "
            "the new cells, e.g. `mdata[mask].copy()` with a non-empty `mask`."
        )
    layer = "counts" if "counts" in rna.layers else None
    where = f"mdata[{x!r}]." + ("layers['counts']" if layer else "X")
    check_finite(get_layer(rna, layer), where)
