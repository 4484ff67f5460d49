"""``mv.tl.gene_centrality``: rank genes by siVAE degree centrality."""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData

from multiviz import _logging as logg
from multiviz._docs import SIVAE_RUN, doc_params
from multiviz._validate import InputError, check_anndata, check_bool, check_int, check_str

__all__ = ["gene_centrality"]


@doc_params(sivae_run=SIVAE_RUN)
def gene_centrality(
    adata: AnnData,
    *,
    key: str = "sivae",
    n_top: int | None = None,
    pvalues: bool = False,
    random_state: int = 0,
) -> pd.DataFrame:
    """Genes ranked by siVAE degree centrality (higher = more central), optionally tested.

    The paper (Choi & Quon 2023, Methods "Estimating degree centrality using siVAE")
    defines a gene's degree centrality as the negative of its reconstruction error;
    :func:`multiviz.tl.sivae` stores the per-gene reconstruction R² (the error scaled by
    the gene's variance) in ``var[f"{key}_centrality"]``. Hub genes, which predict many
    other genes, are reconstructed best.

    ``pvalues=True`` adds an empirical p-value per gene against a permutation null (ours,
    not the paper's): one extra siVAE fit, with the run's settings from
    ``uns[key]["params"]``, on a private AnnData holding the genes beside a copy of them in
    which each gene is permuted across cells independently (within ``batch_key`` groups;
    a sparse matrix stays sparse). The permuted "shadow" genes keep their distributions and
    lose every gene–gene correlation, so their centralities are what a gene with no
    co-expression reaches in that fit. With ``c_g`` the gene's centrality in the same fit,
    the null pooled over the ``n`` scored shadow genes:

    ``p_g = (1 + #{shadow h : c_h >= c_g}) / (1 + n)``,

    resolution ``1 / (n_genes + 1)``; Benjamini–Hochberg q-values over the scored genes.
    The null tests "no co-expression with any gene": in a hub-and-spoke module the spokes
    are significant too (they are co-expressed); rank by ``centrality`` to find hubs. Real
    and shadow genes share one fit because a fit on the permuted matrix alone collapses
    (every R² ~0) and would call genes with no partner significant
    (``multiviz.tl._centrality_null`` gives the numbers). The fit costs about as much
    as the original on twice the genes (logged at INFO). Settings ``uns[key]["params"]``
    does not record (``weight_decay``, ``dropout_rate``, categorical and continuous
    covariates, accelerator) take :func:`~multiviz.tl.sivae`'s defaults.

    Parameters
    ----------
    {sivae_run}
    n_top
        Return only the top genes (a positive integer; ``None``: all ranked genes).
    pvalues
        Add ``pvalue`` and ``qvalue`` (see above). The null fit runs once and is cached
        in ``uns[key]["centrality_null"]``: a second call with the same ``random_state``
        does not refit. The user's siVAE results are left untouched.
    random_state
        Seed of the permutation (the null fit itself uses the run's ``random_state``).

    Returns
    -------
    DataFrame indexed by gene with ``centrality`` and ``rank`` (1 = most central), plus
    ``pvalue`` and ``qvalue`` with ``pvalues=True``. Genes that siVAE could not score
    (constant over cells, ``var[f"{key}_used"] == False``) are left out: they have no
    reconstruction R².

    With ``pvalues=True`` also writes ``var[f"{key}_centrality_pvalue"]`` and
    ``var[f"{key}_centrality_qvalue"]`` (NaN for unscored genes) and
    ``uns[key]["centrality_null"]`` (the null fit's centralities of the genes,
    ``centrality``, and of their permuted copies, ``shadow_centrality``; ``n_null``;
    ``random_state``; ``seconds``), all after the null fit succeeded: a failed fit writes
    nothing.

    Raises
    ------
    multiviz.InputError
        No siVAE results under ``key``; with ``pvalues=True`` also settings of the run
        missing from ``uns[key]["params"]`` (rerun :func:`~multiviz.tl.sivae`), a view.

    Examples
    --------
    >>> mv.tl.sivae(adata, n_latent=64)  # doctest: +SKIP
    >>> mv.tl.gene_centrality(adata, n_top=20)  # doctest: +SKIP
    >>> mv.tl.gene_centrality(adata, pvalues=True).query("qvalue < 0.05")  # doctest: +SKIP
    """
    check_anndata(adata)
    key = check_str(key, "key")
    if n_top is not None:
        n_top = check_int(n_top, "n_top")
    pvalues = check_bool(pvalues, "pvalues")
    col = f"{key}_centrality"
    if col not in adata.var:
        raise InputError(
            f"`var[{col!r}]` not found; run `mv.tl.sivae(adata, key_added={key!r})` first."
        )
    used_col = f"{key}_used"
    used = (
        adata.var[used_col].to_numpy(dtype=bool)
        if used_col in adata.var
        else np.ones(adata.n_vars, dtype=bool)
    )
    table = adata.var.loc[used, [col]].rename(columns={col: "centrality"}).copy()
    values = table["centrality"].to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise InputError(
            f"`var[{col!r}]` has {int((~np.isfinite(values)).sum())} non-finite values; "
            f"refit with `mv.tl.sivae(adata, key_added={key!r})`."
        )
    if pvalues:
        from ._centrality_null import null_pvalues

        if adata.is_view:
            raise InputError(
                "`adata` is a view; the p-values cannot be written into it. "
                "Make it an object of its own first: `adata = adata.copy()`."
            )
        p, q, null = null_pvalues(adata, key, random_state)  # fits; writes nothing
        adata.uns[key]["centrality_null"] = null
        adata.var[f"{col}_pvalue"] = p
        adata.var[f"{col}_qvalue"] = q
        logg.info(
            f"    added var['{col}_pvalue'], var['{col}_qvalue'], uns['{key}']['centrality_null']"
        )
        table["pvalue"], table["qvalue"] = p[used], q[used]
    out = table.sort_values("centrality", ascending=False, kind="stable")
    out["rank"] = np.arange(1, len(out) + 1)
    if pvalues:
        out = out[["centrality", "rank", "pvalue", "qvalue"]]
    return out.head(n_top) if n_top is not None else out
