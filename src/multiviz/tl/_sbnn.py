"""``mv.tl.sbnn``: fit a sparse bottleneck neural network and write its results."""

from __future__ import annotations

import mudata as md
import numpy as np

from multiviz._validate import check_level

from .. import _logging as logg
from .._docs import COPY, doc_params
from .._validate import (
    check_bool,
    check_int,
    check_min_obs,
    check_random_state,
    check_str,
    check_unique_names,
    check_writable,
    get_modality,
    resolve_target,
    resolve_var_mask,
)
from ..metrics._r2 import r2_score
from ._checks import check_n_genes, check_prepared
from ._heldout import (
    Split,
    describe,
    heldout_split,
    score_heldout,
    training_part,
)
from ._intervals import LEVEL
from ._paired_data import PairedArrays, full_arrays
from ._sbnn_write import write_sbnn
from ._srrr import fit_srrr

MIN_CELLS_PRETRAIN = 40
"""Fewest cells ``mv.tl.sbnn`` accepts with pre-training: 40 % are held out and the rest
clustered into K = 20 k-means clusters (paper Methods)."""
MIN_CELLS_PLAIN = 2
"""Fewest cells without pre-training (one minibatch)."""
PREDICT_BATCH = 4096
"""Cells per forward pass when the fitted model scores every cell."""


def min_cells(pretrain: bool) -> int:
    """The fewest (training) cells one sBNN fit accepts; shared with ``cross_validate``."""
    return MIN_CELLS_PRETRAIN if pretrain else MIN_CELLS_PLAIN


def _internal_mudata(X: np.ndarray, Y: np.ndarray, genes, features) -> md.MuData:
    from ..models.sbnn._query import internal_mudata

    return internal_mudata(X, Y, genes, features)


def _check_size(mdata: md.MuData, x: str, y: str | None, genes, bottleneck: int) -> None:
    """The bottleneck against the input genes, the network against memory (nothing read)."""
    from multiviz.models.sbnn._checks import check_sbnn_size

    n_input = int(resolve_var_mask(get_modality(mdata, x, "x"), genes, "genes").sum())
    n_output = mdata.mod[resolve_target(mdata, y, "y")].n_vars
    what = f"input genes of `mdata[{x!r}]`" + ("" if genes is None else " selected by `genes`")
    check_sbnn_size(n_input, n_output, bottleneck, inputs=what, latent_arg="bottleneck")


def fit_sbnn(
    data: PairedArrays,
    *,
    indices: np.ndarray | None = None,
    bottleneck: int = 2,
    n_genes: int = 25,
    lasso: float = 0.1,
    pretrain: bool = True,
    random_state: int = 0,
    enable_progress_bar: bool | None = False,
    **train_kwargs,
):
    """Train an :class:`~multiviz.models.SBNN` on arrays (no user object is touched).

    The arrays are registered once, all cells; the model trains on the rows ``indices``
    (all if ``None``) and gives the latent and predictions of every registered cell.
    """
    from multiviz.models.sbnn._checks import check_sbnn_size

    from ..models.sbnn import SBNN

    check_sbnn_size(data.X.shape[1], data.Y.shape[1], bottleneck, latent_arg="bottleneck")
    inner = _internal_mudata(data.X, data.Y, data.gene_names, data.feature_names)
    SBNN.setup_mudata(inner, x="rna", y="y")
    model = SBNN(inner, n_latent=bottleneck, random_state=random_state)
    model.train(
        n_genes=n_genes,
        lasso=lasso,
        pretrain=pretrain,
        enable_progress_bar=enable_progress_bar,
        indices=indices,
        **train_kwargs,
    )
    return model


def linear_heldout_r2(data: PairedArrays, split: Split, *, rank: int, n_genes: int) -> float:
    """Held-out R² of sRRR (``rank``, ``n_genes``) fitted on the same training cells."""
    res, _ = fit_srrr(training_part(data, split), rank=min(rank, data.Y.shape[1]), n_genes=n_genes)
    mean = data.Y[split.train].mean(axis=0)
    return r2_score(data.Y[split.test], res.predict(data.X[split.test]), train_mean=mean)


