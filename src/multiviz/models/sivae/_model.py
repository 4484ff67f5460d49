"""``mv.models.SIVAE``: the AnnData-facing siVAE model (scvi-tools base classes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from anndata import AnnData
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager
from scvi.data.fields import (
    CategoricalJointObsField,
    CategoricalObsField,
    LayerField,
    NumericalJointObsField,
)
from scvi.model.base import BaseModelClass, UnsupervisedTrainingMixin

from multiviz import _logging as logg
from multiviz._validate import InputError, check_int, check_option

from ._checks import (
    DEFAULT_GAMMA,
    DESIGNS,
    PAPER_GAMMA,
    check_hidden,
    check_input_and_split_args,
    check_registered,
    check_sivae_size,
    check_train_args,
    design_defaults,
)
from ._convergence import convergence_plan
from ._init_steps import SIVAEInitMixin
from ._module import SIVAEModule
from ._outputs import SIVAEOutputsMixin
from ._plan import SIVAETrainingPlan
from ._schedule import resolve_epochs
from ._sizes import n_training_cells

#: Genes above which the feature branch is gene-minibatched by default (see ``gene_batch_size``).
AUTO_GENE_BATCH_THRESHOLD = 2048
AUTO_GENE_BATCH_SIZE = 1024

__all__ = ["DEFAULT_GAMMA", "DESIGNS", "PAPER_GAMMA", "SIVAE", "design_defaults"]


class SIVAE(SIVAEInitMixin, SIVAEOutputsMixin, UnsupervisedTrainingMixin, BaseModelClass):
    """Scalable, interpretable VAE (siVAE; Choi & Quon, Genome Biology 24:29, 2023).

    A cell-wise VAE and a feature-wise VAE whose decoders meet in the output layer, so
    that the feature embeddings (*loadings*, genes x ``n_latent``) explain the cell
    embeddings (*scores*) the way PCA loadings explain PCA scores.

    Parameters
    ----------
    adata
        AnnData registered with :meth:`setup_anndata`. For ``likelihood="gaussian"`` the
        registered matrix should be centred and scaled per gene (paper Methods: "centered
        and scaled across all cells"), e.g. z-scored log-normalised expression; for
        ``"nb"`` it must hold raw counts.
    n_latent
        Size of both embedding spaces. The paper uses 2 for visualisation and clustering
        and 64 for gene-network analyses. At most the number of genes.
    n_hidden
        Encoder hidden sizes; the decoders mirror them and the feature side is identical
        (paper: 1024-512-128 for genomic data). The networks must fit in the available
        memory (checked before they are built).
    likelihood
        ``"gaussian"`` (paper eq. 8) or ``"nb"`` (siVAE (NB), eqs. 14-18; raw counts).
    linear
        siVAE (linear), eq. 19: the decoder mean is ``v_{f,1} · z_{c,1}``.
    design
        ``"map_first"`` (default): learn the map first, then explain it. Step 1 trains the
        cell VAE to convergence; steps 2 and 3 keep its encoder fixed and fit the feature
        branch with the interpretability term at weight ``gamma`` (and the cell decoder,
        which reads its output weights from the feature branch), so the loadings become
        the least-squares description of a map that stays non-linear. ``"joint"``: the
        paper's single-stage model (step 3 trains everything jointly, the paper's γ 0.05
        and per-cell variance by default), whose interpretability term pulls the map
        toward PCA as it takes hold. Measured on every labelled dataset of the project in
        ``benchmarks/results/sivae_quality.json``.
    gamma
        Weight of the interpretability term, eq. 13, applied as ``gamma * SSE`` as in the
        reference implementation (``0`` switches it off: Table 1's "siVAE (γ = 0)").
        ``None``: ``DEFAULT_GAMMA`` (1.0) for ``"map_first"``, the paper's 0.05
        (``PAPER_GAMMA``) for ``"joint"``.
    variance
        Gaussian likelihood: ``"gene"``, one learned variance per gene, or ``"cell"``, one
        per cell from ``z_{c,L}`` (paper eq. 8). ``None``: ``"gene"`` for ``"map_first"``
        (noise genes are down-weighted rather than shaping the map), ``"cell"`` for
        ``"joint"``.
    interp_pretrain
        Also apply the interpretability term in step 2, with the cell scores fixed at
        their step-1 posteriors (a multiviz addition; the paper applies the term in step 3
        only). ``None``: on for ``"map_first"``, off for ``"joint"``.
    feature_input
        Input of the feature-wise encoder, built from training cells only (paper Methods,
        "Reducing dimensionality of the input data"): ``"pca"`` (PCA of Xᵀ without
        whitening; all scores divided by the SD of the first component), ``"downsample"`` (cells sampled keeping the
        cell-type ratios of ``labels_key``) or ``"full"`` (every training cell).
    n_feature_input
        ``C_red``, the number of PCA components or downsampled cells (the paper does not fix
        it). ``None`` (default): 256, or fewer where the data allow fewer. At most training
        cells - 1 and genes - 1 for ``"pca"`` and the training cells for ``"downsample"``; a
        larger value is an :class:`~multiviz.InputError`. Unused with ``"full"``.
    gene_batch_size
        Genes per step in the feature branch during joint training. ``"auto"`` uses all
        genes up to 2048 genes and 1024-gene minibatches above; genes not in the minibatch
        use a cached ``v_{f,L}`` from their last update. ``None`` always uses all genes.
    train_size
        Fraction of cells used for training (the rest is the validation set). Fixed at
        construction because the feature-wise input is built from training cells only.
    dropout_rate
        Dropout in hidden layers.
    random_state
        Seed for the split, the feature input, the initial weights and the minibatches,
        in ``[0, 2**32 - 1]``.
    """

    _module_cls = SIVAEModule
    _training_plan_cls = SIVAETrainingPlan

    def __init__(
        self,
        adata: AnnData,
        n_latent: int = 2,
        n_hidden: Sequence[int] = (1024, 512, 128),
        likelihood: Literal["gaussian", "nb"] = "gaussian",
        linear: bool = False,
        design: Literal["map_first", "joint"] = "map_first",
        gamma: float | None = None,
        variance: Literal["gene", "cell"] | None = None,
        interp_pretrain: bool | None = None,
        feature_input: Literal["pca", "downsample", "full"] = "pca",
        n_feature_input: int | None = None,
        gene_batch_size: int | Literal["auto"] | None = "auto",
        train_size: float = 0.9,
        dropout_rate: float = 0.0,
        random_state: int = 0,
    ):
        n_latent, n_hidden = check_int(n_latent, "n_latent"), check_hidden(n_hidden)
        check_option(likelihood, ["gaussian", "nb"], "likelihood")
        gamma, variance, interp_pretrain = design_defaults(design, gamma, variance, interp_pretrain)
        n_feature_input, random_state, train_size, dropout_rate = check_input_and_split_args(
            feature_input, n_feature_input, random_state, train_size, dropout_rate, linear
        )
        map_first = design == "map_first"
        super().__init__(adata)
        n_obs, n_vars = self.summary_stats.n_cells, self.summary_stats.n_vars
        n_batch, n_cats, n_cont = self._covariate_sizes()
        n_latent, n_hidden, c_red = check_sivae_size(  # before anything is read or built
            n_obs,
            n_vars,
            n_latent,
            n_hidden,
            feature_input=feature_input,
            n_feature_input=n_feature_input,
            train_size=train_size,
            linear=linear,
            n_cov=(n_batch if n_batch > 1 else 0) + sum(n_cats or []) + n_cont,
        )
        x = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        check_registered(x, likelihood)  # block by block on a backed AnnData
        self._train_idx, self._val_idx = _split_cells(n_obs, train_size, random_state)
        gbs = _gene_batch(gene_batch_size, n_vars)

        torch.manual_seed(random_state)
        self.module = self._module_cls(
            n_input=n_vars,
            n_feature_input=c_red,
            n_batch=n_batch,
            n_continuous_cov=n_cont,
            n_cats_per_cov=n_cats,
            n_latent=n_latent,
            n_hidden=tuple(n_hidden),
            likelihood=likelihood,
            linear=linear,
            gamma=gamma,
            interp_pretrain=interp_pretrain,
            dropout_rate=dropout_rate,
            variance=variance,
            freeze_encoder_joint=map_first,
        )
        self.design = design
        self.steps_: dict[str, dict] = {}
        self.phase_history_: dict[str, dict[str, np.ndarray]] | None = None
        self.joint_batch_size_: int | None = None
        self.module.gene_batch_size = gbs
        self._feature_input_kind = feature_input
        self._random_state = random_state
        self._model_summary_string = (
            f"siVAE: n_latent={n_latent}, hidden={tuple(n_hidden)}, likelihood={likelihood}, "
            f"linear={linear}, design={design}, gamma={gamma}, variance={variance}, feature_input={feature_input}({c_red})"
        )
        self.init_params_ = self._get_init_params(locals())

    def _covariate_sizes(self) -> tuple[int, list[int] | None, int]:
        """Registered covariates: ``(n_batch, categories per categorical covariate, n_continuous)``."""
        n_cats = (
            self.adata_manager.get_state_registry(REGISTRY_KEYS.CAT_COVS_KEY).n_cats_per_key
            if REGISTRY_KEYS.CAT_COVS_KEY in self.adata_manager.data_registry
            else None
        )
        n_batch = self.summary_stats.n_batch
        n_cont = self.summary_stats.get("n_extra_continuous_covs", 0)
        return n_batch, n_cats, n_cont

    # -- registration -------------------------------------------------------------------------
    @classmethod
    def setup_anndata(
        cls,
        adata: AnnData,
        layer: str | None = None,
        batch_key: str | None = None,
        labels_key: str | None = None,
        categorical_covariate_keys: list[str] | None = None,
        continuous_covariate_keys: list[str] | None = None,
        **kwargs,
    ):
        """Register ``adata`` for siVAE.

        Parameters
        ----------
        adata
            Cells x genes. Sparse matrices stay sparse; minibatches are densified.
        layer
            Layer with the modelled values (``None``: ``X``).
        batch_key
            ``obs`` column of the batch (one-hot ``s_c`` of published eqs. 21-23).
        labels_key
            ``obs`` column of cell types, used to stratify ``feature_input="downsample"``.
        categorical_covariate_keys, continuous_covariate_keys
            Further covariates appended to ``s_c``.
        **kwargs
            Passed to :meth:`scvi.data.AnnDataManager.register_fields`.
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        fields = [
            LayerField(REGISTRY_KEYS.X_KEY, layer, is_count_data=False),
            CategoricalObsField(REGISTRY_KEYS.BATCH_KEY, batch_key),
            CategoricalObsField(REGISTRY_KEYS.LABELS_KEY, labels_key),
            CategoricalJointObsField(REGISTRY_KEYS.CAT_COVS_KEY, categorical_covariate_keys),
            NumericalJointObsField(REGISTRY_KEYS.CONT_COVS_KEY, continuous_covariate_keys),
        ]
        manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        manager.register_fields(adata, **kwargs)
        cls.register_manager(manager)

    def _resolve_epochs(
        self,
        max_epochs: int | None,
        pretrain_epochs: int | None,
        feature_epochs: int | None,
        batch_sizes: tuple[int, int, int],
    ) -> tuple[int, int, int]:
        """Epochs of steps 1, 2 and 3, validated (negative or all-zero schedules rejected).

        ``max_epochs=None`` takes every step not set explicitly from
        :func:`~multiviz.models.sivae._schedule.default_schedule` (logged at INFO).
        """
        e1, e2, n_epochs = resolve_epochs(
            max_epochs,
            pretrain_epochs,
            feature_epochs,
            n_train=len(self._train_idx),
            n_genes=self.module.n_input,
            batch_sizes=batch_sizes,
        )
        if n_epochs > 0 and e1 == 0 and not self.is_trained_:
            raise InputError(
                "`pretrain_epochs=0` on an untrained model: step 3 needs the cell VAE of step 1 "
                "(paper Methods); train step 1 for at least 1 epoch."
            )
        return e1, e2, n_epochs

    def _epochs_by_step(
        self,
        max_epochs: int | None,
        pretrain_epochs: int | None,
        feature_pretrain_epochs: int | None,
        sizes: tuple[int, int, int],
    ) -> tuple[tuple[int, int, int], dict | None]:
        """Epochs of steps 1, 2 and 3, and the convergence plan when no epochs are given.

        Without ``max_epochs``, ``pretrain_epochs`` and ``feature_pretrain_epochs`` every
        step stops by convergence (:func:`~multiviz.models.sivae._convergence.convergence_plan`,
        logged at INFO); otherwise :meth:`_resolve_epochs` and no plan (``None``).
        """
        convergence = None
        if max_epochs is None and pretrain_epochs is None and feature_pretrain_epochs is None:
            convergence = convergence_plan(
                len(self._train_idx),
                self.module.n_input,
                batch_sizes=sizes,
                has_validation=len(self._val_idx) > 0,
            )
            e1, e2, n_epochs = (convergence[s]["max_epochs"] for s in (1, 2, 3))

            logg.info(
                "    siVAE schedule by convergence: steps 1/2/3 stop when "
                + ", ".join(
                    f"{p['monitor']} stalls {p['patience']} epochs" for p in convergence.values()
                )
                + f" (epochs between {'/'.join(str(p['min_epochs']) for p in convergence.values())}"
                f" and {e1}/{e2}/{n_epochs})"
            )
        else:
            e1, e2, n_epochs = self._resolve_epochs(
                max_epochs, pretrain_epochs, feature_pretrain_epochs, sizes
            )
        return (e1, e2, n_epochs), convergence

    def train(
        self,
        max_epochs: int | None = None,
        *,
        pretrain_epochs: int | None = None,
        feature_pretrain_epochs: int | None = None,
        batch_size: int = 128,
        gene_batch_size_pretrain: int | None = None,
        joint_batch_size: int | None = None,
        lr: float = 1e-3,
        weight_decay: float = 1e-6,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        enable_progress_bar: bool | None = None,
        early_stopping: bool = False,
        precision: str | int | None = None,
        strategy: str | None = None,
        plan_kwargs: dict | None = None,
        datasplitter_kwargs: dict | None = None,
        **trainer_kwargs,
    ):
        """Three-step training (paper Methods, "Training procedure for siVAE").

        Parameters
        ----------
        max_epochs
            Epochs of each step: the schedule is three steps of equal length unless
            ``pretrain_epochs`` / ``feature_pretrain_epochs`` set steps 1 and 2 (step 3,
            joint training, always runs ``max_epochs``). ``None`` (default): a length per
            step from the data size,
            :func:`~multiviz.models.sivae._schedule.default_schedule`: 10 epochs, bounded
            to the draws of 2,000-10,000 steps at 128 cells (step 1) or 32 genes (step 2) per
            step, the reference code's 2,000 steps being the minimum, and 64,000 to 1.28 M cell draws
            for step 3 at ``joint_batch_size`` (125-2,500 steps of 512 cells); on 4,500
            cells x 2,000 genes that is 56 / 32 / 14 epochs (2,016 / 512 / 126 steps at the
            map-first design's 128 genes per step-2 step). The paper states no epoch counts.
        pretrain_epochs
            Epochs of step 1 (cell VAE with a free last layer); ``None``: ``max_epochs``
            (or the default schedule's); ``0`` skips it (only on a model already trained).
        feature_pretrain_epochs
            Epochs (over genes) of step 2; ``None``: ``max_epochs`` (or the default
            schedule's); ``0`` skips it.
        batch_size
            Cells per minibatch (step 1, and step 3 when ``max_epochs`` is given).
        gene_batch_size_pretrain
            Genes per minibatch in step 2. ``None`` (default): 128 with
            ``design="map_first"``
            (:data:`~multiviz.models.sivae._schedule.FEATURE_BATCH`: the same epochs over
            genes in a quarter of the steps, measured faster and with loadings closer to the
            least-squares description of the map) and the reference code's 32
            (:data:`~multiviz.models.sivae._schedule.GENE_BATCH`) with ``design="joint"``.
        joint_batch_size
            Cells per minibatch in step 3. ``None``: ``batch_size`` when ``max_epochs`` is
            given (so an explicit schedule trains exactly as before), and 512
            (:data:`~multiviz.models.sivae._schedule.JOINT_BATCH`) in the default schedule:
            the feature branch runs over every gene once per step, so larger cell
            minibatches spread it (a joint epoch of 4,500 cells x 2,000 genes cost 11.3 s of
            CPU at 128 cells per step and 4.4 s at 512).
        lr, weight_decay
            Adam settings (paper: Adam, learning rate chosen from 1e-4, 1e-3, 1e-2).
        accelerator, devices, precision, strategy
            Lightning settings, e.g. ``accelerator="gpu"``; ``strategy="ddp"`` with
            ``devices=2`` trains in two processes (Lightning's DDP: every process takes its
            own minibatches of ``batch_size`` cells, so halve the batch sizes to keep the
            single-process optimisation; the feature-wise input and the interpretability
            starts are computed identically on every rank and the gene cache is a buffer
            DDP broadcasts from rank 0 before every step). Spawning strategies
            (``"ddp_spawn"``) are refused. ``precision``: ``None`` (float32, default),
            ``"bf16-mixed"`` (bfloat16 autocast, CPU or GPU; weights, optimiser and loss stay
            float32, outputs are float32) or ``"16-mixed"`` (float16 autocast with gradient
            scaling, GPU only); other values raise :class:`~multiviz.InputError`.
        enable_progress_bar
            scvi-tools' progress bar, naming the step; ``None`` follows
            ``mv.settings.verbosity``.
        early_stopping
            Stop steps 1 and 3 when the validation loss stops improving (scvi-tools'
            patience, 45 epochs); step 2 has no validation set and runs in full. Needs
            ``train_size < 1``.
        plan_kwargs
            Extra ``SIVAETrainingPlan`` (``multiviz.models.sivae._plan``) arguments.
        datasplitter_kwargs
            Extra :class:`scvi.dataloaders.DataSplitter` arguments.
        **trainer_kwargs
            Further :class:`scvi.train.Trainer` arguments (e.g. ``callbacks``).

        Raises
        ------
        multiviz.FitError
            The fit diverged (a non-finite loss); the weights are then those of a failed
            fit, so build a new model with a lower ``lr``.
        """
        from multiviz.train import fit_context, resolve_progress_bar

        precision, batch_size, gene_batch_size_pretrain, joint_batch_size, lr, weight_decay = (
            check_train_args(
                max_epochs=max_epochs,
                batch_size=batch_size,
                gene_batch_size_pretrain=gene_batch_size_pretrain,
                joint_batch_size=joint_batch_size,
                lr=lr,
                weight_decay=weight_decay,
                accelerator=accelerator,
                devices=devices,
                early_stopping=early_stopping,
                precision=precision,
                strategy=strategy,
                n_val=len(self._val_idx),
                design=self.design,
            )
        )
        sizes = (batch_size, gene_batch_size_pretrain, joint_batch_size)
        (e1, e2, n_epochs), convergence = self._epochs_by_step(
            max_epochs, pretrain_epochs, feature_pretrain_epochs, sizes
        )
        plan_kwargs = {"lr": lr, "weight_decay": weight_decay, **(plan_kwargs or {})}
        trainer_kwargs["enable_progress_bar"] = resolve_progress_bar(enable_progress_bar)
        trainer_kwargs.setdefault("enable_model_summary", False)
        if precision is not None:
            trainer_kwargs["precision"] = precision
        if strategy is not None:
            trainer_kwargs["strategy"] = strategy
        self.epochs_per_phase_ = {"cell_pretrain": e1, "feature_pretrain": e2, "joint": n_epochs}
        self.joint_batch_size_ = joint_batch_size
        self.gene_batch_size_pretrain_ = gene_batch_size_pretrain
        with fit_context("siVAE"):
            torch.manual_seed(self._random_state)
            self._prepare_feature_side(build_input=e2 > 0 or n_epochs > 0)
            self._run_phases(
                (e1, e2, n_epochs),
                batch_size=batch_size,
                gene_batch_size_pretrain=gene_batch_size_pretrain,
                joint_batch_size=joint_batch_size,
                accelerator=accelerator,
                devices=devices,
                early_stopping=early_stopping,
                plan_kwargs=plan_kwargs,
                datasplitter_kwargs=datasplitter_kwargs or {},
                trainer_kwargs=trainer_kwargs,
                convergence=convergence,
            )


def _split_cells(n_obs: int, train_size: float, random_state: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted training and validation cell indices of the seeded split."""
    rng = np.random.default_rng(random_state)
    perm = rng.permutation(n_obs)
    n_train = n_training_cells(n_obs, train_size)
    return np.sort(perm[:n_train]), np.sort(perm[n_train:])


def _gene_batch(gene_batch_size: int | str | None, n_vars: int) -> int | None:
    """Genes per feature-branch step in joint training (``None``: all genes)."""
    if gene_batch_size == "auto":
        return None if n_vars <= AUTO_GENE_BATCH_THRESHOLD else AUTO_GENE_BATCH_SIZE
    if gene_batch_size is None:
        return None
    gbs = check_int(gene_batch_size, "gene_batch_size")
    return None if gbs >= n_vars else gbs
