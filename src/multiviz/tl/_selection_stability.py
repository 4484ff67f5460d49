"""``mv.tl.selection_stability``: reproducibility of the selected gene set (and consensus)."""

from __future__ import annotations

import mudata as md
import numpy as np
import pandas as pd
from anndata import AnnData

from .. import _logging as logg
from .._docs import PAIRED_EXAMPLE, doc_params
from .._validate import (
    MAX_SEED,
    InputError,
    check_bool,
    check_int,
    check_option,
    check_random_state,
    check_unique_names,
    check_writable,
)
from ..metrics._stability import mean_pairwise_jaccard, mean_pairwise_overlap
from ._checks import check_model_kwargs, check_n_genes
from ._cross_validate import cv_folds
from ._cv_checks import min_training_cells, safe_first_call
from ._ensemble_fits import fit_sbnn_members, fit_srrr_member
from ._paired_data import fold_arrays, full_arrays, resolve_inputs
from ._ranking import consensus_genes, consensus_ranking


@doc_params(paired_example=PAIRED_EXAMPLE)
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
    ensemble: bool = True,
    consensus: bool = False,
    enable_progress_bar: bool | None = None,
    **kwargs,
) -> dict:
    """Refit ``method`` several times and measure how stable its gene selection is.

    ``over="seeds"`` refits on all cells with seeds ``random_state, ..., + n_seeds - 1``
    (the paper's Fig. 4: ten sBNN-2 runs on M1 shared 13 genes per pair on average, and
    two genes were always selected); ``over="folds"`` refits on the ``n_folds``
    cross-validation training sets (:func:`~multiviz.tl.cv_folds`; preprocessing
    refitted per fold); ``over="folds_seeds"`` on every fold with every seed
    (``n_folds × n_seeds`` fits). sRRR is deterministic, so only the folds vary it.
    sBNN fits train as one batched ensemble by default (see
    :func:`~multiviz.tl.cross_validate`); ``ensemble=False`` trains them one by one.

    With ``consensus=True`` (sBNN only) the ``n_genes`` genes selected most often
    (ties: larger mean first-layer weight relative to each fit's cut) are kept and one
    sBNN is refitted on all cells on exactly those genes with the paper's full schedule
    (:func:`multiviz.tl.sbnn` with ``genes=`` those genes), so the reported genes no
    longer depend on one seed or fold. This is the documented way to a consensus model.

    Parameters
    ----------
    mdata
        Paired MuData after :func:`multiviz.pp.prepare_paired`.
    method
        ``"sbnn"`` or ``"srrr"``.
    n_seeds
        Number of seeds (10 in the paper; at least 2, Jaccard compares pairs).
    over
        ``"seeds"``, ``"folds"`` or ``"folds_seeds"``.
    n_folds
        Folds for ``over="folds"``/``"folds_seeds"`` (at least 2).
    x, y, genes
        As in :func:`multiviz.tl.sbnn`.
    random_state
        First seed / the fold split seed.
    key_added
        Prefix (default ``method``).
    ensemble
        Batched sBNN ensemble (default) or sequential fits.
    consensus
        Refit an sBNN on the most frequently selected genes (see above).
    enable_progress_bar
        Progress bar; ``None`` follows ``mv.settings.verbosity``.
    **kwargs
        Model parameters (see :func:`multiviz.tl.cross_validate`).

    Returns
    -------
    Dict with ``gene_sets``, ``mean_jaccard``, ``mean_overlap`` (genes shared per pair),
    ``always_selected`` and, with ``consensus``, ``consensus_genes``. Writes
    ``mdata[x].var[f"{key_added}_selection_frequency"]`` (fraction of fits selecting each
    gene; NaN outside ``genes``) and ``mdata.uns[f"{key_added}_stability"]``; with
    ``consensus`` also everything :func:`multiviz.tl.sbnn` writes, under
    ``key_added=f"{key_added}_consensus"``.

    Examples
    --------
    {paired_example}
    >>> mv.tl.selection_stability(mdata, method="srrr", n_seeds=10, rank=2)
    >>> mv.tl.selection_stability(mdata, method="sbnn", n_seeds=10, consensus=True)  # one ensemble + refit
    >>> mdata["rna"].var["sbnn_selection_frequency"].nlargest(5)
    """
    n_seeds, n_folds, random_state, ensemble, consensus, decoder_epochs = _check_options(
        method, over, n_seeds, n_folds, random_state, ensemble, consensus, kwargs
    )
    y, rna, mask, n_genes, fold_of = _check_data(
        mdata, method, over, n_folds, random_state, kwargs, x=x, y=y, genes=genes
    )
    key = key_added or method
    from ..train import fit_context, resolve_progress_bar

    progress = resolve_progress_bar(enable_progress_bar)
    with fit_context(f"selection stability of {method} over {over}"):
        trains, seeds = _member_data(
            mdata, over, n_seeds, fold_of, random_state, x=x, y=y, genes=genes
        )
        if method == "srrr":
            fits = [fit_srrr_member(tr, kwargs) for tr in trains]
        else:
            params = {k: v for k, v in kwargs.items() if k != "random_state"}
            fits = fit_sbnn_members(trains, seeds, params, ensemble=ensemble, progress=progress)
        sets = [f.genes for f in fits]
        names = [str(g) for g in trains[0].gene_names]
        norms = [pd.Series(f.weight_norms, index=names) for f in fits]
        ranking = consensus_ranking(sets, names, norms)
        out = {
            "gene_sets": sets,
            "mean_jaccard": mean_pairwise_jaccard(sets),
            "mean_overlap": mean_pairwise_overlap(sets),
            "always_selected": [g for g in ranking.index if ranking.loc[g, "frequency"] == 1.0],
        }
        if consensus:
            out["consensus_genes"] = consensus_genes(ranking, n_genes)
    # ---- everything computed; now write
    freq = np.full(rna.n_vars, np.nan)
    freq[np.flatnonzero(mask)] = ranking["frequency"].reindex(names).to_numpy()
    if consensus:  # the last fit; mv.tl.sbnn writes nothing unless it succeeds
        _refit_consensus(
            mdata, out["consensus_genes"], kwargs, decoder_epochs, random_state, key, x=x, y=y
        )
    rna.var[f"{key}_selection_frequency"] = freq
    mdata.uns[f"{key}_stability"] = _stability_record(
        out, over, bool(ensemble and method == "sbnn")
    )
    logg.info(
        "    %s stability over %d %s: mean Jaccard %.2f, %d genes always selected",
        method,
        len(sets),
        over,
        out["mean_jaccard"],
        len(out["always_selected"]),
    )
    return out