def _checked_data(
    mdata, x, y, genes, bottleneck, n_genes, pretrain, copy, train_size, random_state, interval
) -> tuple[PairedArrays, Split]:
    """Container and size checks; the model's arrays and the held-out split of the cells."""
    if not copy:
        check_writable(mdata, "mdata")
    check_unique_names(mdata, "mdata")
    check_prepared(mdata, x, y)
    _check_size(mdata, x, y, genes, bottleneck)
    data = full_arrays(mdata, x=x, y=y, genes=genes)
    check_n_genes(n_genes, data.X.shape[1])
    check_min_obs(data.X.shape[0], min_cells(pretrain), "mdata", "cells")
    split = heldout_split(
        data.X.shape[0], train_size, random_state, min_train=min_cells(pretrain), level=interval
    )
    return data, split


def _fit_and_score(mdata, data, split, interval, fit_kwargs: dict) -> tuple:
    """Fit on the training cells; latents, predictions and held-out scores of all cells.

    ``fit_kwargs`` are :func:`fit_sbnn`'s. Sets the model's preprocessing record and
    prediction interval; warns when the held-out R² is no better than the mean or than
    sRRR on the same cells.
    """
    from ..train import fit_context
    from ._project import paired_preprocessing

    bottleneck, n_genes = fit_kwargs["bottleneck"], fit_kwargs["n_genes"]
    gene_decoder_epochs = fit_kwargs["gene_decoder_epochs"]
    with fit_context(f"sBNN-{bottleneck} ({n_genes} genes)"):
        model = fit_sbnn(data, indices=split.train if split.test.size else None, **fit_kwargs)
        latent = model.get_latent_representation(batch_size=PREDICT_BATCH)
        pred = model.predict(batch_size=PREDICT_BATCH).to_numpy()
        genes_pred = (
            model.predict(batch_size=PREDICT_BATCH, genes=True) if gene_decoder_epochs else None
        )
        model.preprocessing_ = paired_preprocessing(mdata, data)
        scores, model.prediction_interval_ = score_heldout(
            data,
            pred,
            split,
            model=f"sBNN-{bottleneck}",
            interval=interval,
            fix="Try `mv.tl.srrr`, fewer genes (`n_genes`) or `pretrain=False` on few cells.",
            linear=lambda: linear_heldout_r2(data, split, rank=bottleneck, n_genes=n_genes),
        )
    return model, latent, pred, genes_pred, scores


