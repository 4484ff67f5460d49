"""``mv.tl.tsne``: openTSNE embedding of a stored representation (sBNN paper, Methods)."""

from __future__ import annotations

import numpy as np
from anndata import AnnData
from mudata import MuData

from .. import _logging as logg
from .._validate import InputError, check_random_state


def tsne(
    data: MuData | AnnData,
    *,
    use_rep: str = "X_sbnn64",
    key_added: str | None = None,
    random_state: int = 0,
    n_jobs: int = 1,
    copy: bool = False,
    **tsne_kwargs,
):
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
        Work on and return a copy.
    **tsne_kwargs
        Passed to :class:`openTSNE.TSNE` (defaults are openTSNE's, as in the paper).

    Returns
    -------
    ``None`` (or the copy); writes ``obsm[key_added]`` and ``uns[key_added]`` (params).
    """
    from openTSNE import TSNE

    if not isinstance(data, MuData | AnnData):
        raise InputError(f"`data` must be a MuData or AnnData, got {type(data).__name__}.")
    random_state = check_random_state(random_state)
    if use_rep not in data.obsm:
        raise InputError(
            f"`use_rep={use_rep!r}` is not in `obsm` (available: {list(data.obsm)}); "
            "run e.g. `mv.tl.sbnn(mdata, bottleneck=64, key_added='sbnn64')` first."
        )
    X = np.asarray(data.obsm[use_rep], dtype=np.float64)
    if X.shape[0] < 4:
        raise InputError("t-SNE needs at least 4 cells.")
    if not np.isfinite(X).all():
        raise InputError(f"`obsm[{use_rep!r}]` contains NaN or infinite values.")
    key = key_added or f"{use_rep}_tsne"
    perplexity = tsne_kwargs.pop("perplexity", 30.0)
    perplexity = min(perplexity, (X.shape[0] - 1) / 3)
    with logg.timed(f"running openTSNE on {use_rep}"):
        emb = TSNE(
            perplexity=perplexity, random_state=random_state, n_jobs=n_jobs, **tsne_kwargs
        ).fit(X)
    if copy:
        data = data.copy()
    data.obsm[key] = np.asarray(emb, dtype=np.float32)
    data.uns[key] = {
        "params": {
            "use_rep": use_rep,
            "perplexity": float(perplexity),
            "random_state": random_state,
        }
    }
    return data if copy else None
