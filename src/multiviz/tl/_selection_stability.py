"""``mv.tl.selection_stability``: reproducibility of the selected gene set."""

from __future__ import annotations

import mudata as md
import numpy as np

from .. import _logging as logg
from .._validate import (
    InputError,
    check_min_obs,
    check_option,
    check_positive_int,
    check_random_state,
)
from ..metrics._stability import mean_pairwise_jaccard, mean_pairwise_overlap, selection_frequency
from ._cross_validate import _fit_predict, cv_folds
from ._paired_data import check_n_genes, fold_arrays, full_arrays, resolve_inputs


def selection_stability(
    mdata: md.MuData,
    method: str = "sbnn",
    *,
    n_seeds: int = 10,
    over: str = "seeds",
    n_folds: int = 10,
    x: str = "rna",
    y: str | None = None,
    genes=None,
    random_state: int = 0,
    key_added: str | None = None,
    **kwargs,
) -> dict:
    """Refit ``method`` several times and measure how stable its gene selection is.

    ``over="seeds"`` refits on all cells with seeds ``random_state, ..., + n_seeds - 1``
    (the paper's Fig. 4: ten sBNN-2 runs on M1 shared 13 genes per pair on average, and
    two genes were always selected); ``over="folds"`` refits on the ``n_folds``
    cross-validation training sets (:func:`~multiviz.tl.cv_folds`; preprocessing
    refitted per fold). sRRR is deterministic, so only ``over="folds"`` varies it.

    Parameters
    ----------
    mdata
        Paired MuData.
    method
        ``"sbnn"`` or ``"srrr"``.
    n_seeds
        Number of refits for ``over="seeds"`` (10 in the paper).
    over
        ``"seeds"`` or ``"folds"``.
    n_folds
        Folds for ``over="folds"``.
    x, y, genes
        As in :func:`multiviz.tl.sbnn`.
    random_state
        First seed / the fold split seed.
    key_added
        Prefix (default ``method``): writes ``mdata[x].var[f"{key_added}_selection_frequency"]``
        and ``mdata.uns[f"{key_added}_stability"]``.
    **kwargs
        Model parameters (see :func:`multiviz.tl.cross_validate`).

    Returns
    -------
    Dict with ``gene_sets``, ``mean_jaccard``, ``mean_overlap`` (genes shared per pair)
    and ``always_selected``; also stored in ``uns`` (gene sets as ``;``-joined strings).
    """
    check_option(method, ("sbnn", "srrr"), "method")
    check_option(over, ("seeds", "folds"), "over")
    check_positive_int(n_seeds, "n_seeds")
    random_state = check_random_state(random_state)
    _, rna, _, mask = resolve_inputs(mdata, x, y, genes, None, None)
    if kwargs.get("n_genes") is not None:
        check_n_genes(kwargs["n_genes"], int(mask.sum()))
    sets: list[list[str]] = []
    if over == "seeds":
        data = full_arrays(mdata, x=x, y=y, genes=genes)
        for i in range(n_seeds):
            params = dict(kwargs)
            if method == "sbnn":
                params["random_state"] = random_state + i
            _, _, sel = _fit_predict(method, data, data, params)
            sets.append([str(g) for g in sel])
            logg.info("    %s seed %d: %s", method, random_state + i, ", ".join(sets[-1][:8]))
    else:
        if n_folds < 2:
            raise InputError("`n_folds` must be at least 2.")
        check_min_obs(mdata.n_obs, n_folds, "mdata", "cells (one per fold)")
        fold_of = cv_folds(mdata.n_obs, n_folds, random_state)
        for k in range(n_folds):
            tr, te = fold_arrays(
                mdata,
                np.flatnonzero(fold_of != k),
                np.flatnonzero(fold_of == k),
                x=x,
                y=y,
                genes=genes,
            )
            params = dict(kwargs)
            if method == "sbnn":
                params.setdefault("random_state", random_state)
            _, _, sel = _fit_predict(method, tr, te, params)
            sets.append([str(g) for g in sel])
    freq = selection_frequency(sets, [str(g) for g in rna.var_names])
    always = [g for g in freq.index[freq.to_numpy() == 1.0]]
    out = {
        "gene_sets": sets,
        "mean_jaccard": mean_pairwise_jaccard(sets),
        "mean_overlap": mean_pairwise_overlap(sets),
        "always_selected": always,
    }
    key = key_added or method
    rna.var[f"{key}_selection_frequency"] = freq.to_numpy()
    mdata.uns[f"{key}_stability"] = {
        "over": over,
        "n_fits": len(sets),
        "mean_jaccard": out["mean_jaccard"],
        "mean_overlap": out["mean_overlap"],
        "always_selected": np.asarray(always, dtype=object),
        "gene_sets": np.asarray([";".join(s) for s in sets], dtype=object),
    }
    logg.info(
        "    %s stability over %d %s: mean Jaccard %.2f, %d genes always selected",
        method,
        len(sets),
        over,
        out["mean_jaccard"],
        len(always),
    )
    return out
