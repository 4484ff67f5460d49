"""siVAE's default training length (``max_epochs=None``): steps, not epochs, carry over.

The paper states no epoch counts. The reference code's fetal-liver experiment
(``Experiments/FetalLiverExperiment/repo_FetalLiver_3_model.py`` in
quon-titative-biology/siVAE: ``iter=2000``, ``mb_size=128`` in the ``graph_args`` of the run)
trains each step for 2,000 optimisation steps on
~142,000 training cells (177,376 cells, 80 % per fold): under two epochs. Held at epochs,
that schedule gives small data almost no steps; held at scvi-tools' epoch heuristic
(400 epochs below 20,000 cells, the previous default) it cost 6.6x ``scvi.model.SCVI``'s own
default fit (one epoch of the three steps: 14.9 s of CPU against 2.3 s for an SCVI epoch on
4,500 cells x 2,000 genes, one thread). Each step therefore trains

``clip(EPOCHS x steps per epoch, MIN_STEPS, MAX_STEPS)`` steps

(in cell draws for the joint step, whose default minibatch is larger), converted to whole
epochs. Measured on a simulated 5,000-cell, 2,000-gene set with 10 planted types
(4,500 training cells, 2-d, one CPU thread): the 2-d k-NN accuracy (k = 15, balanced) of the
step-1 encoder on validation cells rose to 0.67 after 1,440 steps and flattened at 0.75-0.77 between 2,160
and 2,880 steps; the step-2 loss was still falling slowly at 2,520 steps (step 2 costs a
tenth of step 1 per step); in the joint step (512 cells per step) the accuracy settled
within 90 steps and the loss changed by 0.03 % between 360 and 450 steps.
"""

from __future__ import annotations

import math

from multiviz import _logging as logg
from multiviz._docs import SIVAE_SIZES, doc_params
from multiviz._validate import InputError, check_int

#: Optimisation steps per training step in the reference code (``iter=2000``); the minimum.
REFERENCE_STEPS = 2000
#: Minibatch of the reference code (cells in steps 1 and 3); multiviz's ``batch_size`` default.
REFERENCE_BATCH = 128
#: Epochs a step trains when that lies between its bounds (a design choice, not measured: with
#: 128 cells per step, data of 25,600-128,000 cells see every cell 10 times in steps 1 and 3).
EPOCHS = 10
#: Fewest steps of steps 1 and 2 (the reference's count; step 1 flattened at ~2,000-2,900).
MIN_STEPS = REFERENCE_STEPS
#: Most steps of steps 1 and 2 (5x the reference: 1.28 M cell draws at 128 cells per step).
MAX_STEPS = 5 * REFERENCE_STEPS
#: Fewest cell draws of the joint step: a quarter of the reference's 2,000 x 128 (125 steps of
#: :data:`JOINT_BATCH` cells). The default γ = 0.5 was chosen on M1 fits whose joint step drew
#: 43,000 cells (50 epochs of 869 cells); on the 4,500-cell simulation the joint step's 2-d
#: k-NN accuracy was flat after 90 steps of 512 cells and its loss within 0.2 % of its
#: 450-step value after 135 steps.
JOINT_MIN_DRAWS = REFERENCE_STEPS * REFERENCE_BATCH // 4
#: Cells per step of the joint step in the default schedule. The feature branch runs over
#: every gene once per step whatever the number of cells, so a larger cell minibatch spreads
#: it: a joint epoch of 4,500 cells x 2,000 genes cost 11.3 s of CPU at 128 cells per step,
#: 6.5 s at 256, 4.4 s at 512 and 3.5 s at 1,024 (one thread).
JOINT_BATCH = 512
#: Genes per step in step 2 of the paper's single-stage design (``design="joint"``): the
#: reference code's 32.
GENE_BATCH = 32
#: Genes per step in step 2 of the map-first design (``design="map_first"``, the default).
#: Step 2 is bounded in gene *draws*, so a larger minibatch trains the same epochs in fewer
#: steps; at 32 genes a step of the 1024-512-128 feature VAE is bound by reading its weights.
#: Measured with the default schedule against 32 genes (``benchmarks/results/sivae_quality.json``,
#: ``sivae`` vs ``sivae_step2_32``, seed 0, one thread): the fit's CPU fell by 11-19 % (PBMC
#: fixtures, pbmc68k_reduced, M1), the loadings' Spearman correlation with the
#: least-squares coefficients of the map rose from 0.82-0.96 to 0.96-0.98 and with DeepLIFT
#: from 0.64-0.95 to 0.95-0.98, and the decoder's mean per-gene R² fell (PBMC 5k: 0.26 to
#: 0.16). The map is step 1's and does not change.
FEATURE_BATCH = 128


