"""Cell-type consistency of latent representations (Gala et al., NeurIPS 2019, Fig. 3).

Pure functions on arrays: a quadratic discriminant (QDA) fitted on training latents
predicts labels of test latents, either from the same arm (:func:`qda_accuracy`) or from
another arm (:func:`cross_modal_accuracy`: fit on z_T, predict from z_E); and a Gaussian
mixture fitted on one arm's training latents labels the test cells from both arms, whose
agreement is scored by AMI and ARI (:func:`gmm_consistency`).
"""

from __future__ import annotations

import numpy as np
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis
from sklearn.metrics import adjusted_mutual_info_score, adjusted_rand_score
from sklearn.mixture import GaussianMixture

from .._validate import InputError, check_positive_int

__all__ = ["cross_modal_accuracy", "gmm_consistency", "qda_accuracy"]


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
    y = np.asarray(y).astype(str)
    if y.shape != (n,):
        raise InputError(f"`{arg}` must hold one label per cell ({n}), got shape {y.shape}.")
    return y


def _fit_predict_qda(z_train, y_train, z_test, y_test, reg_param, min_cells):
    z_train, z_test = _as_2d(z_train, "z_train"), _as_2d(z_test, "z_test")
    y_train = _labels(y_train, z_train.shape[0], "y_train")
    y_test = _labels(y_test, z_test.shape[0], "y_test")
    if z_train.shape[1] != z_test.shape[1]:
        raise InputError(
            f"`z_train` has {z_train.shape[1]} dims but `z_test` has {z_test.shape[1]}."
        )
    classes, counts = np.unique(y_train, return_counts=True)
    kept = classes[counts >= min_cells]
    if kept.size < 2:
        raise InputError(
            f"Fewer than two classes have >= {min_cells} training cells; lower `min_cells` "
            "or use coarser labels."
        )
    train = np.isin(y_train, kept)
    # the test set is filtered to the same classes (the reference's filter was a no-op)
    test = np.isin(y_test, kept)
    if not test.any():
        raise InputError("No test cell belongs to a class kept for training.")
    qda = QuadraticDiscriminantAnalysis(reg_param=reg_param)
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

    Returns
    -------
    Fraction of retained test cells whose label is predicted correctly.
    """
    check_positive_int(min_cells, "min_cells")
    return _fit_predict_qda(z_train, y_train, z_test, y_test, reg_param, min_cells)


def cross_modal_accuracy(
    z_source_train,
    y_train,
    z_target_test,
    y_test,
    *,
    reg_param: float = 1e-2,
    min_cells: int = 6,
) -> float:
    """Cross-modal type prediction (paper Fig. 3B): QDA fitted on one arm, applied to another.

    The paper fits the classifier on the transcriptomic latents of training cells
    (``z_source_train`` = z_T) and predicts the types of test cells from their
    electrophysiological latents (``z_target_test`` = z_E). Same class filtering and
    regularisation as :func:`qda_accuracy`.
    """
    check_positive_int(min_cells, "min_cells")
    return _fit_predict_qda(z_source_train, y_train, z_target_test, y_test, reg_param, min_cells)


def gmm_consistency(
    z_fit,
    z_a,
    z_b,
    *,
    n_components: int,
    n_init: int = 100,
    covariance_type: str = "full",
    random_state: int = 0,
) -> dict[str, float]:
    """Agreement of unsupervised labels from two arms (paper Fig. 3C).

    A Gaussian mixture is fitted on ``z_fit`` (e.g. z_T of the training cells); each test
    cell is labelled twice, from its latent in arm A (``z_a``) and in arm B (``z_b``, same
    cells, same order), and the two labelings are compared.

    Parameters
    ----------
    z_fit
        Latents the mixture is fitted on.
    z_a, z_b
        Latents of the same test cells in two arms.
    n_components
        Mixture components.
    n_init
        EM initialisations (100 in the paper).
    covariance_type
        Passed to :class:`~sklearn.mixture.GaussianMixture`.
    random_state
        Seed.

    Returns
    -------
    ``{"ami": adjusted mutual information, "ari": adjusted Rand index}``.
    """
    z_fit, z_a, z_b = _as_2d(z_fit, "z_fit"), _as_2d(z_a, "z_a"), _as_2d(z_b, "z_b")
    if z_a.shape != z_b.shape:
        raise InputError(f"`z_a` {z_a.shape} and `z_b` {z_b.shape} must describe the same cells.")
    check_positive_int(n_components, "n_components")
    if n_components > z_fit.shape[0]:
        raise InputError(f"`n_components={n_components}` exceeds the {z_fit.shape[0]} fit cells.")
    gmm = GaussianMixture(
        n_components=n_components,
        covariance_type=covariance_type,
        n_init=n_init,
        random_state=random_state,
    ).fit(z_fit)
    la, lb = gmm.predict(z_a), gmm.predict(z_b)
    return {
        "ami": float(adjusted_mutual_info_score(la, lb)),
        "ari": float(adjusted_rand_score(la, lb)),
    }
