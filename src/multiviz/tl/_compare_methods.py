"""``mv.tl.compare_methods``: two models on the same CV folds, paired differences with a CI."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import mudata as md
import numpy as np
import pandas as pd
from scipy import stats

from .. import _logging as logg
from .._validate import (
    InputError,
    check_bool,
    check_float,
    check_int,
    check_mudata,
    check_option,
    check_random_state,
    check_str,
    check_writable,
)
from ._checks import check_model_kwargs
from ._cv_checks import min_training_cells
from ._paired_data import resolve_inputs

_NAMES = {"srrr": "sRRR", "sbnn": "sBNN"}
_CV_COLUMNS = {"method", "params", "fold", "feature", "r2"}
_CV_OPTIONS = ("ensemble", "linear_baseline", "enable_progress_bar")  # not model parameters
_NOT_HERE = {
    "folds": "every fold is needed for the paired test",
    "return_predictions": "run `mv.tl.cross_validate` for out-of-fold predictions",
    "random_state": "`random_state` is the split seed and the models' seed",
    "key_added": "the cross-validation tables are written to `cv_<label>`",
}


def paired_ci(diffs, ratio: float, level: float = 0.95) -> tuple[float, float, float, float]:
    """Mean paired difference, its corrected-t interval and two-sided p-value (NaN-free input).

    Nadeau & Bengio (2003): ``se = sqrt((1/K + ratio) * var(d, ddof=1))`` with ``ratio`` =
    n_test / n_train, and the ``t`` quantile with ``K - 1`` degrees of freedom.
    """
    d = np.asarray(diffs, dtype=float)
    k = d.size
    if k < 2:
        return (float(d.mean()) if k else np.nan), np.nan, np.nan, np.nan
    mean = float(d.mean())
    se = float(np.sqrt((1.0 / k + ratio) * d.var(ddof=1)))
    half = float(stats.t.ppf(0.5 + level / 2, k - 1)) * se
    p = float(2 * stats.t.sf(abs(mean) / se, k - 1)) if se > 0 else (1.0 if mean == 0 else 0.0)
    return mean, mean - half, mean + half, p


def compare_methods(
    mdata: md.MuData,
    methods: Sequence = ("srrr", "sbnn"),
    *,
    n_folds: int = 10,
    random_state: int = 0,
    level: float = 0.95,
    method_kwargs: Mapping[str, Mapping] | Sequence[Mapping] | None = None,
    labels: Sequence[str] | None = None,
    x: str = "rna",
    y: str | None = None,
    genes=None,
    key_added: str | None = None,
    reuse: bool = True,
    **shared_kwargs,
) -> pd.DataFrame:
    """Is the second model better than the first? Paired K-fold CV differences with a CI.

    Both models are cross-validated by :func:`multiviz.tl.cross_validate` on the same folds
    (:func:`multiviz.tl.cv_folds` with ``random_state``). For every target feature and for
    the multivariate R² (``feature == "all"``) the per-fold difference
    ``d_k = R²_second - R²_first`` is paired by fold; its mean gets a confidence interval
    from the *corrected resampled t-test* of Nadeau & Bengio (2003, Machine Learning 52:
    239-281): the K training sets overlap, so the folds' differences are correlated and
    the naive ``var(d) / K`` is too small. The variance is instead
    ``(1/K + n_test/n_train) * var(d)`` (``n_test/n_train = 1/(K-1)`` for K folds, about
    twice the naive variance), and the interval uses the ``t`` quantile with ``K - 1``
    degrees of freedom (:data:`scipy.stats.t`). Per-feature intervals are not adjusted for
    multiple comparisons; the verdict uses the overall row only.

    Parameters
    ----------
    mdata
        Paired MuData after :func:`multiviz.pp.prepare_paired`.
    methods
        The two models, first then second: ``"srrr"`` / ``"sbnn"`` or ``(method, kwargs)``,
        e.g. ``(("srrr", {"rank": 1}), ("srrr", {"rank": 2}))``. Differences are second
        minus first.
    n_folds
        Folds K (at least 3: the interval has K - 1 degrees of freedom).
    random_state
        Seed of the split, shared by both models (and the sBNN's seed).
    level
        Confidence level of the intervals, in (0, 1).
    method_kwargs
        Per-model parameters: ``{"sbnn": {"bottleneck": 2}}`` by method name, or a list of two
        dicts aligned with ``methods`` (needed when both are the same method).
    labels
        Names of the two models in the verdict and plot (default ``"sRRR"``/``"sBNN"``; two
        configurations of one method are named by the parameters that differ).
    x, y, genes
        Modalities and gene restriction, as in :func:`multiviz.tl.cross_validate`.
    key_added
        ``uns`` key of the comparison (default ``f"compare_{first}_{second}"`` from the labels,
        e.g. ``"compare_srrr_sbnn"``).
    reuse
        Reuse ``mdata.uns[f"cv_{label}"]`` when it holds the same model, parameters, and all
        ``n_folds`` folds of this seed (recorded in the sBNN's ``params``, or by an earlier
        ``compare_methods`` call; an sRRR table from ``cross_validate`` is refitted, which
        takes seconds). Otherwise, or with ``False``, cross-validate again.
    **shared_kwargs
        Parameters for both models (e.g. ``n_genes=25``) and ``cross_validate`` options
        (``ensemble``, ``linear_baseline``, ``enable_progress_bar``); ``method_kwargs`` win.

    Returns
    -------
    DataFrame, one row per feature and a last row ``"all"``: ``feature, diff`` (mean over
    folds of second minus first), ``ci_low, ci_high``, ``p_value`` (corrected t-test),
    ``wins`` (folds where the second scores higher), ``n_folds`` (folds paired),
    ``r2_first, r2_second`` (mean held-out R²). ``df.attrs["verdict"]`` is the answer in
    words, e.g. ``"sBNN is not better than sRRR here: +0.004, 95 % CI −0.020 to +0.030
    (better in 5 of 10 folds)"``; also ``"... is better than ..."`` (interval above 0) or
    ``"... is worse than ..."`` (below 0). It is logged at INFO.

    Writes: ``mdata.uns[key_added]`` (the table), ``mdata.uns[f"{key_added}_verdict"]`` (the
    sentence), ``mdata.uns[f"{key_added}_params"]`` (labels, methods, parameters, level,
    n_folds, random_state, the CV keys) and each model's CV table in
    ``mdata.uns[f"cv_{label}"]`` (the label in lower case, other characters as ``_``: e.g.
    ``cv_srrr``, ``cv_sbnn``, ``cv_srrr_rank_1``; replaced when refitted). For the overall
    numbers, ``df.set_index("feature").loc["all", ["diff", "ci_low", "ci_high"]]``.

    Examples
    --------
    >>> import multiviz as mv
    >>> mdata = mv.datasets.simulate_patchseq(n_cells=300, n_genes=150)
    >>> mv.pp.prepare_paired(mdata, x="rna", y="ephys", gene_selection="none")
    >>> df = mv.tl.compare_methods(mdata, ("srrr", "sbnn"), n_genes=25)  # sBNN: minutes
    >>> df.attrs["verdict"]
    >>> mv.tl.compare_methods(mdata, ("srrr", "srrr"), n_folds=5, method_kwargs=[{"rank": 1}, {"rank": 2}])
    >>> mv.pl.compare_methods(mdata, "compare_srrr_rank_1_srrr_rank_2")
    """
    n_folds, random_state, level, reuse = _check_compare_args(
        mdata, n_folds, random_state, level, reuse, key_added
    )
    specs = _specs(methods, method_kwargs, labels, shared_kwargs, random_state)
    y, rna, _, mask = resolve_inputs(mdata, x, y, genes, None, None)
    check_writable(mdata, "mdata")
    _check_training_cells(mdata, specs, n_folds, random_state)
    prov = {"n_folds": n_folds, "random_state": random_state, "x": x, "y": y}
    prov["genes"] = None if mask.all() else [str(g) for g in rna.var_names[mask]]
    cv_kwargs = {"x": x, "y": y, "genes": genes, "random_state": random_state}
    tables = [_cv_table(mdata, s, prov, reuse, cv_kwargs) for s in specs]
    table = _paired_table(tables, ratio=1.0 / (n_folds - 1), level=level)
    first, second = (s["label"] for s in specs)
    verdict = _verdict(table.iloc[-1], first, second, level)
    key = key_added or f"compare_{specs[0]['slug']}_{specs[1]['slug']}"
    params = {
        "first": first,
        "second": second,
        "methods": [s["method"] for s in specs],
        "params": [s["params"] for s in specs],
        "cv_keys": [s["key"] for s in specs],
        "level": level,
        "n_folds": n_folds,
        "random_state": random_state,
        "test": "Nadeau-Bengio corrected resampled t",
    }
    table.attrs.update(verdict=verdict, params=params)
    mdata.uns[key] = table
    mdata.uns[f"{key}_verdict"] = verdict
    mdata.uns[f"{key}_params"] = params
    logg.info("%s", verdict)
    return table


def _check_compare_args(
    mdata: md.MuData, n_folds: int, random_state: int, level: float, reuse: bool, key_added
) -> tuple[int, int, float, bool]:
    """The scalar arguments of :func:`compare_methods`, checked."""
    check_mudata(mdata)
    if isinstance(n_folds, int) and not isinstance(n_folds, bool) and n_folds < 3:
        raise InputError(
            f"`n_folds` must be at least 3 for a confidence interval (K - 1 degrees of "
            f"freedom), got {n_folds}; use e.g. `n_folds=10`."
        )
    n_folds = check_int(n_folds, "n_folds", minimum=3)
    random_state = check_random_state(random_state)
    level = check_float(level, "level", low=0.0, high=1.0, low_open=True, high_open=True)
    reuse = check_bool(reuse, "reuse")
    check_str(key_added, "key_added", optional=True)
    return n_folds, random_state, level, reuse


def _check_training_cells(
    mdata: md.MuData, specs: list[dict], n_folds: int, random_state: int
) -> None:
    """Every fold leaves each model enough training cells."""
    from ._cross_validate import cv_folds

    sizes = np.bincount(cv_folds(mdata.n_obs, n_folds, random_state), minlength=n_folds)
    for s in specs:
        minimum, why = min_training_cells(s["method"], s["model"])
        if mdata.n_obs - sizes.max() < minimum:
            raise InputError(
                f"{n_folds}-fold cross-validation leaves {mdata.n_obs - sizes.max()} training "
                f"cells; {s['label']} needs at least {minimum} ({why}). Use fewer `n_folds`."
            )


def _cv_table(mdata: md.MuData, spec: dict, prov: dict, reuse: bool, cv_kwargs: dict):
    """The model's CV table: ``mdata.uns[spec["key"]]`` when reusable, else cross-validated."""
    from ._cross_validate import cross_validate

    old, why = mdata.uns.get(spec["key"]), "reuse=False"
    if reuse and old is not None:
        why = _why_not_reusable(old, spec, prov)
        if why is None:
            logg.info("    reusing mdata.uns[%r] (%s)", spec["key"], spec["params"])
            return old
    if old is not None:
        logg.info("    recomputing mdata.uns[%r]: %s", spec["key"], why)
    df = cross_validate(
        mdata,
        spec["method"],
        n_folds=prov["n_folds"],
        key_added=spec["key"],
        **cv_kwargs,
        **spec["options"],
        **spec["model"],
    )
    df.attrs["cv"] = dict(prov)
    return df


def _specs(methods, method_kwargs, labels, shared, seed) -> list[dict]:
    """The two configurations: method, model parameters, CV options, label, slug, keys."""
    if isinstance(methods, str | bytes) or not isinstance(methods, Sequence) or len(methods) != 2:
        raise InputError(
            "`methods` must be two models, e.g. `('srrr', 'sbnn')` or "
            f"`(('srrr', {{'rank': 1}}), ('srrr', {{'rank': 2}}))`; got {methods!r}."
        )
    names, kws = [], []
    for i, entry in enumerate(methods):
        kw = {}
        if isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], Mapping):
            entry, kw = entry[0], dict(entry[1])
        names.append(check_option(entry, tuple(_NAMES), f"methods[{i}]"))
        kws.append(kw)
    if isinstance(method_kwargs, Mapping):
        unknown = sorted(set(method_kwargs) - set(names))
        if unknown or (names[0] == names[1] and method_kwargs):
            raise InputError(
                f"`method_kwargs` is keyed by method name, but {unknown or names[0]!r} "
                f"{'is not in' if unknown else 'is twice in'} `methods`={list(names)}; "
                "pass a list of two dicts aligned with `methods` instead."
            )
        extra = [dict(method_kwargs.get(n) or {}) for n in names]
    elif method_kwargs is None:
        extra = [{}, {}]
    elif (
        isinstance(method_kwargs, Sequence)
        and len(method_kwargs) == 2
        and all(isinstance(m, Mapping) for m in method_kwargs)
    ):
        extra = [dict(m) for m in method_kwargs]
    else:
        raise InputError(
            "`method_kwargs` must be a dict by method name or a list of two dicts, got "
            f"{method_kwargs!r}."
        )
    specs = []
    for i, (name, kw, ex) in enumerate(zip(names, kws, extra)):
        merged = {**shared, **kw, **ex}
        for arg, why in _NOT_HERE.items():
            if arg in merged:
                raise InputError(f"`{arg}` cannot be set for a model here: {why}.")
        options = {k: merged.pop(k) for k in _CV_OPTIONS if k in merged}
        check_model_kwargs(name, merged, f"compare_methods (methods[{i}]={name!r})")
        shown = {**merged, **({"random_state": seed} if name == "sbnn" else {})}
        params = ", ".join(f"{k}={v!r}" for k, v in sorted(shown.items()))
        specs.append({"method": name, "model": merged, "options": options, "params": params})
    a, b = specs
    if a["method"] == b["method"] and a["model"] == b["model"]:
        raise InputError(
            f"`methods` names the same model twice ({a['method']}, {a['params'] or 'defaults'}): "
            "the difference is 0 by construction. Give the two different `method_kwargs`."
        )
    if labels is None:
        labels = [_NAMES[s["method"]] for s in specs]
        if a["method"] == b["method"]:  # name each by the parameters that differ
            both = {**a["model"], **b["model"]}
            keys = sorted(k for k in both if a["model"].get(k, "?") != b["model"].get(k, "?"))
            labels = [
                lab + " (" + ", ".join(f"{k}={s['model'].get(k, 'default')}" for k in keys) + ")"
                for lab, s in zip(labels, specs)
            ]
    if isinstance(labels, str) or len(labels) != 2:
        raise InputError(f"`labels` must be two names, got {labels!r}.")
    for i, (s, lab) in enumerate(zip(specs, labels)):
        s["label"] = check_str(lab, f"labels[{i}]")
        s["slug"] = re.sub(r"[^0-9a-z]+", "_", lab.lower()).strip("_")
        s["key"] = f"cv_{s['slug']}"
    if not a["slug"] or a["slug"] == b["slug"]:
        raise InputError(f"`labels` must be two distinct names, got {list(labels)!r}.")
    return specs


