"""The sBNN paper's schedule: its constants, phases and pre-training labels.

Everything here is plain module-level names and functions (re-exported by
:mod:`multiviz.models.sbnn._plan`) so that the batched ensemble can reproduce the single
fit's schedule exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ... import _logging as logg
from ..._warnings import DataWarning

# --- the paper's schedule (Bernaerts et al., Methods "Training" / "Pre-training") --------
PRETRAIN_EPOCHS = 50
"""k-means classification pre-training with the group lasso (lr :data:`LR`)."""
FROZEN_EPOCHS = 50
"""Regression with the bottom two layers frozen (lr :data:`LR`)."""
UNFROZEN_EPOCHS = 50
"""All layers trainable (lr :data:`LR_FINETUNE`); pruning follows."""
NO_PRETRAIN_EPOCHS = 100
"""Without pre-training: lasso regression before pruning (lr :data:`LR`)."""
PRUNED_EPOCHS = 100
"""Fine-tuning on the kept genes without the lasso (lr :data:`LR_FINETUNE`)."""
LR = 1e-4
"""Adam learning rate (the paper found Keras' default 1e-3 noisy)."""
LR_FINETUNE = 5e-5
"""Adam learning rate after unfreezing and after pruning."""
LASSO = 0.1
"""Group-lasso strength of the paper's model."""
BATCH_SIZE = 32
"""Minibatch size."""
RIDGE = 1e-10
"""L2 penalty on all weights (paper: no effect), as Adam weight decay ``2 * RIDGE``."""
N_GENES = 25
"""Genes kept at pruning."""
N_CLUSTERS = 20
"""k-means clusters of the targets that define the pre-training classes (K = 20 on the
paper's 1,092 training cells: ~55 cells per class). On other data sizes the default K keeps
that ratio, at most 20 (:func:`size_scaled_clusters`)."""
KMEANS_N_INIT = 1000
"""k-means restarts in the reference code (``KMeans(n_init=1000)``)."""
KMEANS_INIT = "random"
"""Seeding of each restart: random points (scikit-learn ``init="random"``). On M1's
training folds 1000 such restarts cost ~4.5 s of CPU against ~7.8 s with k-means++
seeding and reach the same inertia to 0.03 % (either may be lower)."""
MIN_CLUSTER_SIZE = 10
"""Clusters with fewer members are dropped: their cells take no part in pre-training
(reference code)."""
VAL_FRACTION = 0.4
"""Fraction of the training cells held out during pre-training (validation loss logged)."""
HANDOVER = "last"
"""Pre-training epoch handed to the regression phases: the last one, as the reference
code does (``"best"``: lowest validation cross-entropy, the paper's text)."""

# --- training length at other data sizes (issue 11): steps, not epochs, carry over ----
REFERENCE_CELLS = 1092
"""Training cells at which the paper's epoch counts are defined: one training fold of its
10-fold cross-validation of M1 (1,213 cells x 9/10). At batch 32 a paper epoch there is
35 optimisation steps, so e.g. the 50 pre-training epochs are 1,750 steps."""
MAX_STEPS_FACTOR = 4
"""A phase trains at most this many times its steps at :data:`REFERENCE_CELLS` (data
larger than ~4,400 cells get fewer epochs than the paper's; each still sees every cell)."""


PAPER_EPOCHS = {
    "pretrain_epochs": PRETRAIN_EPOCHS,
    "frozen_epochs": FROZEN_EPOCHS,
    "unfrozen_epochs": UNFROZEN_EPOCHS,
    "no_pretrain_epochs": NO_PRETRAIN_EPOCHS,
    "pruned_epochs": PRUNED_EPOCHS,
}
"""The paper's phase lengths (epochs at :data:`REFERENCE_CELLS`), by argument name."""


def reference_steps(paper_epochs: int, batch_size: int = BATCH_SIZE) -> int:
    """Optimisation steps of ``paper_epochs`` epochs at :data:`REFERENCE_CELLS` cells."""
    return int(paper_epochs) * math.ceil(REFERENCE_CELLS / int(batch_size))


def size_scaled_epochs(paper_epochs: int, n_cells: int, batch_size: int = BATCH_SIZE) -> int:
    """A phase's epochs on ``n_cells`` training cells: the paper's, within step bounds.

    The paper's epoch counts were set on M1 (:data:`REFERENCE_CELLS` training cells).
    Held at epochs, 80 cells would get 1/14 of the optimisation steps (an untrained
    network: the group lasso has not acted when pruning picks the genes) and 10,000
    cells 9x as many. The phase length is therefore bounded in steps: at least
    :func:`reference_steps` (the paper's steps at the paper's size), at most
    :data:`MAX_STEPS_FACTOR` times that, and exactly the paper's epochs in between
    (so M1 trains the paper's schedule unchanged).

    Parameters
    ----------
    paper_epochs
        The paper's epochs for the phase (:data:`PRETRAIN_EPOCHS`, ...).
    n_cells
        Training cells of the fit.
    batch_size
        Minibatch size (:data:`BATCH_SIZE`).

    Returns
    -------
    Epochs, at least 1 (0 stays 0).

    Examples
    --------
    >>> size_scaled_epochs(50, 1092), size_scaled_epochs(50, 72), size_scaled_epochs(50, 10_000)
    (50, 584, 22)
    """
    if paper_epochs <= 0:
        return 0
    per_epoch = max(math.ceil(int(n_cells) / int(batch_size)), 1)
    low = math.ceil(reference_steps(paper_epochs) / per_epoch)
    high = max(MAX_STEPS_FACTOR * reference_steps(paper_epochs) // per_epoch, 1)
    return int(min(max(int(paper_epochs), low), high))


def default_epochs(n_cells: int, batch_size: int = BATCH_SIZE) -> dict[str, int]:
    """The paper's five phase lengths scaled to ``n_cells`` (:func:`size_scaled_epochs`)."""
    return {k: size_scaled_epochs(v, n_cells, batch_size) for k, v in PAPER_EPOCHS.items()}


def size_scaled_clusters(n_cells: int, max_clusters: int = N_CLUSTERS) -> int:
    """The default K of the pre-training k-means for ``n_cells`` training cells.

    The paper's K = 20 was set on :data:`REFERENCE_CELLS` training cells, ~55 cells per
    class. Held at 20, 72 training cells give classes of 3-4 cells: nearly all fall below
    :data:`MIN_CLUSTER_SIZE`, pre-training is asked to tell apart 20 classes from ~2 cells
    each, and the genes it hands to the regression are chosen on noise. The default keeps
    the paper's cells per class: ``round(20 * n_cells / 1092)``, between 2 and
    ``max_clusters``, so M1 and anything larger train the paper's K = 20 unchanged.

    Examples
    --------
    >>> [size_scaled_clusters(n) for n in (72, 180, 270, 1092, 10_000)]
    [2, 3, 5, 20, 20]
    """
    k = round(int(max_clusters) * int(n_cells) / REFERENCE_CELLS)
    return int(min(max(k, 2), int(max_clusters)))


def pretrain_labels(
    Y: np.ndarray,
    n_clusters: int | None = None,
    random_state: int = 0,
    *,
    n_init: int = KMEANS_N_INIT,
    min_size: int = MIN_CLUSTER_SIZE,
    init: str = KMEANS_INIT,
) -> np.ndarray:
    """Pre-training classes: k-means of the training targets, small clusters dropped.

    Parameters
    ----------
    Y
        Training targets ``(n, q)`` (z-scored with training statistics).
    n_clusters
        K; ``None`` (default): :func:`size_scaled_clusters` of the number of cells (the
        paper's K = 20 from 1,092 cells up).
    random_state
        Seed of the k-means restarts.
    n_init
        Restarts (:data:`KMEANS_N_INIT` = 1000, the reference code); the lowest-inertia
        solution is kept.
    min_size
        Clusters with fewer members are dropped (:data:`MIN_CLUSTER_SIZE` = 10).
    init
        Seeding of each restart (:data:`KMEANS_INIT`).

    Returns
    -------
    ``(n,)`` int64 labels: kept clusters numbered ``0 .. K'-1`` by decreasing size
    (ties by k-means label), ``-1`` for cells of dropped clusters.
    """
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    Y = np.asarray(Y, dtype=np.float64)
    if n_clusters is None:
        n_clusters = size_scaled_clusters(Y.shape[0])
    with threadpool_limits(limits=max(torch.get_num_threads(), 1)):
        km = KMeans(
            n_clusters=n_clusters, n_init=n_init, init=init, random_state=int(random_state)
        ).fit(Y)
    raw = km.labels_
    sizes = np.bincount(raw, minlength=n_clusters)
    kept = [c for c in np.argsort(-sizes, kind="stable") if sizes[c] >= min_size]
    if len(kept) < 2:
        kept = [c for c in np.argsort(-sizes, kind="stable") if sizes[c] >= 2]
        logg.warning(
            "sBNN pre-training: fewer than 2 of the %d k-means clusters of %d cells have "
            ">= %d members; using the %d clusters with >= 2 members. With this few cells "
            "consider `pretrain=False`.",
            n_clusters,
            Y.shape[0],
            min_size,
            len(kept),
            category=DataWarning,
        )
    mapping = np.full(n_clusters, -1, dtype=np.int64)
    mapping[np.asarray(kept, dtype=np.int64)] = np.arange(len(kept))
    return mapping[raw]


@dataclass(frozen=True)
class Phase:
    """One phase of the sBNN schedule."""

    name: str
    epochs: int
    lr: float
    lasso: float
    loss: str = "mse"  # "ce" (pre-training), "mse" (targets), "genes" (gene decoder)
    frozen: tuple[str, ...] = ()  # parameter-name prefixes that are not trained
    prune_after: bool = False  # prune to ``n_genes`` genes at the end of this phase


def paper_schedule(
    *,
    pretrain: bool = True,
    pretrain_epochs: int = PRETRAIN_EPOCHS,
    frozen_epochs: int = FROZEN_EPOCHS,
    unfrozen_epochs: int = UNFROZEN_EPOCHS,
    no_pretrain_epochs: int = NO_PRETRAIN_EPOCHS,
    pruned_epochs: int = PRUNED_EPOCHS,
    gene_decoder_epochs: int = 0,
    lr: float = LR,
    lr_finetune: float = LR_FINETUNE,
    lasso: float = LASSO,
) -> list[Phase]:
    """The sBNN paper's schedule (Methods), phase by phase.

    With pre-training: k-means (K = 20, see :func:`pretrain_labels`) classification with
    the group lasso for 50 epochs at lr 1e-4 → last epoch kept, fresh regression head, 50 epochs with the bottom two layers
    frozen (lr 1e-4) → 50 epochs all layers at lr 5e-5 → prune → 100 epochs without
    lasso at lr 5e-5. Without pre-training: 100 epochs at lr 1e-4 → prune → 100 epochs.
    ``gene_decoder_epochs`` > 0 appends the "autoencoder" head, trained last on the
    selected genes with everything else frozen (lr 1e-4).
    """
    bottom = ("first.", "encoder_rest.0.")
    if pretrain:
        phases = [
            Phase("pretrain", pretrain_epochs, lr, lasso, loss="ce"),
            Phase("frozen", frozen_epochs, lr, lasso, frozen=bottom),
            Phase("unfrozen", unfrozen_epochs, lr_finetune, lasso, prune_after=True),
        ]
    else:
        phases = [Phase("lasso", no_pretrain_epochs, lr, lasso, prune_after=True)]
    phases.append(Phase("pruned", pruned_epochs, lr_finetune, 0.0))
    if gene_decoder_epochs:
        rest = ("first.", "encoder_rest.", "decoder.", "head.", "cluster_head.")
        phases.append(Phase("gene_decoder", gene_decoder_epochs, lr, 0.0, "genes", rest))
    return [p for p in phases if p.epochs > 0 or p.prune_after]


def baseline_cross_entropy(train_labels, val_labels, n_classes: int) -> float | None:
    """Validation cross-entropy of the class-frequency predictor (the "mean predictor").

    Frequencies from the pre-training cells with add-one smoothing; ``None`` without
    validation cells. A pre-training whose validation cross-entropy never drops below
    this has learned nothing the genes say about the target clusters.
    """
    val_labels = np.asarray(val_labels)
    if val_labels.size == 0:
        return None
    counts = np.bincount(np.asarray(train_labels), minlength=n_classes) + 1.0
    p = counts / counts.sum()
    return float(-np.mean(np.log(p[val_labels])))
