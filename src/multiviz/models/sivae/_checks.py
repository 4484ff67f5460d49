"""siVAE's argument checks: the constructor's and ``train``'s options, sizes, the registered data.

Sizes are checked before anything is built; :func:`check_hidden` and
:func:`check_sivae_size` are also used by :func:`multiviz.tl.sivae` (before it copies or
registers anything).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from multiviz._validate import (
    InputError,
    check_counts,
    check_finite,
    check_float,
    check_int,
    check_network_size,
    check_option,
    check_random_state,
)

from . import _backed
from ._schedule import FEATURE_BATCH, GENE_BATCH, JOINT_BATCH
from ._sizes import feature_input_width, n_training_cells

__all__ = [
    "DEFAULT_GAMMA",
    "DESIGNS",
    "PAPER_GAMMA",
    "check_hidden",
    "check_input_and_split_args",
    "check_registered",
    "check_sivae_size",
    "check_train_args",
    "design_defaults",
]

#: Weight of the interpretability term (``gamma * SSE``) of ``design="map_first"``: with the
#: cell encoder fixed it only sets how closely the loadings follow the least-squares
#: description of the map, so it is at full weight; see :class:`SIVAE`.
DEFAULT_GAMMA = 1.0
#: The paper's weight (Choi & Quon 2023, Methods, eq. 13), the default of ``design="joint"``.
PAPER_GAMMA = 0.05
#: The two training designs (see :class:`SIVAE`).
DESIGNS = ("map_first", "joint")


def design_defaults(
    design: str, gamma: float | None, variance: str | None, interp_pretrain: bool | None
) -> tuple[float, str, bool]:
    """``gamma``, ``variance`` and ``interp_pretrain`` of ``design``, validated (``None``: its default)."""
    check_option(design, list(DESIGNS), "design")
    map_first = design == "map_first"
    gamma = (DEFAULT_GAMMA if map_first else PAPER_GAMMA) if gamma is None else gamma
    gamma = check_float(gamma, "gamma", low=0)
    variance = ("gene" if map_first else "cell") if variance is None else variance
    check_option(variance, ["gene", "cell"], "variance")
    interp_pretrain = map_first if interp_pretrain is None else interp_pretrain
    if not isinstance(interp_pretrain, bool):
        raise InputError(f"`interp_pretrain` must be True or False, got {interp_pretrain!r}.")
    return gamma, variance, interp_pretrain


def check_input_and_split_args(
    feature_input: Any,
    n_feature_input: Any,
    random_state: Any,
    train_size: Any,
    dropout_rate: Any,
    linear: Any,
) -> tuple[int | None, int, float, float]:
    """:class:`~multiviz.models.SIVAE`'s feature-input, split and layer options, in this order.

    Returns ``(n_feature_input, random_state, train_size, dropout_rate)``, validated.
    """
    check_option(feature_input, ["pca", "downsample", "full"], "feature_input")
    if n_feature_input is not None:
        n_feature_input = check_int(n_feature_input, "n_feature_input")
    random_state = check_random_state(random_state)
    train_size = check_float(train_size, "train_size", low=0, high=1, low_open=True)
    dropout_rate = check_float(dropout_rate, "dropout_rate", low=0, high=1, high_open=True)
    for name, flag in (("linear", linear),):
        if not isinstance(flag, bool):
            raise InputError(f"`{name}` must be True or False, got {flag!r}.")
    return n_feature_input, random_state, train_size, dropout_rate


def check_hidden(n_hidden: Any) -> tuple[int, ...]:
    """Validate hidden-layer sizes: a non-empty sequence of positive integers."""
    if isinstance(n_hidden, int | np.integer) and not isinstance(n_hidden, bool):
        n_hidden = (n_hidden,)
    if isinstance(n_hidden, str) or not isinstance(n_hidden, Sequence) or len(n_hidden) == 0:
        raise InputError(
            f"`n_hidden` must be a non-empty sequence of layer sizes, e.g. (1024, 512, 128) "
            f"(the paper's), got {n_hidden!r}."
        )
    return tuple(check_int(h, "n_hidden") for h in n_hidden)


def check_sivae_size(
    n_obs: int,
    n_vars: int,
    n_latent: Any,
    n_hidden: Any,
    *,
    feature_input: str,
    n_feature_input: Any,
    train_size: float,
    linear: bool = False,
    n_cov: int = 0,
) -> tuple[int, tuple[int, ...], int]:
    """Latent, hidden and feature-input sizes against the data and the available memory.

    ``n_latent`` may be at most the number of genes; both VAEs, their free last layer and
    the feature-wise input must fit in memory (:func:`multiviz._validate.check_network_size`).

    Returns
    -------
    ``(n_latent, n_hidden, C_red)``.
    """
    n_latent = check_int(n_latent, "n_latent")
    hidden = check_hidden(n_hidden)
    c_red = feature_input_width(
        feature_input, n_feature_input, n_training_cells(n_obs, train_size), n_vars
    )
    dec = [] if linear else list(hidden[::-1])
    n_out = n_latent if linear else dec[-1]
    chains = []
    for n_in in (n_vars + n_cov, c_red):  # cell-wise and feature-wise encoders
        chains += [[n_in, *hidden], [hidden[-1], n_latent], [hidden[-1], n_latent]]
    chains += [[n_latent + n_cov, *dec], [n_latent, *dec]]  # the two decoders
    # free last layer and its cache, per-gene terms, feature input, step-2 buffers
    n_other = n_vars * (2 * n_out + 3 + n_cov + c_red + n_latent) + n_latent**2
    check_network_size(
        "siVAE",
        n_latent=n_latent,
        max_latent=n_vars,
        max_what="genes in `adata`",
        chains=chains,
        n_other=n_other,
        size_args=f"`n_latent={n_latent}`, `n_hidden={hidden}` ({c_red} feature inputs)",
    )
    return n_latent, hidden, c_red


def check_registered(x, likelihood: str, arg: str = "the registered layer") -> None:
    """Counts for ``"nb"``, finite values otherwise; block by block when ``x`` is on disk."""
    check = check_counts if likelihood == "nb" else check_finite
    if not _backed.is_backed(x):
        check(x, arg)
        return
    for start, block in _backed.row_blocks(x):
        try:
            check(block, arg)
        except InputError as err:
            stop = start + block.shape[0] - 1
            raise InputError(
                f"{err} (found in cells {start}-{stop} of the on-disk matrix, which is checked "
                f"in blocks of {_backed.ROW_CHUNK} cells; counts are of that block)"
            ) from None


def check_train_args(
    *,
    max_epochs: Any,
    batch_size: Any,
    gene_batch_size_pretrain: Any,
    joint_batch_size: Any,
    lr: Any,
    weight_decay: Any,
    accelerator: Any,
    devices: Any,
    early_stopping: Any,
    precision: Any,
    strategy: Any,
    n_val: int,
    design: str = "map_first",
) -> tuple:
    """:meth:`~multiviz.models.SIVAE.train`'s arguments, in the order checked.

    ``n_val``: the model's validation cells (``early_stopping`` needs some); ``design``: the
    model's (it sets the step-2 minibatch). Returns ``(precision, batch_size,
    gene_batch_size_pretrain, joint_batch_size, lr, weight_decay)``, validated
    (``gene_batch_size_pretrain=None`` and ``joint_batch_size=None`` resolved).
    """
    from multiviz._validate import check_lightning

    precision = check_lightning(
        strategy,
        devices,
        precision,
        accelerator,
        model="siVAE",
        spawn_reason="train copies of the model and leave this one untrained.",
    )
    batch_size = check_int(batch_size, "batch_size")
    if gene_batch_size_pretrain is None:
        gene_batch_size_pretrain = FEATURE_BATCH if design == "map_first" else GENE_BATCH
    gene_batch_size_pretrain = check_int(gene_batch_size_pretrain, "gene_batch_size_pretrain")
    if joint_batch_size is None:
        joint_batch_size = JOINT_BATCH if max_epochs is None else batch_size
    joint_batch_size = check_int(joint_batch_size, "joint_batch_size")
    lr = check_float(lr, "lr", low=0, low_open=True)
    weight_decay = check_float(weight_decay, "weight_decay", low=0)
    if not isinstance(early_stopping, bool):
        raise InputError(f"`early_stopping` must be True or False, got {early_stopping!r}.")
    if early_stopping and n_val == 0:
        raise InputError(
            "`early_stopping=True` needs validation cells; build the model with `train_size` < 1."
        )
    return precision, batch_size, gene_batch_size_pretrain, joint_batch_size, lr, weight_decay