def _epochs(n_items: int, batch: int, min_draws: int, max_draws: int) -> tuple[int, int]:
    """Epochs and steps of a step over ``n_items`` whose draws lie in ``[min, max]``."""
    per_epoch = max(math.ceil(int(n_items) / int(batch)), 1)
    steps = min(max(EPOCHS * per_epoch, math.ceil(min_draws / batch)), max_draws // batch)
    epochs = max(math.ceil(steps / per_epoch), 1)
    return int(epochs), int(epochs * per_epoch)


@doc_params(sivae_sizes=SIVAE_SIZES)
def default_schedule(
    n_train: int,
    n_genes: int,
    *,
    batch_size: int = REFERENCE_BATCH,
    gene_batch_size: int = GENE_BATCH,
    joint_batch_size: int = JOINT_BATCH,
) -> dict[str, dict[str, int]]:
    """Epochs and optimisation steps of siVAE's three steps when ``max_epochs=None``.

    Every step trains :data:`EPOCHS` epochs, bounded in *draws* (cells, or genes for step 2)
    by the reference code's :data:`REFERENCE_STEPS` steps and five times that, each at the
    reference minibatch (:data:`REFERENCE_BATCH` cells, :data:`GENE_BATCH` genes): step 1 sees
    between 256,000 and 1.28 M cells, step 2 between 64,000 and 320,000 genes, and the joint
    step between :data:`JOINT_MIN_DRAWS` (64,000) and 1.28 M cells. At the defaults, step 1
    trains 2,000-10,000 steps (the minimum up to ~25,600 training cells), step 2 2,000-10,000
    gene minibatches and the joint step, at :data:`JOINT_BATCH` cells per step, 125-2,500
    steps.

    Parameters
    ----------
    {sivae_sizes}
    batch_size
        Cells per step of step 1.
    gene_batch_size
        Genes per step of step 2.
    joint_batch_size
        Cells per step of step 3.

    Returns
    -------
    ``{"cell_pretrain" | "feature_pretrain" | "joint": {"epochs", "steps", "batch_size"}}``;
    steps are whole epochs, so they can exceed the bound by less than one epoch.

    Examples
    --------
    >>> s = default_schedule(4500, 2000)
    >>> [(v["epochs"], v["steps"]) for v in s.values()]
    [(56, 2016), (32, 2016), (14, 126)]
    """
    ref_min = REFERENCE_STEPS * REFERENCE_BATCH
    ref_max = MAX_STEPS * REFERENCE_BATCH
    gene_min, gene_max = REFERENCE_STEPS * GENE_BATCH, MAX_STEPS * GENE_BATCH
    plan = {
        "cell_pretrain": (n_train, batch_size, ref_min, ref_max),
        "feature_pretrain": (n_genes, gene_batch_size, gene_min, gene_max),
        "joint": (n_train, joint_batch_size, JOINT_MIN_DRAWS, ref_max),
    }
    out = {}
    for name, (n, batch, lo, hi) in plan.items():
        epochs, steps = _epochs(n, batch, lo, hi)
        out[name] = {"epochs": epochs, "steps": steps, "batch_size": int(batch)}
    return out


def default_schedule_for_batches(
    n_train: int, n_genes: int, batch_sizes: tuple[int, int, int]
) -> dict[str, dict[str, int]]:
    """:func:`default_schedule` for the three steps' minibatch sizes given as one triple.

    Parameters
    ----------
    n_train
        Training cells.
    n_genes
        Genes.
    batch_sizes
        Cells per step of step 1, genes per step of step 2, cells per step of step 3.

    Returns
    -------
    :func:`default_schedule`'s ``{step: {"epochs", "steps", "batch_size"}}``.
    """
    return default_schedule(
        n_train,
        n_genes,
        batch_size=batch_sizes[0],
        gene_batch_size=batch_sizes[1],
        joint_batch_size=batch_sizes[2],
    )


def resolve_epochs(
    max_epochs: int | None,
    pretrain_epochs: int | None,
    feature_epochs: int | None,
    *,
    n_train: int,
    n_genes: int,
    batch_sizes: tuple[int, int, int],
) -> tuple[int, int, int]:
    """Epochs of steps 1, 2 and 3, validated (negative or all-zero schedules rejected).

    ``max_epochs`` given: every step trains it unless ``pretrain_epochs`` /
    ``feature_epochs`` say otherwise (the explicit schedule, unchanged). ``None``: each step
    not set explicitly takes :func:`default_schedule` for ``n_train`` cells, ``n_genes``
    genes and ``batch_sizes`` (cells of step 1, genes of step 2, cells of step 3); the
    choice is logged in one INFO line.
    """
    names = ("max_epochs", "pretrain_epochs", "feature_pretrain_epochs")
    for name, value in zip(names, (max_epochs, pretrain_epochs, feature_epochs)):
        if value is not None:
            check_int(value, name, minimum=0)
    if max_epochs is None:
        sched = default_schedule_for_batches(n_train, n_genes, batch_sizes)
        d1, d2, n_epochs = (v["epochs"] for v in sched.values())
        steps = "/".join(str(v["steps"]) for v in sched.values())
        logg.info(
            f"    siVAE default schedule: {d1}/{d2}/{n_epochs} epochs ({steps} steps of "
            f"{batch_sizes[0]} cells / {batch_sizes[1]} genes / {batch_sizes[2]} cells) "
            "for steps 1/2/3"
        )
    else:
        d1 = d2 = n_epochs = int(max_epochs)
    e1 = d1 if pretrain_epochs is None else int(pretrain_epochs)
    e2 = d2 if feature_epochs is None else int(feature_epochs)
    if e1 + e2 + n_epochs == 0:
        raise InputError(
            "Every step has 0 epochs (`max_epochs`, `pretrain_epochs`, "
            "`feature_pretrain_epochs`); train at least one step for at least 1 epoch."
        )
    return e1, e2, n_epochs
