"""Checks of scalar arguments, keyword names, containers and fit outcomes.

Re-exported by :mod:`multiviz._validate`, the one place callers import checks from.
Every check raises before any work is done and never modifies its input.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from mudata import MuData
from scipy import sparse

from .._validate_base import InputError

__all__ = [
    "check_bool",
    "check_fit_finite",
    "check_float",
    "check_folds",
    "check_int",
    "check_kwargs",
    "check_level",
    "check_no_nan_labels",
    "check_not_backed",
    "check_pattern",
    "check_str",
    "check_unique_names",
    "check_writable",
    "FitError",
]


class FitError(RuntimeError):
    """A fit failed or diverged; nothing was written into the user's object."""


# -- scalars --------------------------------------------------------------------------------


def check_int(value: Any, arg: str, *, minimum: int | None = 1, maximum: int | None = None) -> int:
    """Require an integer in ``[minimum, maximum]`` (numpy integers accepted, bools rejected)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise InputError(f"`{arg}` must be an integer, got {value!r} ({type(value).__name__}).")
    value = int(value)
    if minimum is not None and value < minimum:
        raise InputError(f"`{arg}` must be at least {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise InputError(f"`{arg}` must be at most {maximum}, got {value}.")
    return value


def check_float(
    value: Any,
    arg: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Require a finite real number in the interval given by ``low``/``high``.

    ``low_open``/``high_open`` exclude the bound itself (e.g. a learning rate needs
    ``low=0, low_open=True``).
    """
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise InputError(f"`{arg}` must be a number, got {value!r} ({type(value).__name__}).")
    value = float(value)
    if not math.isfinite(value):
        raise InputError(f"`{arg}` must be finite, got {value!r}.")
    if low is not None and (value < low or (low_open and value == low)):
        op = ">" if low_open else ">="
        raise InputError(f"`{arg}` must be {op} {low:g}, got {value:g}.")
    if high is not None and (value > high or (high_open and value == high)):
        op = "<" if high_open else "<="
        raise InputError(f"`{arg}` must be {op} {high:g}, got {value:g}.")
    return value


def check_bool(value: Any, arg: str) -> bool:
    """Require ``True`` or ``False`` (numpy bools accepted; 0/1 and strings rejected)."""
    if not isinstance(value, bool | np.bool_):
        raise InputError(f"`{arg}` must be True or False, got {value!r} ({type(value).__name__}).")
    return bool(value)


def check_str(value: Any, arg: str, *, optional: bool = False) -> str | None:
    """Require a non-empty string (or ``None`` when ``optional``)."""
    if value is None and optional:
        return None
    if not isinstance(value, str) or not value:
        what = "a non-empty string" + (" or None" if optional else "")
        raise InputError(f"`{arg}` must be {what}, got {value!r}.")
    return value


