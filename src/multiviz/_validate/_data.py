"""Input checks shared by every public function.

Each check raises :class:`InputError` (a :class:`ValueError`) whose message names the
offending argument and says how to fix it. Checks never modify their inputs, so a
failed call leaves the user's object exactly as it was.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData
from mudata import MuData
from scipy import sparse

from .._validate_base import InputError

if TYPE_CHECKING:
    from ..models._save import SavedModel

__all__ = [
    "InputError",
    "MAX_SEED",
    "check_anndata",
    "check_counts",
    "check_finite",
    "check_min_obs",
    "check_mudata",
    "check_n_top",
    "check_numeric",
    "check_option",
    "check_paired",
    "check_var_names",
    "check_varying_genes",
    "check_positive_int",
    "check_random_state",
    "get_layer",
    "get_modality",
    "layer_names",
    "resolve_target",
    "resolve_var_mask",
]


# -- containers ---------------------------------------------------------------------------


def check_mudata(obj: Any, arg: str = "mdata") -> MuData:
    """Require a :class:`mudata.MuData`."""
    if isinstance(obj, AnnData):
        raise InputError(
            f"`{arg}` is an AnnData, but this function needs a MuData with paired modalities. "
            "Build one with `mudata.MuData({'rna': rna, 'ephys': ephys})`."
        )
    if not isinstance(obj, MuData):
        raise InputError(f"`{arg}` must be a mudata.MuData, got {type(obj).__name__}.")
    return obj


def check_anndata(obj: Any, arg: str = "adata") -> AnnData:
    """Require an :class:`anndata.AnnData` (a MuData is rejected with a hint)."""
    if isinstance(obj, MuData):
        raise InputError(
            f"`{arg}` is a MuData; pass one modality instead, e.g. `{arg}['rna']` "
            f"(available: {list(obj.mod)})."
        )
    if not isinstance(obj, AnnData):
        raise InputError(f"`{arg}` must be an anndata.AnnData, got {type(obj).__name__}.")
    return obj


def get_modality(mdata: MuData, name: str, arg: str = "x") -> AnnData:
    """Return ``mdata[name]`` or raise an error that lists the available modalities."""
    check_mudata(mdata)
    if not isinstance(name, str) or name not in mdata.mod:
        raise InputError(
            f"`{arg}={name!r}` is not a modality of this MuData; available modalities: "
            f"{list(mdata.mod)}. Pass one of them as `{arg}=`."
        )
    return mdata.mod[name]


def resolve_target(mdata: MuData, y: str | None, arg: str = "y") -> str:
    """Name of the target modality: ``y`` if given, else ``"ephys"``, else ``"protein"``."""
    check_mudata(mdata)
    if y is not None:
        get_modality(mdata, y, arg)
        return y
    for candidate in ("ephys", "protein"):
        if candidate in mdata.mod:
            return candidate
    raise InputError(
        f"`{arg}` was not given and the MuData has neither an 'ephys' nor a 'protein' modality "
        f"(available: {list(mdata.mod)}). Pass the target modality as `{arg}=`."
    )


def check_paired(mdata: MuData, mods: Sequence[str], args: Sequence[str] | None = None) -> None:
    """Require every cell of ``mdata`` in each of ``mods``, in the same order.

    sBNN, sRRR and the paired recipe need fully paired cells; the coupled autoencoder
    accepts partially paired data and does not call this.
    """
    args = list(args) if args is not None else [f"modality {m!r}" for m in mods]
    if mdata.n_obs == 0:
        raise InputError("`mdata` has no cells (n_obs == 0).")
    ref = None
    for mod, arg in zip(mods, args):
        adata = get_modality(mdata, mod, arg)
        if adata.n_obs == 0:
            raise InputError(f"{arg} has no cells (n_obs == 0).")
        names = adata.obs_names
        if ref is None:
            ref_mod, ref = mod, names
            continue
        if len(names) != len(ref) or not np.array_equal(names.values, ref.values):
            missing = len(ref.difference(names)) + len(names.difference(ref))
            if missing:
                detail = f"{missing} cells are present in only one of them"
            else:
                detail = "they hold the same cells in a different order"
            raise InputError(
                f"Modalities {ref_mod!r} and {mod!r} are not aligned: {detail}. Keep the "
                "shared cells in one order, e.g. `mu.pp.intersect_obs(mdata)` (muon) or "
                "`mdata = mdata[mdata.obs_names.isin(common)].copy()`."
            )


# -- matrices -----------------------------------------------------------------------------


def layer_names(adata: AnnData) -> list[str]:
    """The named layers of ``adata`` (anndata >= 0.13 also lists ``.X`` as ``layers[None]``)."""
    return [key for key in adata.layers.keys() if key is not None]


def get_layer(adata: AnnData, layer: str | None, arg: str = "layer"):
    """``adata.X`` when ``layer`` is None, else ``adata.layers[layer]`` (with a clear error)."""
    if layer is None:
        if adata.X is None:
            raise InputError(f"`adata.X` is empty; pass a `{arg}=` from {layer_names(adata)}.")
        return adata.X
    if layer not in adata.layers:
        raise InputError(
            f"`{arg}={layer!r}` is not a layer of this AnnData; available layers: "
            f"{layer_names(adata)} (or `{arg}=None` for `.X`)."
        )
    return adata.layers[layer]


def _values(X) -> np.ndarray:
    """The stored values of a dense or sparse matrix, without densifying."""
    if sparse.issparse(X):
        return np.asarray(X.data)
    if isinstance(X, pd.DataFrame):
        return X.to_numpy()
    return np.asarray(X)


def _non_numeric_columns(X, names: Sequence[Any] | None) -> list[str]:
    """Columns of a dense 2-d ``X`` holding a value that is not a number (e.g. ``'n/a'``)."""
    values = np.asarray(X, dtype=object)
    if values.ndim != 2:
        return []
    bad = []
    for j in range(values.shape[1]):
        column = pd.to_numeric(pd.Series(values[:, j]), errors="coerce")
        if (column.isna() & pd.Series(values[:, j]).notna()).any():
            bad.append(str(names[j]) if names is not None else f"column {j}")
    return bad


def check_numeric(X, arg: str, *, names: Sequence[Any] | None = None) -> None:
    """Require a numeric (integer, unsigned, float or bool) matrix.

    ``names`` (the features, e.g. ``var_names``) lets the message name the columns
    that hold text.
    """
    values = _values(X)
    if values.dtype.kind not in "biuf":
        bad = [] if sparse.issparse(X) else _non_numeric_columns(values, names)
        which = (
            f"; non-numeric features: {bad[:10]}{' ...' if len(bad) > 10 else ''}"
            if bad
            else " (numbers stored as text)"
        )
        raise InputError(
            f"`{arg}` must be numeric, got dtype {values.dtype}{which}. Every feature must "
            "hold numbers: convert them (e.g. `pd.to_numeric(column, errors='coerce')`, text "
            "such as 'n/a' becomes NaN) or drop the non-numeric features."
        )


def check_finite(
    X, arg: str, *, allow_nan: bool = False, names: Sequence[Any] | None = None
) -> None:
    """Require no inf (and no NaN unless ``allow_nan``); reports the count and first position."""
    check_numeric(X, arg, names=names)
    values = _values(X)
    if values.dtype.kind != "f":
        return
    n_nan = int(np.isnan(values).sum())
    n_inf = int(np.isinf(values).sum())
    if n_inf:
        raise InputError(f"`{arg}` contains {n_inf} infinite values; replace or drop them.")
    if n_nan and not allow_nan:
        rows = ""
        if not sparse.issparse(X):
            bad_rows = np.flatnonzero(np.isnan(np.asarray(X, dtype=float)).any(axis=1))
            rows = f" in {bad_rows.size} cells (first row {bad_rows[0]})"
        raise InputError(
            f"`{arg}` contains {n_nan} NaN values{rows}. Drop those cells (e.g. "
            "`mv.pp.prepare_paired(..., drop_nan=True)`) or impute them first."
        )


def check_counts(X, arg: str) -> None:
    """Require non-negative integer counts, as count likelihoods (NB, Poisson) need."""
    check_finite(X, arg)
    values = _values(X)
    if values.size == 0:
        return
    if values.min() < 0:
        raise InputError(
            f"`{arg}` has negative values (min {values.min():g}), but raw counts are needed. "
            "Pass the raw-count layer (e.g. `layer='counts'`) rather than normalised data."
        )
    if values.dtype.kind == "f":
        sample = values if values.size <= 1_000_000 else values[:: values.size // 1_000_000 + 1]
        if not np.all(sample == np.round(sample)):
            raise InputError(
                f"`{arg}` has non-integer values, but raw counts are needed. Pass the raw-count "
                "layer (e.g. `layer='counts'`), not log-normalised or scaled data."
            )


# -- sizes and options ----------------------------------------------------------------------


def check_min_obs(n: int, minimum: int, arg: str, what: str = "cells") -> None:
    """Require at least ``minimum`` cells (or genes, ``what``)."""
    if n < minimum:
        raise InputError(
            f"`{arg}` has {n} {what}, but at least {minimum} are needed: too few {what}. "
            f"Use more {what}."
        )


def check_n_top(n_top: int, n_vars: int, arg: str = "n_top_genes") -> None:
    """Require ``1 <= n_top <= n_vars``."""
    check_positive_int(n_top, arg)
    if n_top > n_vars:
        raise InputError(
            f"`{arg}={n_top}` is larger than the number of genes available ({n_vars}). "
            f"Choose `{arg}` <= {n_vars}."
        )


def check_varying_genes(X: np.ndarray, n_genes: int) -> None:
    """Refuse a gene budget above the genes that vary: a constant gene is never selected.

    A gene constant over the fitting cells (e.g. all zero) has no gradient under the
    group lasso, so no penalty selects it; ``n_genes`` above the varying genes would
    only end in a penalty path that never reaches the budget.
    """
    n_varying = int(np.count_nonzero(np.ptp(np.asarray(X), axis=0) > 0)) if len(X) else 0
    if n_genes > n_varying:
        n_constant = X.shape[1] - n_varying
        raise InputError(
            f"`n_genes`={n_genes} exceeds the {n_varying} genes that vary over the fitting "
            f"cells: {n_constant} of the {X.shape[1]} genes are constant there (zero "
            "variance, e.g. all zero) and can never be selected. Lower `n_genes` to at most "
            f"{n_varying}, or drop the constant genes (e.g. pass the varying ones as `genes=`)."
        )


def check_positive_int(value: Any, arg: str) -> int:
    """Require a positive integer (numpy integers accepted, bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InputError(f"`{arg}` must be a positive integer, got {value!r}.")
    return int(value)


def check_option(value: Any, options: Iterable[Any], arg: str) -> Any:
    """Require ``value`` to be one of ``options``."""
    options = list(options)
    if value not in options:
        raise InputError(f"`{arg}={value!r}` is not supported; choose one of {options}.")
    return value


MAX_SEED = 2**32 - 1
"""Largest seed accepted: numpy's legacy ``RandomState``, which scikit-learn's k-means, PCA
and ``KFold`` seed from ``random_state``, takes seeds in ``[0, 2**32 - 1]`` only."""


def check_random_state(random_state: Any, arg: str = "random_state") -> int:
    """Require an integer seed in ``[0, MAX_SEED]``.

    ``None`` is rejected (results must be reproducible), and so is a seed that numpy,
    scikit-learn or torch would refuse deep inside a fit (negative, or above ``2**32 - 1``:
    torch's "Overflow when unpacking long" for ``2**64``). Every public function and model
    checks its ``random_state`` here.
    """
    if isinstance(random_state, bool) or not isinstance(random_state, int | np.integer):
        raise InputError(
            f"`{arg}` must be an integer seed in [0, {MAX_SEED}] (0 to 2**32 - 1), got "
            f"{random_state!r}; pass e.g. `{arg}=0`."
        )
    value = int(random_state)
    if not 0 <= value <= MAX_SEED:
        raise InputError(
            f"`{arg}={value}` is outside the seeds numpy and scikit-learn accept, "
            f"[0, {MAX_SEED}] (0 to 2**32 - 1). Pass a seed in that range, e.g. "
            f"`{arg}={value % (MAX_SEED + 1)}`."
        )
    return value


def resolve_var_mask(adata: AnnData, genes: Any, arg: str = "genes") -> np.ndarray:
    """Turn ``genes`` into a boolean mask over ``adata.var_names``.

    ``genes`` may be None (all genes), a ``var`` column name holding booleans, a boolean
    array of length ``n_vars``, or a list of gene names (all must be present).
    """
    n_vars = adata.n_vars
    if genes is None:
        return np.ones(n_vars, dtype=bool)
    if isinstance(genes, str):
        if genes not in adata.var:
            raise InputError(
                f"`{arg}={genes!r}` is neither a boolean `var` column nor a list of genes; "
                f"boolean columns: {[c for c in adata.var if adata.var[c].dtype == bool]}."
            )
        mask = adata.var[genes].to_numpy()
        if mask.dtype != bool:
            raise InputError(f"`var[{genes!r}]` must be boolean to be used as `{arg}`.")
    else:
        values = np.asarray(genes)
        if values.dtype == bool:
            if values.shape != (n_vars,):
                raise InputError(
                    f"`{arg}` is a boolean mask of length {values.size}, but there are {n_vars} genes."
                )
            mask = values
        else:
            names = pd.Index(values.astype(str))
            missing = names.difference(adata.var_names)
            if len(missing):
                raise InputError(
                    f"{len(missing)} genes in `{arg}` are not in `var_names`, e.g. "
                    f"{list(missing[:5])}. Remove them or check the gene symbols."
                )
            mask = adata.var_names.isin(names)
    if not mask.any():
        raise InputError(f"`{arg}` selects no genes.")
    return np.asarray(mask, dtype=bool)


def check_var_names(adata: Any, saved: SavedModel, cls_name: str) -> None:
    """Refuse an object whose variables differ from the saved ones (scvi-tools only warns)."""
    import numpy as np
    import pandas as pd
    from anndata import AnnData
    from mudata import MuData

    names = saved.var_names
    if isinstance(adata, MuData) and isinstance(names, dict):
        pairs = [(f"adata[{m!r}]", adata.mod[m], names[m]) for m in names if m in adata.mod]
    elif isinstance(adata, AnnData) and not isinstance(names, dict):
        pairs = [("adata", adata, names)]
    else:
        return
    for arg, obj, want in pairs:
        have, want = pd.Index(obj.var_names.astype(str)), pd.Index(np.asarray(want).astype(str))
        if have.equals(want):
            continue
        lost, extra = want.difference(have, sort=False), have.difference(want, sort=False)
        diff = "; ".join(
            [f"{len(lost)} of its {len(want)} missing ({list(lost[:5])})"] * bool(len(lost))
            + [f"{len(extra)} not in the model ({list(extra[:5])})"] * bool(len(extra))
        )
        raise InputError(
            f"`{arg}.var_names` differ from the variables the {cls_name} in {saved.path!r} was "
            f"trained on: {diff or f'the same {len(want)} in another order'}. Load it onto the "
            "object it was trained on, or one with exactly those variables in the same order "
            "(e.g. `adata[:, training_genes].copy()`)."
        )