def _check_options(
    method: str,
    over: str,
    n_seeds: int,
    n_folds: int,
    random_state: int,
    ensemble: bool,
    consensus: bool,
    kwargs: dict,
) -> tuple[int, int, int, bool, bool, int | None]:
    """Checked arguments, and the consensus refit's ``gene_decoder_epochs`` (popped)."""
    check_option(method, ("sbnn", "srrr"), "method")
    check_option(over, ("seeds", "folds", "folds_seeds"), "over")
    random_state = check_random_state(random_state)
    ensemble = check_bool(ensemble, "ensemble")
    consensus = check_bool(consensus, "consensus")
    if over != "folds":
        n_seeds = check_int(n_seeds, "n_seeds", minimum=2 if over == "seeds" else 1)
        if random_state + n_seeds - 1 > MAX_SEED:
            raise InputError(
                f"`random_state={random_state}` with `n_seeds={n_seeds}` seeds the members "
                f"with {random_state} .. {random_state + n_seeds - 1}, above the largest seed "
                f"numpy and scikit-learn accept (2**32 - 1 = {MAX_SEED}). Pass "
                f"`random_state` <= {MAX_SEED - n_seeds + 1}."
            )
    if over != "seeds":
        n_folds = check_int(n_folds, "n_folds", minimum=2)
    if method == "srrr" and over != "folds":
        raise InputError(
            "sRRR is deterministic: refitting with other seeds gives the same genes. Use "
            "`over='folds'`."
        )
    if consensus and method != "sbnn":
        raise InputError("`consensus=True` refits an sBNN; use `method='sbnn'`.")
    decoder_epochs = kwargs.pop("gene_decoder_epochs", None)  # the consensus refit's only
    if decoder_epochs is not None and not consensus:
        raise InputError("`gene_decoder_epochs` applies only to the `consensus=True` refit.")
    check_model_kwargs(method, kwargs, "selection_stability")
    return n_seeds, n_folds, random_state, ensemble, consensus, decoder_epochs


