"""siVAE's sizes: training cells and the width of the feature-wise input.

The checks of the sizes against the data and the memory are in
:mod:`multiviz.models.sivae._checks`.
"""

from __future__ import annotations

from typing import Any

from multiviz._validate import InputError, check_int

__all__ = [
    "DEFAULT_N_FEATURE_INPUT",
    "feature_input_width",
    "n_training_cells",
]

DEFAULT_N_FEATURE_INPUT = 256
"""``C_red`` when ``n_feature_input=None``, lowered to what the data allow."""


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
