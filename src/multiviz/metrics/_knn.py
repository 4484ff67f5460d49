"""k-nearest-neighbour metrics of embeddings (siVAE paper, Methods "Cell type classification")."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import accuracy_score, balanced_accuracy_score
from sklearn.neighbors import KNeighborsClassifier, NearestNeighbors

from multiviz._validate import InputError, check_positive_int

__all__ = ["knn_accuracy", "knn_purity"]


def _as_2d(x, arg: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise InputError(
            f"`{arg}` must be a 2-d array (observations x dimensions), got shape {x.shape}."
        )
    return x


def knn_accuracy(
    train_embedding,
    train_labels,
    test_embedding,
    test_labels,
    *,
    n_neighbors: int = 80,
    balanced: bool = True,
) -> float:
    """Accuracy of a k-NN classifier that predicts test labels from training embeddings.

    The siVAE paper's protocol (Choi & Quon 2023, Fig. 2b): embed training and test cells
    with the encoder trained on the training fold, fit a k-NN classifier (k = 80) on the
    training cells and report the balanced accuracy on the test cells.

    Parameters
    ----------
    train_embedding, test_embedding
        Cells x dimensions.
    train_labels, test_labels
        Labels of those cells.
    n_neighbors
        k (paper: 80 for scRNA-seq; capped at the number of training cells).
    balanced
        Balanced accuracy (mean per-class recall, the paper's choice) or plain accuracy.

    Returns
    -------
    Accuracy in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> import multiviz as mv
    >>> emb = np.r_[np.zeros((20, 2)), np.ones((20, 2))] + 0.01 * np.arange(40)[:, None]
    >>> labels = np.repeat(["a", "b"], 20)
    >>> train = np.arange(40) % 2 == 0
    >>> mv.metrics.knn_accuracy(
    ...     emb[train], labels[train], emb[~train], labels[~train], n_neighbors=5
    ... )
    1.0
    """
    xtr, xte = _as_2d(train_embedding, "train_embedding"), _as_2d(test_embedding, "test_embedding")
    ytr, yte = np.asarray(train_labels), np.asarray(test_labels)
    if len(ytr) != len(xtr) or len(yte) != len(xte):
        raise InputError("Each embedding needs one label per row.")
    k = min(check_positive_int(n_neighbors, "n_neighbors"), len(xtr))
    pred = KNeighborsClassifier(n_neighbors=k).fit(xtr, ytr).predict(xte)
    score = balanced_accuracy_score if balanced else accuracy_score
    return float(score(yte, pred))


def knn_purity(embedding, labels, *, n_neighbors: int = 10, mask=None) -> float:
    """Mean fraction of each point's k nearest neighbours (itself excluded) sharing its label.

    Parameters
    ----------
    embedding
        Points x dimensions (e.g. siVAE gene loadings).
    labels
        One label per point (e.g. gene community).
    n_neighbors
        k.
    mask
        Optional boolean array: average only over these query points (neighbours are
        still searched among all points).

    Returns
    -------
    Purity in [0, 1].

    Examples
    --------
    >>> import numpy as np
    >>> import multiviz as mv
    >>> emb = np.r_[np.zeros((20, 2)), np.ones((20, 2))] + 0.01 * np.arange(40)[:, None]
    >>> mv.metrics.knn_purity(emb, np.repeat(["a", "b"], 20), n_neighbors=5)
    """
    x = _as_2d(embedding, "embedding")
    labels = np.asarray(labels)
    if len(labels) != len(x):
        raise InputError("`labels` needs one entry per row of `embedding`.")
    k = check_positive_int(n_neighbors, "n_neighbors")
    if k >= len(x):
        raise InputError(f"`n_neighbors={k}` must be smaller than the number of points ({len(x)}).")
    _, ind = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors(x)
    same = labels[ind[:, 1:]] == labels[:, None]
    frac = same.mean(axis=1)
    if mask is not None:
        frac = frac[np.asarray(mask, dtype=bool)]
    return float(frac.mean())