def _check_data(
    mdata: md.MuData,
    method: str,
    over: str,
    n_folds: int,
    random_state: int,
    kwargs: dict,
    *,
    x: str,
    y: str | None,
    genes,
) -> tuple[str, AnnData, np.ndarray, int, np.ndarray | None]:
    """Resolved ``y``, the predictor modality and gene mask, ``n_genes`` and the folds."""
    y, rna, _, mask = resolve_inputs(mdata, x, y, genes, None, None)
    check_writable(mdata, "mdata")
    check_unique_names(mdata, "mdata")
    safe_first_call(mdata, x, y)
    n_genes = kwargs.get("n_genes", 25)
    check_n_genes(n_genes, int(mask.sum()))
    minimum, why = min_training_cells(method, kwargs)
    fold_of = cv_folds(mdata.n_obs, n_folds, random_state) if over != "seeds" else None
    n_train = mdata.n_obs
    if fold_of is not None:
        if mdata.n_obs < n_folds:
            raise InputError(f"`mdata` has {mdata.n_obs} cells, fewer than `n_folds`={n_folds}.")
        n_train -= int(np.bincount(fold_of).max())
    if n_train < minimum:
        raise InputError(
            f"Each fit would have {n_train} training cells; {method} needs at least {minimum} "
            f"({why})."
        )
    return y, rna, mask, n_genes, fold_of


def _refit_consensus(
    mdata: md.MuData,
    chosen: list[str],
    kwargs: dict,
    decoder_epochs: int | None,
    random_state: int,
    key: str,
    *,
    x: str,
    y: str,
) -> None:
    """One sBNN on all cells, on exactly the consensus genes (``key_added=f"{key}_consensus"``)."""
    from ._sbnn import sbnn

    refit = {k: v for k, v in kwargs.items() if k != "n_genes"}
    if decoder_epochs is not None:
        refit["gene_decoder_epochs"] = decoder_epochs
    sbnn(
        mdata,
        x=x,
        y=y,
        genes=list(chosen),
        n_genes=len(chosen),
        random_state=random_state,
        key_added=f"{key}_consensus",
        **refit,
    )


def _stability_record(out: dict, over: str, ensemble: bool) -> dict:
    """``uns[f"{key_added}_stability"]``: the summary of ``out`` with its gene sets joined."""
    sets = out["gene_sets"]
    return {
        "over": over,
        "n_fits": len(sets),
        "ensemble": ensemble,
        "mean_jaccard": out["mean_jaccard"],
        "mean_overlap": out["mean_overlap"],
        "always_selected": np.asarray(out["always_selected"], dtype=object),
        "gene_sets": np.asarray([";".join(s) for s in sets], dtype=object),
        **(
            {"consensus_genes": np.asarray(out["consensus_genes"], dtype=object)}
            if "consensus_genes" in out
            else {}
        ),
    }


def _member_data(mdata, over, n_seeds, fold_of, random_state, *, x, y, genes):
    """Training arrays and seed of every member."""
    if over == "seeds":
        data = full_arrays(mdata, x=x, y=y, genes=genes)
        return [data] * n_seeds, [random_state + i for i in range(n_seeds)]
    n_folds = int(fold_of.max()) + 1
    trains, seeds = [], []
    for k in range(n_folds):
        tr, _ = fold_arrays(
            mdata, np.flatnonzero(fold_of != k), np.flatnonzero(fold_of == k), x=x, y=y, genes=genes
        )
        reps = 1 if over == "folds" else n_seeds
        trains += [tr] * reps
        seeds += [random_state + i for i in range(reps)]
    return trains, seeds
