"""siVAE's sizes checked before anything is built: hidden layers, latent, feature-wise input.

Used by :func:`multiviz.tl.sivae` (before it copies or registers anything) and by
:class:`~multiviz.models.SIVAE` (before the module is built).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from multiviz._bounds import check_network_size
from multiviz._validate import InputError, check_int

__all__ = [
    "DEFAULT_N_FEATURE_INPUT",
    "check_hidden",
    "check_sivae_size",
    "feature_input_width",
    "n_training_cells",
]

DEFAULT_N_FEATURE_INPUT = 256
"""``C_red`` when ``n_feature_input=None``, lowered to what the data allow."""


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


def n_training_cells(n_obs: int, train_size: float) -> int:
    """Cells in the training split (at least one)."""
    return max(1, int(round(float(train_size) * n_obs)))


def feature_input_width(feature_input: str, n_feature_input: Any, n_train: int, n_vars: int) -> int:
    """``C_red``: the width of the feature-wise input, within what the data allow.

    ``"pca"``: at most training cells - 1 and genes - 1 components; ``"downsample"``: at
    most the training cells; ``"full"``: every training cell (``n_feature_input`` unused).
    ``None`` is :data:`DEFAULT_N_FEATURE_INPUT`, lowered to that maximum; a larger
    integer is an :class:`~multiviz.InputError` naming the maximum.
    """
    if feature_input == "full":
        return n_train
    if feature_input == "pca":
        limit = min(n_train - 1, n_vars - 1)
        what = (
            f"principal components the training cells allow for `feature_input='pca'` "
            f"(training cells - 1 = {n_train - 1}, genes - 1 = {n_vars - 1})"
        )
    else:
        limit = n_train
        what = "training cells to downsample for `feature_input='downsample'`"
    if limit < 1:
        raise InputError(
            f"Too few training cells ({n_train}) or genes ({n_vars}) to build the feature-wise "
            "input; pass more cells, a larger `train_size`, or `feature_input='downsample'`."
        )
    if n_feature_input is None:
        return min(DEFAULT_N_FEATURE_INPUT, limit)
    n_feature_input = check_int(n_feature_input, "n_feature_input")
    if n_feature_input > limit:
        raise InputError(
            f"`n_feature_input={n_feature_input}` is more than the {limit} {what}. Pass "
            f"`n_feature_input` <= {limit}, or None ({DEFAULT_N_FEATURE_INPUT}, lowered to "
            "what the data allow)."
        )
    return n_feature_input


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
    the feature-wise input must fit in memory (:func:`multiviz._bounds.check_network_size`).

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
