"""``mv.tl.tsne``: openTSNE embedding of a stored representation (sBNN paper, Methods)."""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
from anndata import AnnData
from mudata import MuData

from .. import _logging as logg
from .._validate import (
    InputError,
    check_bool,
    check_fit_finite,
    check_float,
    check_int,
    check_kwargs,
    check_random_state,
    check_str,
    check_writable,
)

_OWN = ("random_state", "n_jobs")  # openTSNE arguments set through our own parameters


def _check_representation(X: np.ndarray, use_rep: str) -> None:
    """Refuse representations t-SNE cannot embed (too few cells, NaN, all cells identical)."""
    if X.ndim != 2 or X.shape[1] == 0:
        raise InputError(f"`obsm[{use_rep!r}]` must be a cells × dimensions matrix, got {X.shape}.")
    if X.shape[0] < 4:
        raise InputError(f"`obsm[{use_rep!r}]` has {X.shape[0]} cells; t-SNE needs at least 4.")
    n_bad = int((~np.isfinite(X)).sum())
    if n_bad:
        raise InputError(
            f"`obsm[{use_rep!r}]` contains {n_bad} NaN or infinite values; t-SNE cannot embed "
            "them. Refit the representation or drop those cells."
        )
    if np.ptp(X, axis=0).max() == 0:
        raise InputError(
            f"`use_rep={use_rep!r}`: every cell has the same coordinates in `obsm[{use_rep!r}]` "
            "(a constant representation, e.g. a collapsed latent); t-SNE would only produce NaN. "
            "Check the model that wrote it, or pass another `use_rep`."
        )
    n_distinct = np.unique(X, axis=0).shape[0]
    if n_distinct < 4:
        raise InputError(
            f"`use_rep={use_rep!r}` has only {n_distinct} distinct points among {X.shape[0]} "
            "cells; t-SNE needs at least 4 distinct points to produce a meaningful embedding."
        )


def tsne(
    data: MuData | AnnData,
    *,
    use_rep: str = "X_sbnn64",
    key_added: str | None = None,
    random_state: int = 0,
    n_jobs: int = 1,
    copy: bool = False,
    **tsne_kwargs: Any,
) -> MuData | AnnData | None:
    """Embed ``obsm[use_rep]`` in 2-D with openTSNE at its defaults (as the sBNN paper).

    Parameters
    ----------
    data
        MuData or AnnData holding ``obsm[use_rep]``.
    use_rep
        The representation, e.g. ``"X_sbnn64"`` (the paper's Fig. 5b) or ``"X_srrr"``.
    key_added
        ``obsm`` key of the embedding (default ``f"{use_rep}_tsne"``).
    random_state
        Seed of openTSNE.
    n_jobs
        Threads used by openTSNE.
    copy
        Work on and return a copy (also the way to embed a view).
    **tsne_kwargs
        Passed to :class:`openTSNE.TSNE` (defaults are openTSNE's, as in the paper);
        unknown names are refused with the closest valid one. ``perplexity`` is capped at
        ``(n_cells - 1) / 3``.

    Returns
    -------
    ``None`` (or the copy); writes ``obsm[key_added]`` and ``uns[key_added]`` (params).

    Raises
    ------
    InputError
        For a missing, non-finite or constant representation, or bad arguments.
    FitError
        If openTSNE returns non-finite coordinates (nothing is written).

    Examples
    --------
    >>> import multiviz as mv
    >>> mdata = mv.datasets.simulate_patchseq(n_cells=300, n_genes=200)
    >>> mv.pp.prepare_paired(mdata, n_top_genes=100)
    >>> mv.tl.srrr(mdata, rank=2, n_genes=10)
    >>> mv.tl.tsne(mdata, use_rep="X_srrr")
    >>> mdata.obsm["X_srrr_tsne"].shape
    (300, 2)
    """
    from openTSNE import TSNE

    if not isinstance(data, MuData | AnnData):
        raise InputError(f"`data` must be a MuData or AnnData, got {type(data).__name__}.")
    check_bool(copy, "copy")
    if not copy:
        check_writable(data, "data")
    check_str(use_rep, "use_rep")
    check_str(key_added, "key_added", optional=True)
    random_state = check_random_state(random_state)
    n_jobs = check_int(n_jobs, "n_jobs")
    allowed = set(inspect.signature(TSNE.__init__).parameters) - {"self", *_OWN}
    check_kwargs(tsne_kwargs, allowed, "mv.tl.tsne")
    perplexity = check_float(
        tsne_kwargs.pop("perplexity", 30.0), "perplexity", low=0, low_open=True
    )
    if use_rep not in data.obsm:
        raise InputError(
            f"`use_rep={use_rep!r}` is not in `obsm` (available: {list(data.obsm)}); "
            "run e.g. `mv.tl.sbnn(mdata, bottleneck=64, key_added='sbnn64')` first."
        )
    X = np.asarray(data.obsm[use_rep], dtype=np.float64)
    _check_representation(X, use_rep)
    perplexity = min(perplexity, (X.shape[0] - 1) / 3)
    key = key_added or f"{use_rep}_tsne"
    with logg.timed(f"running openTSNE on {use_rep}"):
        emb = TSNE(
            perplexity=perplexity, random_state=random_state, n_jobs=n_jobs, **tsne_kwargs
        ).fit(X)
    emb = np.asarray(emb, dtype=np.float32)
    check_fit_finite(
        emb, model="t-SNE", phase="optimisation", hint="Try another `perplexity` or `use_rep`"
    )
    if copy:
        data = data.copy()
    data.obsm[key] = emb
    data.uns[key] = {
        "params": {
            "use_rep": use_rep,
            "perplexity": float(perplexity),
            "random_state": random_state,
        }
    }
    return data if copy else None
