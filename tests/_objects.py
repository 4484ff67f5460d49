"""Deep snapshots of AnnData/MuData for "the object is unchanged" and "nothing non-finite" checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from mudata import MuData
from scipy import sparse


def _dense(x: Any) -> Any:
    if sparse.issparse(x):
        return ("sparse", x.format, x.shape, x.toarray().copy())
    if isinstance(x, pd.DataFrame | pd.Series):
        return ("pandas", x.copy())
    if isinstance(x, np.ndarray):
        return ("array", x.copy())
    if isinstance(x, dict):
        return {k: _dense(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return type(x)(_dense(v) for v in x)
    return x


def _slots(adata: AnnData) -> dict[str, Any]:
    return {
        "shape": adata.shape,
        "obs": adata.obs.copy(),
        "var": adata.var.copy(),
        "X": _dense(adata.X),
        "layers": {k: _dense(v) for k, v in adata.layers.items() if k is not None},
        "obsm": {k: _dense(v) for k, v in adata.obsm.items()},
        "varm": {k: _dense(v) for k, v in adata.varm.items()},
        "obsp": {k: _dense(v) for k, v in adata.obsp.items()},
        "varp": {k: _dense(v) for k, v in adata.varp.items()},
        "uns": _dense(dict(adata.uns)),
    }


def snapshot(obj: AnnData | MuData) -> dict[str, Any]:
    """Everything a tool could write, copied (sparse matrices densified for comparison)."""
    if isinstance(obj, MuData):
        return {
            "obs": obj.obs.copy(),
            "obsm": {k: _dense(v) for k, v in obj.obsm.items()},
            "uns": _dense(dict(obj.uns)),
            "mod": {name: _slots(mod) for name, mod in obj.mod.items()},
        }
    return _slots(obj)


def _assert_equal(a: Any, b: Any, where: str) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and sorted(a) == sorted(b), (
            f"{where}: keys {sorted(b)} != {sorted(a)}"
        )
        for k in a:
            _assert_equal(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, tuple) and a and a[0] in ("sparse", "array", "pandas"):
        assert isinstance(b, tuple) and b[0] == a[0], f"{where}: type changed"
        if a[0] == "pandas":
            pd.testing.assert_frame_equal(
                a[1].to_frame() if isinstance(a[1], pd.Series) else a[1],
                b[1].to_frame() if isinstance(b[1], pd.Series) else b[1],
            )
        else:
            assert a[:-1] == b[:-1], f"{where}: {a[:-1]} != {b[:-1]}"
            np.testing.assert_array_equal(a[-1], b[-1], err_msg=where)
    elif isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, obj=where)
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _assert_equal(x, y, f"{where}[{i}]")
    else:
        assert (a == b) or (a is b) or (a != a and b != b), f"{where}: {b!r} != {a!r}"


def assert_unchanged(obj: AnnData | MuData, before: dict[str, Any]) -> None:
    """Assert ``obj`` equals its :func:`snapshot` ``before`` in every slot."""
    _assert_equal(before, snapshot(obj), "object")


def _nonfinite(x: Any, where: str, found: list[str]) -> None:
    if isinstance(x, dict):
        for k, v in x.items():
            _nonfinite(v, f"{where}[{k!r}]", found)
        return
    if isinstance(x, list | tuple):
        for i, v in enumerate(x):
            _nonfinite(v, f"{where}[{i}]", found)
        return
    if isinstance(x, pd.DataFrame):
        x = x.select_dtypes("number").to_numpy(dtype=float)
    elif isinstance(x, pd.Series):
        x = x.to_numpy(dtype=float) if x.dtype.kind in "biuf" else np.zeros(0)
    elif sparse.issparse(x):
        x = x.data
    if isinstance(x, float | np.floating | np.ndarray):
        arr = np.asarray(x)
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            found.append(where)


def assert_all_finite(obj: AnnData | MuData) -> None:
    """Assert no slot of ``obj`` (X, layers, obs/var columns, obsm, varm, uns) holds NaN/inf.

    Columns that a tool documents as NaN-by-design must not exist: tests should fail on them.
    """
    found: list[str] = []
    snap = snapshot(obj)

    def walk(node: Any, where: str) -> None:
        if isinstance(node, tuple) and node and node[0] in ("sparse", "array", "pandas"):
            _nonfinite(node[-1] if node[0] != "pandas" else node[1], where, found)
        elif isinstance(node, dict):
            for k, v in node.items():
                walk(v, f"{where}[{k!r}]")
        elif isinstance(node, pd.DataFrame):
            _nonfinite(node, where, found)
        else:
            _nonfinite(node, where, found)

    walk(snap, "object")
    assert not found, f"non-finite values written into: {found}"
