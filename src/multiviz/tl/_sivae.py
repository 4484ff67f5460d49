"""``mv.tl.sivae``: scores, gene loadings and gene centrality from siVAE."""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any, Literal

from anndata import AnnData

from multiviz._validate import InputError, check_kwargs
from multiviz.models.sivae._checks import check_hidden

from . import _sivae_checks as chk

__all__ = ["sivae"]

#: Extra keyword arguments ``mv.tl.sivae`` passes to the Lightning trainer.
EXTRA_TRAINER_KWARGS = ("callbacks",)


def sivae(
    adata: AnnData,
    *,
    n_latent: int = 2,
    design: Literal["map_first", "joint"] = "map_first",
    gamma: float | None = None,
    variance: Literal["gene", "cell"] | None = None,
    interp_pretrain: bool | None = None,
    layer: str | None = None,
    likelihood: Literal["gaussian", "nb"] = "gaussian",
    linear: bool = False,
    batch_key: str | None = None,
    labels_key: str | None = None,
    categorical_covariate_keys: Sequence[str] | None = None,
    continuous_covariate_keys: Sequence[str] | None = None,
    n_hidden: Sequence[int] = (1024, 512, 128),
    feature_input: Literal["pca", "downsample", "full"] = "pca",
    n_feature_input: int | None = None,
    gene_batch_size: int | Literal["auto"] | None = "auto",
    max_epochs: int | None = None,
    pretrain_epochs: int | None = None,
    feature_pretrain_epochs: int | None = None,
    batch_size: int = 128,
    joint_batch_size: int | None = None,
    gene_batch_size_pretrain: int | None = None,
    lr: float = 1e-3,
    weight_decay: float = 1e-6,
    dropout_rate: float = 0.0,
    train_size: float = 0.9,
    accelerator: str = "auto",
    devices: int | list[int] | str = "auto",
    enable_progress_bar: bool | None = None,
    early_stopping: bool = False,
    precision: str | int | None = None,
    strategy: str | None = None,
    random_state: int = 0,
    key_added: str = "sivae",
    return_model: bool = False,
    copy: bool = False,
    **kwargs,
):
    """Fit siVAE and store its cell scores, gene loadings and gene centrality.

    siVAE (Choi & Quon, Genome Biology 24:29, 2023) is a VAE whose gene embeddings
    (loadings) explain its cell embeddings (scores) as PCA loadings explain PCA scores.

    Parameters
    ----------
    adata
        Cells x genes. For ``likelihood="gaussian"`` the values should be centred and
        scaled per gene (paper Methods), e.g. z-scored log-normalised counts (such as
        ``mdata["rna"].X`` after ``mv.pp.prepare_paired``); for ``"nb"`` raw counts.
        A view is accepted only with ``copy=True``. A backed AnnData (``backed="r"``) works
        without ``copy``: the checks read it in row blocks and training streams it from
        disk; results are written into its (in-memory) obsm/varm/var/uns.
    n_latent
        Size of the cell and gene embeddings: 2 for pictures, 64 for network analyses
        (paper Methods); at most the number of genes.
    design
        ``"map_first"`` (default): the cell VAE learns the map to convergence, then the
        loadings are fitted to it with the encoder fixed, so the map stays non-linear and
        the loadings are its best linear description. ``"joint"``: the paper's single-stage
        model (joint step 3 at γ 0.05, per-cell variance). See
        :class:`multiviz.models.SIVAE`; measured in ``benchmarks/results/sivae_quality.json``.
    gamma
        Weight of the interpretability term, ``gamma * SSE`` as in the reference code.
        ``None``: 1.0 for ``"map_first"`` (full weight: with the encoder fixed it cannot
        pull the map toward PCA), the paper's 0.05 for ``"joint"``.
    variance
        Gaussian likelihood: one learned variance per ``"gene"`` or per ``"cell"`` (paper
        eq. 8). ``None``: ``"gene"`` for ``"map_first"`` (noise genes do not shape the map),
        ``"cell"`` for ``"joint"``. On a 500-cell hub simulation (8-d) the per-cell variance
        ranked all five planted hubs first and the per-gene one four
        (``tests/test_centrality_pvalues.py``); for gene networks on small data,
        ``variance="cell"`` is the safer choice.
    interp_pretrain
        Apply the interpretability term in step 2 too (``None``: on for ``"map_first"``;
        see :class:`~multiviz.models.SIVAE`).
    layer
        Layer to model (``None``: ``X``).
    likelihood
        ``"gaussian"`` or ``"nb"`` (siVAE (NB), raw counts).
    linear
        siVAE (linear), paper eq. 19.
    batch_key, categorical_covariate_keys, continuous_covariate_keys
        Covariates removed from the embedding (published eqs. 21-23). Missing values are
        rejected (categorical: NaN labels; continuous: NaN/inf) with their count.
    labels_key
        Cell types, used to stratify ``feature_input="downsample"``.
    n_hidden
        Encoder hidden sizes, decoders mirrored (paper: 1024-512-128). The networks must
        fit in the available memory (checked before anything is copied or built).
    feature_input, n_feature_input, gene_batch_size
        Reduction of the feature-wise input and gene minibatching; see
        :class:`multiviz.models.SIVAE`. ``n_feature_input=None`` (default): 256, or fewer
        where the data allow fewer; an explicit value above what they allow is an error.
    max_epochs, pretrain_epochs, feature_pretrain_epochs
        Epochs of the three steps: ``max_epochs`` sets all three (the schedule has equal
        steps) unless the step-1 / step-2 arguments are given; see
        :meth:`multiviz.models.SIVAE.train`. Step 3 needs at least one epoch. ``None``
        (default): a length per step from the data size (10 epochs, at least the
        reference code's 2,000 steps and at most 10,000 steps at 128 cells per step;
        logged at INFO), see :func:`multiviz.models.sivae._schedule.default_schedule`.
    batch_size, lr, weight_decay, dropout_rate
        Cells per minibatch and Adam / regularisation settings.
    joint_batch_size
        Cells per minibatch in step 3; ``None``: 512 in the default schedule (the feature
        branch runs over every gene once per step, so larger minibatches spread it),
        ``batch_size`` when ``max_epochs`` is given.
    gene_batch_size_pretrain
        Genes per minibatch in step 2 (the feature VAE); ``None``: 128 with the map-first
        design, the reference code's 32 with ``design="joint"`` (see
        :meth:`multiviz.models.SIVAE.train`).
    train_size
        Fraction of cells used for training (the rest validates).
    accelerator, devices, precision, strategy
        Lightning settings (e.g. ``accelerator="gpu"``, ``strategy="ddp"``,
        ``precision="bf16-mixed"``; see :meth:`multiviz.models.SIVAE.train`).
    enable_progress_bar
        scvi-tools' progress bar naming the step; ``None`` follows ``mv.settings.verbosity``.
    early_stopping
        Stop steps 1 and 3 on the validation loss (scvi-tools' patience).
    random_state
        Seed, in ``[0, 2**32 - 1]``.
    key_added
        Prefix of the stored results.
    return_model
        Also return the trained :class:`~multiviz.models.SIVAE` (nothing of it is stored
        in ``uns``; save it with ``model.save(dir)``, reload with
        ``SIVAE.load(dir, adata=adata)``).
    copy
        Return a modified copy instead of writing into ``adata``.
    **kwargs
        ``callbacks``: Lightning callbacks. Any other name is an error.

    Returns
    -------
    ``None``, the copy (``copy=True``), the model (``return_model=True``) or
    ``(copy, model)``. Writes

    * ``obsm[f"X_{key_added}"]``: siVAE scores (posterior means of ``z_{c,1}``);
    * ``varm[f"{key_added}_loadings"]``: siVAE loadings (posterior means of ``v_{f,1}``);
    * ``var[f"{key_added}_centrality"]``: degree centrality, the per-gene reconstruction
      R² (paper: negative reconstruction error; **higher = more central**);
    * ``var[f"{key_added}_used"]``: False for genes constant over cells (e.g. all-zero),
      which have no R²: their centrality and loadings are written as 0 (a warning gives
      their number) and they are left out of the mean R² values;
    * ``uns[key_added]``: ``params``; ``r2_gene`` (mean per-gene R² of the decoder) and
      ``r2_linear`` (of the interpretability reconstruction ``v_{f,1} · z_{c,1}`` plus a
      per-gene intercept), both over all cells and used genes; ``r2_gene_heldout`` and
      ``r2_linear_heldout``, the R² of the same two on the ``n_heldout`` validation cells no
      step trained on (``train_size < 1``), genes pooled (``1 - ΣSSE / ΣSST``: on a few
      cells, nearly constant genes would swamp a mean of per-gene R²); ``r2_pca_heldout``
      (PCA fitted on the training cells, scored alike; a warning says when siVAE's held-out
      R² is below it); ``r2_pca`` (PCA with
      ``n_latent`` components, Gaussian models: a warning says when siVAE does not beat
      it, which signals an unconverged fit); ``history`` (one row per
      epoch with a ``phase`` column and the metrics all steps log) and
      ``history_phases`` (every metric, per step).

    Raises
    ------
    multiviz.InputError
        Invalid arguments or data; nothing is fitted.
    multiviz.FitError
        The fit diverged; ``adata`` is left exactly as it was.

    Under Lightning DDP only global rank 0 writes.

    Examples
    --------
    >>> import multiviz as mv
    >>> adata = mv.datasets.simulate_gene_network(n_cells=500)
    >>> mv.tl.sivae(adata, n_latent=8, n_hidden=(64, 32), max_epochs=20)  # doctest: +SKIP
    >>> mv.tl.gene_centrality(adata, n_top=5)  # doctest: +SKIP
    """
    args = dict(locals())  # the call's arguments by name, before anything else is bound
    from multiviz.train import fit_context

    from ._sivae_steps import (
        fit_outputs,
        is_global_zero,
        params_record,
        registered_work_adata,
        train_model,
        write_results,
    )

    checked = _check_arguments(args)
    work = registered_work_adata(args, checked)
    with fit_context(f"siVAE (n_latent={n_latent}, gamma={checked['opts']['gamma']:g})"):
        model = train_model(work, args, checked)
        outputs = fit_outputs(model, args, checked)
    params = params_record(model, args, checked)
    if not is_global_zero():
        return model if return_model else None
    target = checked["adata"]
    write_results(target, key_added, outputs, params)
    if copy and return_model:
        return target, model
    if copy:
        return target
    return model if return_model else None


