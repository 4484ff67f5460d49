"""Cell-type consistency of latent representations (Gala et al., NeurIPS 2019, Fig. 3).

Pure functions on arrays: a quadratic discriminant (QDA, equal class priors as in the
reference code) fitted on training latents predicts labels of test latents, either from
the same arm (:func:`qda_accuracy`) or from another arm (:func:`cross_modal_accuracy`:
fit on z_t, predict from z_e); separate Gaussian mixtures fitted on each arm's training
latents label the test cells, and the agreement of the two labelings is scored by AMI and
ARI (:func:`gmm_consistency`). :func:`celltype_consistency` runs all of them for one
cross-validation fold at every level of a cell-type taxonomy, with one rare-class filter
(:func:`kept_classes`) shared by every method.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score
from sklearn.mixture import GaussianMixture

from .._validate import InputError, check_option, check_positive_int, check_random_state

__all__ = [
    "celltype_consistency",
    "cross_modal_accuracy",
    "gmm_consistency",
    "kept_classes",
    "qda_accuracy",
]

#: Label values treated as "no label" (scored nowhere, never a class).
MISSING_LABELS = ("", "nan", "NaN", "None", "NA", "<NA>")


def _as_2d(z, arg: str) -> np.ndarray:
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise InputError(f"`{arg}` must be a 2-d array (cells x latent dims), got shape {z.shape}.")
    if not np.isfinite(z).all():
        raise InputError(
            f"`{arg}` contains NaN or inf; keep only the cells measured in that modality "
            "(rows of `X_cae_<mod>` without NaN)."
        )
    return z


def _labels(y, n: int, arg: str) -> np.ndarray:
    y = np.asarray(y, dtype=object)
    if y.shape != (n,):
        raise InputError(f"`{arg}` must hold one label per cell ({n}), got shape {y.shape}.")
    return np.array(["" if v is None else str(v) for v in y], dtype=object).astype(str)


def kept_classes(y_train, *, min_cells: int = 6, exclude: Sequence[str] = ()) -> np.ndarray:
    """Classes with at least ``min_cells`` training cells: the rare-class filter.

    The paper scores "types ... that have at least 6 representatives in the training set";
    the same filter, computed from the training labels of a fold only, is applied to every
    method compared on that fold. Missing labels (NaN, ``""``) and ``exclude`` never count.

    Parameters
    ----------
    y_train
        Training labels of one fold.
    min_cells
        Minimum training cells per class (6, paper Section 3).
    exclude
        Labels that are not classes (e.g. ``"low quality"``).

    Returns
    -------
    Sorted array of the kept class names.

    Examples
    --------
    >>> import multiviz as mv
    >>> mv.metrics.kept_classes(["a"] * 8 + ["b"] * 3, min_cells=6)
    array(['a'], dtype='<U1')
    """
    check_positive_int(min_cells, "min_cells")
    y = _labels(y_train, len(np.asarray(y_train)), "y_train")
    classes, counts = np.unique(y, return_counts=True)
    bad = set(MISSING_LABELS) | {str(e) for e in exclude}
    return np.array([c for c, n in zip(classes, counts) if n >= min_cells and c not in bad])


def _qda(z_train, y_train, z_test, y_test, reg_param, min_cells, priors, kept=None) -> float:
    z_train, z_test = _as_2d(z_train, "z_train"), _as_2d(z_test, "z_test")
    y_train = _labels(y_train, z_train.shape[0], "y_train")
    y_test = _labels(y_test, z_test.shape[0], "y_test")
    check_option(priors, ("equal", "empirical"), "priors")
    if z_train.shape[1] != z_test.shape[1]:
        raise InputError(
            f"`z_train` has {z_train.shape[1]} dims but `z_test` has {z_test.shape[1]}."
        )
    if kept is None:
        kept = kept_classes(y_train, min_cells=min_cells)
    if kept.size < 2:
        raise InputError(
            f"Fewer than two classes have >= {min_cells} training cells; lower `min_cells` "
            "or use coarser labels."
        )
    train, test = np.isin(y_train, kept), np.isin(y_test, kept)
    if not test.any():
        raise InputError("No test cell belongs to a class kept for training.")
    # equal priors: the reference code's QDA (class frequencies would favour big types)
    prior = np.full(kept.size, 1.0 / kept.size) if priors == "equal" else None
    qda = QuadraticDiscriminantAnalysis(reg_param=reg_param, priors=prior)
    qda.fit(z_train[train], y_train[train])
    return float(np.mean(qda.predict(z_test[test]) == y_test[test]))


def qda_accuracy(
    z_train,
    y_train,
    z_test,
    y_test,
    *,
    reg_param: float = 1e-2,
    min_cells: int = 6,
    priors: Literal["equal", "empirical"] = "equal",
) -> float:
    """Test accuracy of a QDA classifier fitted on training latents (paper Fig. 3A).

    Classes with fewer than ``min_cells`` training cells are dropped from training, and test
    cells of dropped (or unseen) classes are removed before scoring, as the paper states
    ("types ... that have at least 6 representatives in the training set").

    Parameters
    ----------
    z_train, y_train
        Training latents (cells x dims) and their labels.
    z_test, y_test
        Test latents and labels.
    reg_param
        :class:`~sklearn.discriminant_analysis.QuadraticDiscriminantAnalysis` covariance
        regularisation (1e-2 in the reference code).
    min_cells
        Minimum training cells per class (6, paper Section 3).
    priors
        ``"equal"`` class priors (the reference code) or ``"empirical"`` class frequencies.

    Returns
    -------
    Fraction of retained test cells whose label is predicted correctly.

    Examples
    --------
    >>> acc = mv.metrics.qda_accuracy(z_t[train], types[train], z_t[test], types[test])
    """
    check_positive_int(min_cells, "min_cells")
    return _qda(z_train, y_train, z_test, y_test, reg_param, min_cells, priors)


def cross_modal_accuracy(
    z_source_train,
    y_train,
    z_target_test,
    y_test,
    *,
    reg_param: float = 1e-2,
    min_cells: int = 6,
    priors: Literal["equal", "empirical"] = "equal",
) -> float:
    """Cross-modal type prediction (paper Fig. 3B): QDA fitted on one arm, applied to another.

    The paper fits the classifier on the transcriptomic latents of training cells
    (``z_source_train`` = z_t) and predicts the types of test cells from their
    electrophysiological latents (``z_target_test`` = z_e). Same class filtering, priors
    and regularisation as :func:`qda_accuracy`.

    Examples
    --------
    >>> acc = mv.metrics.cross_modal_accuracy(z_t[train], types[train], z_e[test], types[test])
    """
    check_positive_int(min_cells, "min_cells")
    return _qda(z_source_train, y_train, z_target_test, y_test, reg_param, min_cells, priors)


def gmm_consistency(
    z_a_train,
    z_b_train,
    z_a_test,
    z_b_test,
    *,
    n_components: int,
    n_init: int = 100,
    covariance_type: str = "full",
    random_state: int = 0,
) -> dict[str, float]:
    """Agreement of unsupervised labels from two arms (paper Fig. 3C).

    As the paper: Gaussian mixtures are fitted "to the training data z_t and z_e
    independently"; each test cell is labelled by the mixture of arm A from its z_a and by
    the mixture of arm B from its z_b, and the two labelings are compared.

    Parameters
    ----------
    z_a_train, z_b_train
        Training latents of arm A and arm B (each arm's mixture is fitted on its own).
    z_a_test, z_b_test
        Latents of the same test cells in the two arms (same order).
    n_components
        Mixture components (the paper varies it; :func:`celltype_consistency` uses the
        number of kept classes of the taxonomy level).
    n_init
        EM initialisations (100 in the paper).
    covariance_type
        Passed to :class:`~sklearn.mixture.GaussianMixture`.
    random_state
        Seed of both mixtures.

    Returns
    -------
    ``{"ami": adjusted mutual information, "ari": adjusted Rand index}``.

    Examples
    --------
    >>> import numpy as np
    >>> import multiviz as mv
    >>> rng = np.random.default_rng(0)
    >>> z = np.r_[rng.normal(0, 0.1, (50, 2)), rng.normal(3, 0.1, (50, 2))]
    >>> scores = mv.metrics.gmm_consistency(z, z, z, z, n_components=2, n_init=5)
    """
    za_tr, zb_tr = _as_2d(z_a_train, "z_a_train"), _as_2d(z_b_train, "z_b_train")
    za, zb = _as_2d(z_a_test, "z_a_test"), _as_2d(z_b_test, "z_b_test")
    if za.shape != zb.shape:
        raise InputError(
            f"`z_a_test` {za.shape} and `z_b_test` {zb.shape} must describe the same cells."
        )
    check_positive_int(n_components, "n_components")
    check_positive_int(n_init, "n_init")
    random_state = check_random_state(random_state)
    n_fit = min(za_tr.shape[0], zb_tr.shape[0])
    if n_components > n_fit:
        raise InputError(f"`n_components={n_components}` exceeds the {n_fit} training cells.")
    labels = []
    for z_fit, z in ((za_tr, za), (zb_tr, zb)):
        gmm = GaussianMixture(
            n_components=n_components,
            covariance_type=covariance_type,
            n_init=n_init,
            random_state=random_state,
        ).fit(z_fit)
        labels.append(gmm.predict(z))
    return {
        "ami": float(adjusted_mutual_info_score(*labels)),
        "ari": float(adjusted_rand_score(*labels)),
    }


def celltype_consistency(
    z_train: Mapping[str, np.ndarray],
    z_test: Mapping[str, np.ndarray],
    labels_train: Mapping[str, Sequence],
    labels_test: Mapping[str, Sequence],
    *,
    min_cells: int = 6,
    exclude: Sequence[str] = (),
    reg_param: float = 1e-2,
    priors: Literal["equal", "empirical"] = "equal",
    n_init: int | None = 100,
    random_state: int = 0,
) -> dict[str, dict[str, float]]:
    """All of the paper's Fig. 3 scores for one fold, at every taxonomy level.

    Parameters
    ----------
    z_train, z_test
        ``{arm: latents}`` of two arms, in order (t first, then e), for the paired training
        and test cells of the fold (same cells, same order in both arms).
    labels_train, labels_test
        ``{level: labels}``, e.g. ``{"rna_family": ..., "rna_type": ...}``.
    min_cells
        Rare-class filter of :func:`kept_classes` (6, paper), computed once per level from
        the training labels and shared by every score (and so by every method scored on
        the same fold).
    exclude
        Labels that are not classes (e.g. ``"low quality"``); missing labels never count.
    reg_param, priors
        QDA settings (:func:`qda_accuracy`; reference: 1e-2, equal priors).
    n_init
        EM initialisations of the two mixtures (100 in the paper); ``None`` skips them.
    random_state
        Seed of the mixtures.

    Returns
    -------
    ``{level: scores}`` with ``qda_<a>``, ``qda_<b>`` (within-arm), ``qda_<a>_to_<b>``
    (fit on arm a, predict from arm b: the paper's cross-modal score when a = t),
    ``qda_<b>_to_<a>``, ``gmm_ami``, ``gmm_ari`` (mixtures with one component per kept
    class, scored on the test cells of kept classes), ``n_classes``, ``n_test``.

    Examples
    --------
    >>> scores = mv.metrics.celltype_consistency(
    ...     {"rna": zt_tr, "ephys": ze_tr}, {"rna": zt_te, "ephys": ze_te},
    ...     {"rna_type": types[train]}, {"rna_type": types[test]})
    """
    random_state = check_random_state(random_state)
    arms = list(z_train)
    if len(arms) != 2 or list(z_test) != arms:
        raise InputError(
            f"`z_train` and `z_test` must map the same two arms, in the same order; got "
            f"{list(z_train)} and {list(z_test)}."
        )
    if set(labels_train) != set(labels_test) or not labels_train:
        raise InputError("`labels_train` and `labels_test` must name the same levels.")
    a, b = arms
    zs_tr = {m: _as_2d(z_train[m], f"z_train[{m!r}]") for m in arms}
    zs_te = {m: _as_2d(z_test[m], f"z_test[{m!r}]") for m in arms}
    if zs_tr[a].shape != zs_tr[b].shape or zs_te[a].shape != zs_te[b].shape:
        raise InputError("Both arms must hold the same (paired) cells in the same order.")
    out: dict[str, dict[str, float]] = {}
    for level in labels_train:
        y_tr = _labels(labels_train[level], zs_tr[a].shape[0], f"labels_train[{level!r}]")
        y_te = _labels(labels_test[level], zs_te[a].shape[0], f"labels_test[{level!r}]")
        kept = kept_classes(y_tr, min_cells=min_cells, exclude=exclude)
        args = (reg_param, min_cells, priors, kept)
        res = {
            f"qda_{a}": _qda(zs_tr[a], y_tr, zs_te[a], y_te, *args),
            f"qda_{b}": _qda(zs_tr[b], y_tr, zs_te[b], y_te, *args),
            f"qda_{a}_to_{b}": _qda(zs_tr[a], y_tr, zs_te[b], y_te, *args),
            f"qda_{b}_to_{a}": _qda(zs_tr[b], y_tr, zs_te[a], y_te, *args),
        }
        test = np.isin(y_te, kept)
        if n_init is not None:
            g = gmm_consistency(
                zs_tr[a],
                zs_tr[b],
                zs_te[a][test],
                zs_te[b][test],
                n_components=int(kept.size),
                n_init=n_init,
                random_state=random_state,
            )
            res["gmm_ami"], res["gmm_ari"] = g["ami"], g["ari"]
        res["n_classes"], res["n_test"] = int(kept.size), int(test.sum())
        out[level] = res
    return out