def check_pattern(value: Any, arg: str) -> re.Pattern | None:
    """Compile a regular expression given as a string (``None`` passes through)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InputError(f"`{arg}` must be a regular expression (string) or None, got {value!r}.")
    try:
        return re.compile(value)
    except re.error as err:
        raise InputError(f"`{arg}={value!r}` is not a valid regular expression: {err}.") from None


def check_kwargs(kwargs: Mapping[str, Any], allowed: Iterable[str], where: str) -> None:
    """Reject keyword names that ``where`` does not know, suggesting the closest valid one."""
    allowed = sorted(set(allowed))
    unknown = [k for k in kwargs if k not in allowed]
    if not unknown:
        return
    hints = []
    for name in unknown:
        close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
        hints.append(f"`{name}`" + (f" (did you mean `{close[0]}`?)" if close else ""))
    raise InputError(
        f"{where} got unknown keyword argument(s) {', '.join(hints)}. "
        f"Valid names: {', '.join(allowed)}."
    )


# -- containers -----------------------------------------------------------------------------


def _items(obj: Any, arg: str) -> list[tuple[str, Any]]:
    """``obj`` and, for a MuData, each modality, with the name to show in messages."""
    items = [(arg, obj)]
    if isinstance(obj, MuData):
        items += [(f"{arg}[{name!r}]", mod) for name, mod in obj.mod.items()]
    return items


def check_not_backed(obj: Any, arg: str, *, fix: str | None = None) -> None:
    """Reject a backed (on-disk) AnnData/MuData or modality; ``fix`` replaces the default hint."""
    for name, item in _items(obj, arg):
        if getattr(item, "isbacked", False):
            raise InputError(
                fix.format(name=name, arg=arg)
                if fix is not None
                else f"`{name}` is backed (opened with `backed='r'`); this function writes results "
                f"and needs it in memory: `{arg} = {arg}.to_memory()`."
            )


def check_writable(obj: Any, arg: str) -> None:
    """Reject AnnData/MuData views and backed (on-disk) objects, which a tool cannot write to."""
    for name, item in _items(obj, arg):
        if getattr(item, "is_view", False):
            raise InputError(
                f"`{name}` is a view (e.g. `mdata[:300]`); results cannot be written into it. "
                f"Make it an object of its own first: `{arg} = {arg}.copy()`."
            )
    check_not_backed(obj, arg)


def check_unique_names(obj: Any, arg: str) -> None:
    """Require unique ``obs_names`` and ``var_names`` (in every modality of a MuData)."""
    objs = [(arg, obj)]
    if isinstance(obj, MuData):
        objs = [(f"{arg}[{name!r}]", mod) for name, mod in obj.mod.items()]
    for name, item in objs:
        if not isinstance(item, AnnData):
            continue
        for axis in ("obs", "var"):
            index = getattr(item, f"{axis}_names")
            if not index.is_unique:
                dup = index[index.duplicated()].unique()
                raise InputError(
                    f"`{name}` has {len(dup)} duplicated {axis}_names (e.g. {list(dup[:3])}); "
                    f"results would be ambiguous. Run `{name}.{axis}_names_make_unique()` first."
                )


def check_no_nan_labels(values: Any, arg: str) -> None:
    """Require a label column without missing values (NaN/None)."""
    series = pd.Series(np.asarray(values, dtype=object) if not hasattr(values, "isna") else values)
    n_missing = int(series.isna().sum())
    if n_missing:
        raise InputError(
            f"`{arg}` has {n_missing} missing labels (NaN). Drop those cells first (e.g. "
            f"`adata = adata[adata.obs[...].notna()].copy()`) or fill them with a label of "
            f"their own (`.cat.add_categories('unknown').fillna('unknown')`)."
        )


# -- fit outcomes ---------------------------------------------------------------------------


def _n_nonfinite(value: Any) -> tuple[int, int]:
    """(number of non-finite entries, number of entries) in nested numbers/arrays/tensors."""
    if value is None or isinstance(value, str | bool):
        return 0, 0
    if isinstance(value, Mapping):
        pairs = [_n_nonfinite(v) for v in value.values()]
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)
    if isinstance(value, list | tuple):
        pairs = [_n_nonfinite(v) for v in value]
        return sum(p[0] for p in pairs), sum(p[1] for p in pairs)
    if isinstance(value, pd.DataFrame | pd.Series):
        value = (
            value.select_dtypes("number").to_numpy()
            if isinstance(value, pd.DataFrame)
            else (value.to_numpy() if value.dtype.kind in "biuf" else np.zeros(0))
        )
    if hasattr(value, "detach"):  # torch tensor, without importing torch
        value = value.detach().float().cpu().numpy()
    if sparse.issparse(value):
        value = value.data
    arr = np.asarray(value)
    if arr.dtype.kind not in "fc":
        return 0, int(arr.size)
    return int((~np.isfinite(arr)).sum()), int(arr.size)


def check_fit_finite(values: Any, *, model: str, phase: str, hint: str) -> None:
    """Raise :class:`FitError` if any number in ``values`` is NaN or infinite.

    ``values`` may be a number, array, tensor, DataFrame, or a dict/list of them (e.g. the
    loss history and every output array, checked before anything is written).
    """
    bad, total = _n_nonfinite(values)
    if bad:
        raise FitError(
            f"{model} diverged during {phase}: {bad} of {total} values are NaN or infinite. "
            f"{hint}. Nothing was written into your object."
        )


def check_level(level: float | None) -> float | None:
    """``None`` (no intervals) or a coverage strictly between 0 and 1."""
    if level is None:
        return None
    return check_float(level, "interval", low=0.0, high=1.0, low_open=True, high_open=True)


def check_folds(folds, n_folds: int) -> list[int]:
    """``folds``: None (all) or distinct integers in ``0 .. n_folds - 1``."""
    if folds is None:
        return list(range(n_folds))
    if isinstance(folds, int | np.integer) and not isinstance(folds, bool):
        folds = [folds]
    try:
        items = list(folds)
    except TypeError:
        raise InputError(
            f"`folds` must be a list of fold indices in 0..{n_folds - 1}, got {folds!r}."
        ) from None
    bad = [
        f
        for f in items
        if isinstance(f, bool) or not isinstance(f, int | np.integer) or not 0 <= f < n_folds
    ]
    if not items or bad:
        raise InputError(
            f"`folds` must be a non-empty list of fold indices in 0..{n_folds - 1} "
            f"(`n_folds`={n_folds}); got {folds!r}"
            + (f", invalid: {bad!r}" if bad else "")
            + ". Raise `n_folds` or pick folds below it."
        )
    if len(set(map(int, items))) != len(items):
        raise InputError(f"`folds` has repeated fold indices: {folds!r}; list each fold once.")
    return [int(f) for f in items]


def check_indices(indices: Any, n_obs: int, arg: str) -> np.ndarray:
    """Require a non-empty list of distinct row indices in ``[0, n_obs)``; sorted int64."""
    values = np.asarray(indices)
    if values.ndim != 1 or values.size == 0 or values.dtype.kind not in "iu":
        raise InputError(
            f"`{arg}` must be a non-empty 1-d list of integer row indices, got "
            f"{type(indices).__name__} of shape {values.shape} ({values.dtype})."
        )
    if values.min() < 0 or values.max() >= n_obs:
        raise InputError(
            f"`{arg}` must lie in 0..{n_obs - 1} (the {n_obs} registered cells), got "
            f"{int(values.min())}..{int(values.max())}."
        )
    unique = np.unique(values).astype(np.int64)
    if unique.size != values.size:
        raise InputError(f"`{arg}` repeats {values.size - unique.size} indices; list each once.")
    return unique