#: Arguments of :func:`sivae` that :func:`~multiviz.tl._sivae_checks.check_options` checks.
_OPTIONS = (
    "n_latent",
    "design",
    "gamma",
    "variance",
    "likelihood",
    "linear",
    "interp_pretrain",
    "feature_input",
    "n_feature_input",
    "gene_batch_size",
    "train_size",
    "dropout_rate",
    "random_state",
    "key_added",
    "return_model",
    "copy",
    "early_stopping",
)


def _check_arguments(args: dict[str, Any]) -> dict[str, Any]:
    """Check the call's arguments and data before anything is copied, built or fitted.

    Returns ``adata`` (the copy with ``copy=True``), ``opts``, ``hidden``, ``sched``,
    ``obs_keys``, ``x`` (the modelled matrix) and ``constant`` (genes constant over cells).
    """
    adata, copy = args["adata"], args["copy"]
    named = [p for p in inspect.signature(sivae).parameters if p not in ("adata", "kwargs")]
    check_kwargs(args["kwargs"], [*EXTRA_TRAINER_KWARGS, *named], "mv.tl.sivae")
    opts = chk.check_options(**{k: args[k] for k in _OPTIONS})
    hidden = check_hidden(args["n_hidden"])
    sched = chk.check_schedule(
        args["max_epochs"],
        args["pretrain_epochs"],
        args["feature_pretrain_epochs"],
        args["batch_size"],
        args["lr"],
        args["weight_decay"],
        joint_batch_size=args["joint_batch_size"],
    )
    chk.check_container(adata, copy)
    chk.check_sizes(adata, opts, hidden)  # before the copy and the registration
    if copy:  # work on the copy from here (a view becomes an object of its own)
        adata = adata.copy()
    obs_keys = chk.check_obs_keys(
        adata,
        args["batch_key"],
        args["labels_key"],
        args["categorical_covariate_keys"],
        args["continuous_covariate_keys"],
    )
    x = chk.check_data(adata, args["layer"], args["likelihood"])
    constant = chk.constant_genes(x)
    if constant.all():
        raise InputError(f"`adata`: all {adata.n_vars} genes are constant over cells.")
    chk.warn_constant(constant, args["key_added"])
    return {
        "adata": adata,
        "opts": opts,
        "hidden": hidden,
        "sched": sched,
        "obs_keys": obs_keys,
        "x": x,
        "constant": constant,
    }