@doc_params(copy=COPY)
def sbnn(
    mdata: md.MuData,
    *,
    x: str = "rna",
    y: str | None = None,
    bottleneck: int = 2,
    n_genes: int = 25,
    lasso: float = 0.1,
    pretrain: bool = True,
    genes=None,
    gene_decoder_epochs: int = 100,
    train_size: float = 0.9,
    interval: float | None = LEVEL,
    random_state: int = 0,
    key_added: str = "sbnn",
    accelerator: str = "auto",
    devices: int | str = "auto",
    enable_progress_bar: bool | None = None,
    return_model: bool = False,
    copy: bool = False,
    **train_kwargs,
):
    """Sparse bottleneck neural network (Bernaerts, Berens & Kobak; sBNN paper).

    Predicts the target modality ``y`` from the genes of ``x`` through a ``bottleneck``
    -dimensional linear bottleneck, selecting ``n_genes`` genes with a group lasso on
    the first layer, with the paper's full training schedule (see
    :meth:`multiviz.models.SBNN.train`). Inputs are the modalities' ``.X`` (z-scored
    after :func:`multiviz.pp.prepare_paired`).

    Parameters
    ----------
    mdata
        Paired MuData.
    x, y
        Gene modality and target modality (default ``"ephys"``, else ``"protein"``).
    bottleneck
        Bottleneck width; 2 (sBNN-2) or 64 (sBNN-64) in the paper; at most the number of
        input genes.
    n_genes
        Genes kept after pruning (25 in the paper).
    lasso
        Group-lasso strength (0.1, the paper's model).
    pretrain
        k-means classification pre-training + freezing (paper's default model).
    genes
        Restrict the input genes: a boolean ``var`` column, boolean mask or list of
        names (e.g. ion-channel genes, GO:0005216, as in the paper's Fig. S5).
    gene_decoder_epochs
        Epochs of the bottleneck → selected-genes decoder used for gene overlays
        (the paper's "autoencoder" head; its length is not given in the paper); 0 skips it.
    train_size
        Fraction of the cells the network is trained on (0.9, as scvi-tools' models); the
        rest are held out and scored: ``r2_heldout``, and sRRR of rank ``bottleneck`` with
        the same ``n_genes`` fitted on the same training cells, ``r2_heldout_linear``.
        A warning (:class:`~multiviz.FitQualityWarning`) says when the held-out R² does not
        beat the mean predictor or sRRR. ``1.0`` trains on every cell (no held-out numbers).
    interval
        Coverage of the prediction intervals (0.9): split conformal from the held-out
        cells' residuals (the ``ceil((n + 1) interval)``-th smallest of ``n``), valid for
        new cells like the training ones without assumptions on the model or noise. Needs
        at least ``interval / (1 - interval)`` held-out cells (9 for 0.9). On small data
        the held-out count moves to the nearest one at which that rank covers ``interval``
        to within one percentage point (16 cells would cover 94 %, 19 cover 90 %; logged,
        and ``n_heldout`` in ``uns`` says how many); ``None`` skips the intervals.
    random_state
        Seed (weights, k-means, the held-out cells, hold-out split, shuffling), in
        ``[0, 2**32 - 1]``.
    key_added
        Prefix of every key written.
    accelerator, devices, enable_progress_bar
        Passed to :meth:`~multiviz.models.SBNN.train` (progress bar: ``None`` = on when
        ``mv.settings.verbosity >= 2``; it shows the phase).
    return_model
        Also return the trained :class:`~multiviz.models.SBNN` (it can map new cells:
        :func:`multiviz.tl.project`).
    {copy}
    **train_kwargs
        Further arguments of :meth:`~multiviz.models.SBNN.train`: the phase lengths
        (``pretrain_epochs``, ``frozen_epochs``, ``unfrozen_epochs``,
        ``no_pretrain_epochs``, ``pruned_epochs``), ``lr``, ``lr_finetune``, ``ridge``,
        ``batch_size``, ``val_fraction``, ``handover`` and the shared training vocabulary
        (``max_epochs`` scales the schedule; ``early_stopping`` is not supported).
        Unknown names are an error.

    Returns
    -------
    ``None`` (or the copy / model). Writes

    - ``mdata.obsm[f"X_{key_added}"]`` and ``mdata[x].obsm[f"X_{key_added}"]``: bottleneck;
    - ``mdata[x].var[f"{key_added}_selected"]`` and ``[f"{key_added}_weight_norm"]``
      (first-layer row norms just before pruning; 0 for genes outside ``genes``);
    - ``mdata[y].layers[f"{key_added}_pred"]``: predicted targets (z-scores), and
      ``[f"{key_added}_pred_lower"]`` / ``[f"{key_added}_pred_upper"]``: the bounds of the
      ``interval`` prediction interval (see ``interval``);
    - ``mdata[x].obsm[f"{key_added}_genes_pred"]``: DataFrame of the decoder's
      reconstruction of the selected genes (if ``gene_decoder_epochs`` > 0);
    - ``mdata.uns[key_added]``: ``params``, ``history`` (per-epoch, per-phase),
      ``selected_genes`` (by decreasing weight norm), ``r2_train`` and
      ``r2_train_per_feature`` (paper eq. 3/4, on the training cells), ``r2_heldout``,
      ``r2_heldout_per_feature``, ``r2_heldout_linear`` and ``n_heldout`` (on the held-out
      cells, with the training mean; see ``train_size``), ``heldout_cells`` (their names),
      ``pretrain_val_cross_entropy`` (per pre-training epoch, on the 40 % hold-out),
      ``features_dropped`` (constant targets) and ``prediction_interval`` (``level``,
      ``method``, ``n_calibration``, per-feature ``halfwidth`` in z-score units; the model
      keeps it as ``prediction_interval_`` for :func:`multiviz.tl.project`).

    Raises
    ------
    InputError
        Invalid arguments or unprocessed input (raw counts, targets not z-scored: run
        :func:`multiviz.pp.prepare_paired` first), before any work.
    FitError
        The fit diverged or ended far below the mean predictor; nothing is written.

    Notes
    -----
    The held-out R² is one split: on a few hundred cells it varies by a few hundredths
    between seeds; :func:`multiviz.tl.cross_validate` averages 10 folds (and fits the
    preprocessing inside each fold, which this split does not). A default fit took 24 s of
    CPU time on M1 (1,213 cells, 1,000 genes; one thread,
    ``benchmarks/results/quickstart_timings.json``), longer on a loaded machine. Constant target
    features are dropped with a warning (their R² is undefined); their predictions are
    their constant z-score, 0.

    Examples
    --------
    >>> mv.pp.prepare_paired(mdata, x="rna", y="ephys")
    >>> model = mv.tl.sbnn(mdata, bottleneck=2, n_genes=25, return_model=True)
    >>> mdata.uns["sbnn"]["selected_genes"][:5]
    >>> mv.tl.project(new_mdata, model)  # new cells into the same latent
    """
    from multiviz.models.sbnn._checks import check_extra

    random_state = check_random_state(random_state)
    check_bool(pretrain, "pretrain")
    check_bool(return_model, "return_model")
    check_bool(copy, "copy")
    bottleneck = check_int(bottleneck, "bottleneck", minimum=1)
    gene_decoder_epochs = check_int(gene_decoder_epochs, "gene_decoder_epochs", minimum=0)
    check_str(key_added, "key_added")
    interval = check_level(interval)
    check_extra(train_kwargs, "mv.tl.sbnn")
    data, split = _checked_data(
        mdata, x, y, genes, bottleneck, n_genes, pretrain, copy, train_size, random_state, interval
    )
    model, latent, pred, genes_pred, scores = _fit_and_score(
        mdata,
        data,
        split,
        interval,
        fit_kwargs={
            "bottleneck": bottleneck,
            "n_genes": n_genes,
            "lasso": lasso,
            "pretrain": pretrain,
            "random_state": random_state,
            "gene_decoder_epochs": gene_decoder_epochs,
            "accelerator": accelerator,
            "devices": devices,
            "enable_progress_bar": enable_progress_bar,
            **train_kwargs,
        },
    )
    pred_all = data.full_predictions(pred).astype(np.float32)

    # ---- everything computed; now write
    if copy:
        mdata = mdata.copy()
    params = {
        "bottleneck": int(bottleneck),
        "n_genes": int(n_genes),
        "lasso": float(lasso),
        "pretrain": bool(pretrain),
        "genes": "all" if genes is None else (genes if isinstance(genes, str) else "custom"),
        "n_input_genes": int(data.X.shape[1]),
        "gene_decoder_epochs": int(gene_decoder_epochs),
        "random_state": random_state,
        **{k: v for k, v in train_kwargs.items() if isinstance(v, int | float | str | bool)},
    }
    sel_names = write_sbnn(
        mdata, data, model, latent, pred, pred_all, genes_pred, key_added, params, scores, split
    )
    logg.info(
        "    sBNN-%d: %strain R² %.3f, selected %s",
        bottleneck,
        describe(scores),
        mdata.uns[key_added]["r2_train"],
        ", ".join(sel_names[:10]),
    )
    if copy:
        return (mdata, model) if return_model else mdata
    return model if return_model else None