def _why_not_reusable(table, spec: dict, prov: dict) -> str | None:
    """``None`` when ``table`` is this model's CV on these folds, else the reason it is not."""
    if not isinstance(table, pd.DataFrame) or not _CV_COLUMNS <= set(table):
        return "not a cross-validation table"
    if set(table["method"]) != {spec["method"]} or set(table["params"]) != {spec["params"]}:
        return f"other parameters ({'; '.join(map(str, set(table['params'])))})"
    folds = sorted(table.loc[table["feature"] == "all", "fold"])
    if folds != list(range(prov["n_folds"])):
        return f"folds {folds}, not all {prov['n_folds']}"
    recorded = table.attrs.get("cv")
    if recorded is not None:
        return None if recorded == prov else f"another split or inputs ({recorded})"
    if spec["method"] == "srrr":
        return "its split seed is not recorded"
    return None  # the sBNN's params record the seed; x, y and genes are trusted


def _paired_table(tables, *, ratio: float, level: float) -> pd.DataFrame:
    """Per feature (then ``"all"``): paired differences second - first over the folds."""
    wide = [t.pivot(index="fold", columns="feature", values="r2").astype(float) for t in tables]
    names = [f for f in dict.fromkeys(tables[0]["feature"]) if f != "all" and f in wide[1]]
    rows = []
    for f in [*names, "all"]:
        first, second = wide[0][f], wide[1][f].reindex(wide[0].index)
        ok = np.isfinite(first) & np.isfinite(second)
        d = (second - first)[ok].to_numpy()
        mean, low, high, p = paired_ci(d, ratio, level)
        rows.append(
            {
                "feature": str(f),
                "diff": mean,
                "ci_low": low,
                "ci_high": high,
                "p_value": p,
                "wins": int((d > 0).sum()),
                "n_folds": int(ok.sum()),
                "r2_first": float(first[ok].mean()),
                "r2_second": float(second[ok].mean()),
            }
        )
    return pd.DataFrame(rows)


def _fmt(v: float) -> str:
    return f"{v:+.3f}".replace("-", "\u2212")


def _verdict(row, first: str, second: str, level: float) -> str:
    """The overall row in words: better (CI above 0), worse (below 0), or not better."""
    if not np.isfinite(row["ci_low"]):
        return f"{second} vs {first}: too few folds for an interval ({_fmt(row['diff'])})."
    how = (
        "is better than"
        if row["ci_low"] > 0
        else "is worse than"
        if row["ci_high"] < 0
        else "is not better than"
    )
    return (
        f"{second} {how} {first}{' here' if how == 'is not better than' else ''}: "
        f"{_fmt(row['diff'])}, {100 * level:g} % CI {_fmt(row['ci_low'])} to "
        f"{_fmt(row['ci_high'])} (better in {row['wins']} of {row['n_folds']} folds)"
    )
