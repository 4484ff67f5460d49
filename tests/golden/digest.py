"""Flatten results into leaves, hash and fingerprint them, and compare two recordings.

A *leaf* is one array, one column, one index or one scalar, named by its path in the
object (``"rna/varm/sbnn_weights"``, ``"uns/srrr/prediction_interval/halfwidth"``,
``"obsm/sbnn_pred/column:Vrest"``). Each leaf is stored as a small JSON dict:

* numbers (arrays, scalars, numeric columns): ``kind="num"``, ``dtype`` (the canonical
  dtype that was hashed), ``shape``, ``sha256`` of the canonical bytes, and a fingerprint
  for readable failures and tolerance checks: ``sum``, ``sumsq`` (NaNs left out), ``nan``
  (their count) and ``head`` (the first 5 values in C order), all float64 ``repr`` strings;
* text (strings, categoricals, indices, object arrays): ``kind="str"``, ``n``, ``sha256``
  of the values joined by NUL, and ``head`` (the first 5 values), compared exactly;
* anything else (a fitted object kept in ``uns``): ``kind="obj"`` with its type name.

Canonical numeric form: C-contiguous, little-endian; integers as int64, unsigned as
uint64, booleans as uint8, floats at their own precision (float32 stays float32, so a
precision change is a change); every NaN is the one standard quiet NaN (its sign and
payload bits are not an output). Sparse matrices are hashed as their CSR parts after
``sort_indices``. pandas nullable columns become float64 with NaN for missing values.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from fnmatch import fnmatchcase

import numpy as np
import pandas as pd
from scipy import sparse

HEAD = 5
RTOL = 1e-4  # fingerprint tolerance: outputs listed as tolerant, and other stacks' recordings


# ----------------------------------------------------------------------------- leaves
def _canonical(a: np.ndarray) -> np.ndarray:
    kind = a.dtype.kind
    if kind == "b":
        return np.ascontiguousarray(a, dtype=np.uint8)
    if kind == "i":
        return np.ascontiguousarray(a, dtype="<i8")
    if kind == "u":
        return np.ascontiguousarray(a, dtype="<u8")
    if kind == "f":
        out = np.array(a, dtype=a.dtype.newbyteorder("<"), order="C", copy=True)
        out[np.isnan(out)] = np.nan
        return out
    if kind == "c":
        return _canonical(np.stack([a.real, a.imag], axis=-1))
    raise TypeError(f"not numeric: {a.dtype}")


def num_leaf(a) -> dict:
    """The stored form of one numeric array or scalar (no sums for up to ``HEAD`` values)."""
    a = _canonical(np.asarray(a))
    h = hashlib.sha256(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())
    f = a.astype(np.float64).ravel()
    finite = f[~np.isnan(f)]
    leaf = {"kind": "num", "dtype": a.dtype.name, "shape": list(a.shape), "sha256": h.hexdigest()}
    if f.size > HEAD:
        leaf["sum"] = repr(float(finite.sum()))
        leaf["sumsq"] = repr(float((finite**2).sum()))
    leaf["nan"] = int(f.size - finite.size)
    leaf["head"] = [repr(float(v)) for v in f[:HEAD]]
    return leaf


def str_leaf(values) -> dict:
    """The stored form of a sequence of labels (strings, categories, names)."""
    vals = ["<NA>" if _is_missing(v) else str(v) for v in values]
    h = hashlib.sha256("\x00".join(vals).encode())
    return {"kind": "str", "n": len(vals), "sha256": h.hexdigest(), "head": vals[:HEAD]}


def _is_missing(v) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, float) and math.isnan(v)


def _numeric(a: np.ndarray) -> bool:
    return a.dtype.kind in "biufc"


def flatten(obj, prefix: str = "") -> dict[str, dict]:
    """Every leaf of ``obj`` (AnnData/MuData parts, frames, dicts, arrays, scalars)."""
    out: dict[str, dict] = {}
    _walk(obj, prefix, out)
    return out


def _join(prefix: str, key) -> str:
    return f"{prefix}/{key}" if prefix else str(key)


def _walk(obj, path: str, out: dict) -> None:
    if obj is None:
        out[path] = {"kind": "str", "n": 1, "sha256": "", "head": ["None"]}
    elif isinstance(obj, bool | int | float | complex | np.generic) and not isinstance(
        obj, np.str_ | np.bytes_
    ):
        out[path] = num_leaf(obj)
    elif isinstance(obj, str | bytes | np.str_ | np.bytes_):
        out[path] = str_leaf([obj.decode() if isinstance(obj, bytes) else obj])
    elif sparse.issparse(obj):
        csr = sparse.csr_matrix(obj, copy=True)
        csr.sort_indices()
        out[path + "/sparse:shape"] = num_leaf(np.asarray(csr.shape))
        out[path + "/sparse:data"] = num_leaf(csr.data)
        out[path + "/sparse:indices"] = num_leaf(csr.indices)
        out[path + "/sparse:indptr"] = num_leaf(csr.indptr)
    elif isinstance(obj, pd.DataFrame):
        out[path + "/index"] = str_leaf(obj.index)
        out[path + "/columns"] = str_leaf(obj.columns)
        for i, col in enumerate(obj.columns):
            _series(obj.iloc[:, i], _join(path, f"column:{col}"), out)
    elif isinstance(obj, pd.Series):
        out[path + "/index"] = str_leaf(obj.index)
        _series(obj, path, out)
    elif isinstance(obj, pd.Index):
        out[path] = str_leaf(obj)
    elif isinstance(obj, Mapping):
        for key in sorted(obj, key=str):
            _walk(obj[key], _join(path, key), out)
    elif isinstance(obj, np.ndarray):
        if _numeric(obj):
            out[path] = num_leaf(obj)
        elif obj.dtype.kind in "USO" and all(
            isinstance(v, str | bytes | np.str_) or _is_missing(v) for v in obj.ravel()
        ):
            out[path] = str_leaf(obj.ravel())
            if obj.ndim != 1:
                out[path + "/shape"] = num_leaf(np.asarray(obj.shape))
        else:
            for i, v in enumerate(obj.ravel()):
                _walk(v, _join(path, i), out)
    elif isinstance(obj, list | tuple):
        arr = None
        if obj and all(
            isinstance(v, bool | int | float | np.generic) and not isinstance(v, np.str_)
            for v in obj
        ):
            arr = np.asarray(obj)
        if arr is not None and _numeric(arr):
            out[path] = num_leaf(arr)
        elif all(isinstance(v, str | np.str_) for v in obj):
            out[path] = str_leaf(obj)
        else:
            for i, v in enumerate(obj):
                _walk(v, _join(path, i), out)
    elif hasattr(obj, "detach") and hasattr(obj, "numpy"):  # a torch tensor
        _walk(obj.detach().cpu().numpy(), path, out)
    else:
        out[path] = {"kind": "obj", "type": type(obj).__name__}


def _series(s: pd.Series, path: str, out: dict) -> None:
    if isinstance(s.dtype, pd.CategoricalDtype):
        out[path] = str_leaf(s.astype(object))
        out[path + "/categories"] = str_leaf(s.cat.categories)
        return
    if pd.api.types.is_bool_dtype(s.dtype) and not s.isna().any():
        out[path] = num_leaf(s.to_numpy(dtype=bool))
    elif pd.api.types.is_numeric_dtype(s.dtype):
        if isinstance(s.dtype, np.dtype):
            out[path] = num_leaf(s.to_numpy())
        else:  # pandas nullable Int64/Float64/boolean
            out[path] = num_leaf(s.to_numpy(dtype=np.float64, na_value=np.nan))
    elif pd.api.types.is_datetime64_any_dtype(s.dtype):
        out[path] = str_leaf(s.astype(str))
    else:
        vals = s.to_numpy(dtype=object)
        if all(isinstance(v, str | np.str_) or _is_missing(v) for v in vals):
            out[path] = str_leaf(vals)
        else:
            for i, v in enumerate(vals):
                _walk(v, _join(path, i), out)


# ----------------------------------------------------------------------------- objects
def _parts(adata) -> dict:
    """What a tool may write to one AnnData (``.X`` included, as preprocessing rewrites it)."""
    return {
        "X": adata.X,
        "obs": adata.obs,
        "var": adata.var,
        "obsm": dict(adata.obsm),
        "varm": dict(adata.varm),
        # anndata 0.13 lists ``.X`` as the layer ``None``: it is "X" above
        "layers": {k: v for k, v in adata.layers.items() if k is not None},
        "obsp": dict(adata.obsp),
        "varp": dict(adata.varp),
        "uns": dict(adata.uns),
    }


def state(data) -> dict[str, dict]:
    """The leaves of an AnnData or MuData (the MuData's own slots and each modality's).

    A MuData's ``var`` is left out: it repeats its modalities' ``var`` columns.
    """
    if hasattr(data, "mod"):
        tree = {
            "obs": data.obs,
            "obsm": dict(data.obsm),
            "varm": dict(data.varm),
            "obsp": dict(data.obsp),
            "varp": dict(data.varp),
            "uns": dict(data.uns),
            "mod": {name: _parts(mod) for name, mod in data.mod.items()},
        }
    else:
        tree = _parts(data)
    return flatten(tree)


def changed(before: dict[str, dict], after: dict[str, dict]) -> dict[str, dict]:
    """The leaves that are new or different after a call (what the call wrote)."""
    return {k: v for k, v in after.items() if before.get(k) != v}


# ----------------------------------------------------------------------------- compare
def _close(a: str, b: str, rtol: float, scale: float) -> bool:
    x, y = float(a), float(b)
    if math.isnan(x) or math.isnan(y):
        return math.isnan(x) and math.isnan(y)
    return abs(x - y) <= rtol * max(abs(x), abs(y), scale)


def fingerprints_close(ref: dict, now: dict, rtol: float = RTOL) -> bool:
    """Same shape/dtype/NaN count, and sum, sum of squares and head within ``rtol``.

    The absolute floor of each comparison is ``rtol`` times the array's RMS value times
    the square root of its size for the sum, times its sum of squares for ``sumsq`` and
    times its RMS value for a single value, so exact zeros and sums that cancel do not
    demand an impossible relative agreement. Arrays of at most ``HEAD`` values are
    compared value by value (their head is all of them).
    """
    if ref.get("kind") != now.get("kind"):
        return False
    if ref["kind"] != "num":
        return ref == now
    if (ref["shape"], ref["dtype"], ref["nan"]) != (now["shape"], now["dtype"], now["nan"]):
        return False
    if len(ref["head"]) != len(now["head"]) or ("sum" in ref) != ("sum" in now):
        return False
    if "sum" in ref:
        n = max(1, math.prod(ref["shape"]) - ref["nan"])
        ss = max(float(ref["sumsq"]), float(now["sumsq"]))
        if not (
            _close(ref["sum"], now["sum"], rtol, math.sqrt(ss))
            and _close(ref["sumsq"], now["sumsq"], rtol, ss)
        ):
            return False
    else:
        values = [float(v) for v in ref["head"] + now["head"] if not math.isnan(float(v))]
        n, ss = max(1, len(values)), sum(v * v for v in values)
    rms = math.sqrt(ss / n)
    return all(_close(a, b, rtol, rms) for a, b in zip(ref["head"], now["head"]))


def describe(ref: dict | None, now: dict | None) -> str:
    """Two leaves side by side, for a failure message."""

    def show(leaf):
        if leaf is None:
            return "absent"
        if leaf["kind"] == "num":
            sums = f" sum={leaf['sum']} sumsq={leaf['sumsq']}" if "sum" in leaf else ""
            return (
                f"{leaf['dtype']}{tuple(leaf['shape'])}{sums} nan={leaf['nan']} "
                f"head={leaf['head']} sha256={leaf['sha256'][:12]}"
            )
        if leaf["kind"] == "str":
            return f"{leaf['n']} labels, head={leaf['head']}"
        return f"object {leaf['type']}"

    return f"recorded: {show(ref)}\n      now: {show(now)}"


def tolerant(key: str, patterns: Mapping[str, str]) -> str | None:
    """The reason ``key`` is compared with a tolerance, or None (it must match bitwise)."""
    for pattern, reason in patterns.items():
        if fnmatchcase(key, pattern):
            return reason
    return None


def compare(
    ref: dict[str, dict],
    now: dict[str, dict],
    *,
    exact: bool,
    tolerances: Mapping[str, str] = {},  # noqa: B006 - read only
    rtol: float = RTOL,
) -> list[str]:
    """Every difference between a recorded case and a recomputed one, as messages.

    ``exact``: hashes must match, except the leaves matched by ``tolerances`` (glob
    patterns -> reason), whose fingerprints must agree within ``rtol``. Otherwise (a
    recording of another stack) every numeric leaf is compared by fingerprint.
    """
    problems = []
    for key in sorted(set(ref) | set(now)):
        a, b = ref.get(key), now.get(key)
        if a is None or b is None:
            what = "new output" if a is None else "output missing"
            problems.append(f"{key}: {what}\n    {describe(a, b)}")
            continue
        if a == b:
            continue
        reason = tolerant(key, tolerances)
        if a["kind"] == "num" and (not exact or reason is not None):
            if fingerprints_close(a, b, rtol):
                continue
            what = f"differs beyond rtol={rtol}" + (f" (tolerant: {reason})" if reason else "")
        elif a["kind"] == "num":
            what = "not bitwise equal"
        else:
            what = "labels differ"
        problems.append(f"{key}: {what}\n    {describe(a, b)}")
    return problems
