"""Input checks shared by every public function: one import place for every generic check.

Each check raises :class:`InputError` (a :class:`ValueError`) whose message names the
offending argument and says how to fix it. Checks never modify their inputs, so a
failed call leaves the user's object exactly as it was.

Three modules: :mod:`._data` (containers and data: MuData/AnnData, layers, values, names),
:mod:`._args` (scalar arguments, keyword names, fit outcomes) and :mod:`._resources` (what
a fit may ask of the machine: threads, memory, accelerator, precision, strategy).
"""

from __future__ import annotations

from .._validate_base import InputError
from ._args import (
    FitError,
    check_bool,
    check_fit_finite,
    check_float,
    check_folds,
    check_indices,
    check_int,
    check_kwargs,
    check_level,
    check_no_nan_labels,
    check_not_backed,
    check_pattern,
    check_str,
    check_unique_names,
    check_writable,
)
from ._data import (  # noqa: F401  (_values: re-exported for tl._checks)
    MAX_SEED,
    _values,
    check_anndata,
    check_counts,
    check_finite,
    check_min_obs,
    check_mudata,
    check_n_top,
    check_numeric,
    check_option,
    check_paired,
    check_positive_int,
    check_random_state,
    check_var_names,
    check_varying_genes,
    get_layer,
    get_modality,
    layer_names,
    resolve_target,
    resolve_var_mask,
)
from ._resources import (
    BYTES_PER_PARAMETER,
    SPAWNING,
    available_cpus,
    available_memory,
    check_accelerator,
    check_lightning,
    check_network_size,
    check_num_threads,
    check_precision,
    check_strategy,
    linear_parameters,
)

__all__ = [
    "available_cpus",
    "available_memory",
    "BYTES_PER_PARAMETER",
    "check_accelerator",
    "check_anndata",
    "check_bool",
    "check_counts",
    "check_finite",
    "check_fit_finite",
    "check_float",
    "check_folds",
    "check_int",
    "check_kwargs",
    "check_lightning",
    "check_level",
    "check_min_obs",
    "check_mudata",
    "check_n_top",
    "check_network_size",
    "check_no_nan_labels",
    "check_not_backed",
    "check_num_threads",
    "check_numeric",
    "check_option",
    "check_paired",
    "check_var_names",
    "check_varying_genes",
    "check_pattern",
    "check_positive_int",
    "check_precision",
    "check_random_state",
    "check_str",
    "check_strategy",
    "check_unique_names",
    "check_writable",
    "FitError",
    "get_layer",
    "get_modality",
    "InputError",
    "layer_names",
    "linear_parameters",
    "MAX_SEED",
    "resolve_target",
    "resolve_var_mask",
    "SPAWNING",
]
