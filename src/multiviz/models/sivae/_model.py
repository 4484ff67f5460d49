"""``mv.models.SIVAE``: the AnnData-facing siVAE model (scvi-tools base classes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
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
from scvi.dataloaders import DataSplitter
from scvi.model._utils import get_max_epochs_heuristic, use_distributed_sampler
from scvi.model.base import BaseModelClass, UnsupervisedTrainingMixin
from scvi.train import TrainRunner

from multiviz import _logging as logg
from multiviz._validate import (
    InputError,
    check_counts,
    check_finite,
    check_option,
    check_positive_int,
    check_random_state,
)

from ._feature_input import build_feature_input, library_log_stats
from ._module import SIVAEModule
from ._plan import GeneDataModule, SIVAETrainingPlan

#: Genes above which the feature branch is gene-minibatched by default (see ``gene_batch_size``).
AUTO_GENE_BATCH_THRESHOLD = 2048
AUTO_GENE_BATCH_SIZE = 1024


class SIVAE(UnsupervisedTrainingMixin, BaseModelClass):
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
        and 64 for gene-network analyses.
    n_hidden
        Encoder hidden sizes; the decoders mirror them and the feature side is identical
        (paper: 1024-512-128 for genomic data).
    likelihood
        ``"gaussian"`` (paper eq. 8) or ``"nb"`` (siVAE (NB), eqs. 14-18; raw counts).
    linear
        siVAE (linear), eq. 19: the decoder mean is ``v_{f,1} · z_{c,1}``.
    gamma
        Weight of the interpretability term, eq. 13 (paper default 0.05; 0 switches it off,
        Table 1's "siVAE (γ = 0)").
    feature_input
        Input of the feature-wise encoder, built from training cells only (paper Methods,
        "Reducing dimensionality of the input data"): ``"pca"`` (PCA of Xᵀ without
        whitening; all scores divided by the SD of the first component), ``"downsample"`` (cells sampled keeping the
        cell-type ratios of ``labels_key``) or ``"full"`` (every training cell).
    n_feature_input
        ``C_red``, the number of PCA components or downsampled cells (multiviz default 256;
        the paper does not fix it).
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
        Seed for the split, the feature input, the initial weights and the minibatches.
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
        gamma: float = 0.05,
        feature_input: Literal["pca", "downsample", "full"] = "pca",
        n_feature_input: int = 256,
        gene_batch_size: int | Literal["auto"] | None = "auto",
        train_size: float = 0.9,
        dropout_rate: float = 0.0,
        random_state: int = 0,
    ):
        super().__init__(adata)
        check_positive_int(n_latent, "n_latent")
        check_option(likelihood, ["gaussian", "nb"], "likelihood")
        check_option(feature_input, ["pca", "downsample", "full"], "feature_input")
        check_positive_int(n_feature_input, "n_feature_input")
        random_state = check_random_state(random_state)
        if not (isinstance(gamma, int | float) and gamma >= 0):
            raise InputError(f"`gamma` must be a non-negative number, got {gamma!r}.")
        if not (0 < float(train_size) <= 1):
            raise InputError(f"`train_size` must be in (0, 1], got {train_size!r}.")
        x = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        if likelihood == "nb":
            check_counts(x, "the registered layer")
        else:
            check_finite(x, "the registered layer")
        n_obs, n_vars = self.summary_stats.n_cells, self.summary_stats.n_vars

        rng = np.random.default_rng(random_state)
        perm = rng.permutation(n_obs)
        n_train = max(1, int(round(float(train_size) * n_obs)))
        self._train_idx = np.sort(perm[:n_train])
        self._val_idx = np.sort(perm[n_train:])
        if feature_input == "pca":
            c_red = min(n_feature_input, n_train - 1, n_vars - 1)
        elif feature_input == "downsample":
            c_red = min(n_feature_input, n_train)
        else:
            c_red = n_train
        if c_red < 1:
            raise InputError("Too few training cells or genes to build the feature-wise input.")
        if gene_batch_size == "auto":
            gbs = None if n_vars <= AUTO_GENE_BATCH_THRESHOLD else AUTO_GENE_BATCH_SIZE
        elif gene_batch_size is None:
            gbs = None
        else:
            gbs = check_positive_int(gene_batch_size, "gene_batch_size")
            gbs = None if gbs >= n_vars else gbs

        n_cats = (
            self.adata_manager.get_state_registry(REGISTRY_KEYS.CAT_COVS_KEY).n_cats_per_key
            if REGISTRY_KEYS.CAT_COVS_KEY in self.adata_manager.data_registry
            else None
        )
        torch.manual_seed(random_state)
        self.module = self._module_cls(
            n_input=n_vars,
            n_feature_input=c_red,
            n_batch=self.summary_stats.n_batch,
            n_continuous_cov=self.summary_stats.get("n_extra_continuous_covs", 0),
            n_cats_per_cov=n_cats,
            n_latent=n_latent,
            n_hidden=tuple(n_hidden),
            likelihood=likelihood,
            linear=linear,
            gamma=float(gamma),
            dropout_rate=dropout_rate,
        )
        self.module.gene_batch_size = gbs
        self._feature_input_kind = feature_input
        self._random_state = random_state
        self._model_summary_string = (
            f"siVAE: n_latent={n_latent}, hidden={tuple(n_hidden)}, likelihood={likelihood}, "
            f"linear={linear}, gamma={gamma}, feature_input={feature_input}({c_red})"
        )
        self.init_params_ = self._get_init_params(locals())

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

    # -- training ---------------------------------------------------------------------------------
    def _prepare_feature_side(self, build_input: bool = True) -> None:
        """Library statistics and (if ``build_input``) the feature-wise input, from training cells only."""
        module = self.module
        x = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        if not bool(module.is_prepared):
            mean, std = library_log_stats(x, self._train_idx)
            module.library_log_mean.fill_(mean)
            module.library_log_std.fill_(std)
            module.n_train_cells.fill_(float(len(self._train_idx)))
        if not build_input or bool(module.is_prepared):
            return
        labels = None
        if REGISTRY_KEYS.LABELS_KEY in self.adata_manager.data_registry:
            labels = np.asarray(
                self.adata_manager.get_from_registry(REGISTRY_KEYS.LABELS_KEY)
            ).ravel()
        with logg.timed(f"building the siVAE feature-wise input ({self._feature_input_kind})"):
            feat = build_feature_input(
                x,
                self._train_idx,
                kind=self._feature_input_kind,
                n_components=module.n_feature_input,
                labels=labels,
                log_normalise=module.likelihood == "nb",
                random_state=self._random_state,
            )
        module.feature_input.copy_(
            torch.as_tensor(feat, dtype=torch.float32, device=module.bias.device)
        )
        module.is_prepared.fill_(True)

    @torch.no_grad()
    def _init_interp_intercepts(self, batch_size: int) -> None:
        """Start the intercepts of the interpretability term at their least-squares values.

        With ``z = 0`` the linear term ``v_{f,1} · z_{c,1} + b'_f + j_f · s_c`` (eq. 23) is an
        affine function of the covariates; its least-squares fit over training cells is the
        natural start, so that the term does not push batch effects into ``z`` while the
        intercepts are still learning.
        """
        m = self.module
        if m.linear or m.gamma == 0:
            return
        a = b = None
        for tensors in self._make_data_loader(
            self.adata, self._train_idx, batch_size=max(batch_size, 1024)
        ):
            inp = m._get_inference_input(tensors)
            x = inp["x"].to(m.bias.device)
            design = torch.ones(x.shape[0], 1, dtype=torch.float64, device=x.device)
            if inp["cov"] is not None:
                design = torch.cat([design, inp["cov"].to(x.device).double()], -1)
            target = m.interp_target(x).double()
            a = design.T @ design if a is None else a + design.T @ design
            b = design.T @ target if b is None else b + design.T @ target
        coef = torch.linalg.pinv(a) @ b
        m.interp_bias.copy_(coef[0].float())
        if m.interp_cov is not None:
            m.interp_cov.weight.copy_(coef[1:].T.float())

    def train(
        self,
        max_epochs: int | None = None,
        *,
        pretrain_epochs: int | None = None,
        feature_pretrain_epochs: int | None = None,
        batch_size: int = 128,
        gene_batch_size_pretrain: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 1e-6,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        plan_kwargs: dict | None = None,
        datasplitter_kwargs: dict | None = None,
        **trainer_kwargs,
    ):
        """Three-step training (paper Methods, "Training procedure for siVAE").

        Parameters
        ----------
        max_epochs
            Epochs of step 3 (joint training). ``None``: scvi-tools' heuristic
            (``min(400, 400 * 20000 / n_cells)``); the paper does not state epoch counts.
        pretrain_epochs
            Epochs of step 1 (cell VAE with a free last layer); ``None``: ``max_epochs``;
            ``0`` skips it (KL weight and ``gamma`` stay as set, unlike the reference code).
        feature_pretrain_epochs
            Epochs (over genes) of step 2; ``None``: ``max_epochs``; ``0`` skips it.
        batch_size
            Cells per minibatch.
        gene_batch_size_pretrain
            Genes per minibatch in step 2.
        lr, weight_decay
            Adam settings (paper: Adam, learning rate chosen from 1e-4, 1e-3, 1e-2).
        accelerator, devices
            Lightning devices, e.g. ``accelerator="gpu"``; with ``strategy="ddp"`` in
            ``trainer_kwargs`` several processes train together.
        plan_kwargs
            Extra ``SIVAETrainingPlan`` (``multiviz.models.sivae._plan``) arguments.
        datasplitter_kwargs
            Extra :class:`scvi.dataloaders.DataSplitter` arguments.
        **trainer_kwargs
            Passed to :class:`scvi.train.Trainer` (``strategy``, ``enable_progress_bar``...).
        """
        n_epochs = (
            max_epochs
            if max_epochs is not None
            else get_max_epochs_heuristic(self.summary_stats.n_cells)
        )
        e1 = n_epochs if pretrain_epochs is None else pretrain_epochs
        e2 = n_epochs if feature_pretrain_epochs is None else feature_pretrain_epochs
        plan_kwargs = {"lr": lr, "weight_decay": weight_decay, **(plan_kwargs or {})}
        trainer_kwargs.setdefault("enable_progress_bar", False)
        trainer_kwargs.setdefault("enable_model_summary", False)
        strategy = trainer_kwargs.get("strategy")
        torch.manual_seed(self._random_state)
        self._prepare_feature_side(build_input=e2 > 0 or n_epochs > 0)
        self.epochs_per_phase_ = {"cell_pretrain": e1, "feature_pretrain": e2, "joint": n_epochs}

        def cell_splitter():
            return DataSplitter(
                self.adata_manager,
                external_indexing=[self._train_idx, self._val_idx, np.array([], dtype=int)],
                batch_size=batch_size,
                distributed_sampler=use_distributed_sampler(strategy),
                **(datasplitter_kwargs or {}),
            )

        phases = [
            (1, e1, cell_splitter),
            (
                2,
                e2,
                lambda: GeneDataModule(
                    self.module.n_input, gene_batch_size_pretrain, self._random_state
                ),
            ),
            (3, n_epochs, cell_splitter),
        ]
        prefixes = {1: "cell_pretrain_", 2: "feature_pretrain_", 3: ""}
        history: dict[str, pd.DataFrame] = {}
        try:
            for phase, epochs, make_data in phases:
                if epochs <= 0:
                    continue
                if phase == 3:
                    self._init_interp_intercepts(batch_size)
                self.module.set_phase(phase)
                plan = self._training_plan_cls(self.module, phase=phase, **plan_kwargs)
                self.is_trained_ = False  # each phase starts its own history
                self.history_ = None
                with logg.timed(f"siVAE step {phase}/3 ({epochs} epochs)"):
                    TrainRunner(
                        self,
                        training_plan=plan,
                        data_splitter=make_data(),
                        max_epochs=epochs,
                        accelerator=accelerator,
                        devices=devices,
                        **trainer_kwargs,
                    )()
                for key, frame in (self.history_ or {}).items():
                    history[prefixes[phase] + key] = frame
        finally:
            self.history_ = history
            self.module.unfreeze()
            self.module.phase = 3 if n_epochs > 0 else 1
            self.module.eval()
        self.train_indices, self.validation_indices = self._train_idx, self._val_idx
        self.is_trained_ = True

    # -- outputs ------------------------------------------------------------------------------------
    def _loader(self, adata, indices=None, batch_size=None):
        adata = self._validate_anndata(adata)
        return self._make_data_loader(adata=adata, indices=indices, batch_size=batch_size or 1024)

    @torch.no_grad()
    def get_latent_representation(
        self,
        adata: AnnData | None = None,
        indices: Sequence[int] | None = None,
        give_mean: bool = True,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """siVAE scores: posterior means (or samples) of ``z_{c,1}``, cells x ``n_latent``."""
        self._check_if_trained(warn=False)
        self.module.eval()
        out = []
        for tensors in self._loader(adata, indices, batch_size):
            inf = self.module.inference(**self.module._get_inference_input(tensors))
            out.append((inf["qz"].loc if give_mean else inf["z"]).cpu())
        return torch.cat(out).numpy()

    @torch.no_grad()
    def get_loadings(self, give_mean: bool = True) -> pd.DataFrame:
        """siVAE loadings: posterior means of ``v_{f,1}``, genes x ``n_latent`` DataFrame."""
        self._check_if_trained(warn=False)
        self.module.eval()
        v1, _ = self.module.full_v_last(use_mean=give_mean)
        if self.module.phase == 1:  # trained without the feature side
            v1 = torch.full_like(v1, float("nan"))
        cols = [f"dim{k + 1}" for k in range(self.module.n_latent)]
        return pd.DataFrame(v1.cpu().numpy(), index=self.adata.var_names.copy(), columns=cols)

    @torch.no_grad()
    def get_gene_r2(
        self, adata: AnnData | None = None, batch_size: int | None = None, linear: bool = False
    ) -> pd.Series:
        """Per-gene reconstruction R² over cells (siVAE degree centrality; higher = more central).

        The paper defines degree centrality as the negative per-gene reconstruction error
        (Methods, "Estimating degree centrality using siVAE"); R² = 1 - SSE/SST is that
        error normalised by each gene's variance. Predictions use posterior-mean scores;
        for ``"nb"`` both sides are log-normalised (``log1p(x / library * 1e4)``).
        ``linear=True`` scores the interpretability reconstruction ``v_{f,1} · z_{c,1}``.
        """
        self._check_if_trained(warn=False)
        m = self.module
        m.eval()
        v1, vl = m.full_v_last(use_mean=True)
        if m.phase == 1:
            vl = m.w_free
        n = 0
        sse = s1 = s2 = None
        for tensors in self._loader(adata, None, batch_size):
            inp = m._get_inference_input(tensors)
            x = inp["x"].to(m.bias.device)
            cov = inp["cov"].to(m.bias.device) if inp["cov"] is not None else None
            z = m.inference(x, cov)["qz"].loc
            target = m.interp_target(x)
            if linear:
                pred = z @ v1.T + m.interp_bias
                if cov is not None and m.interp_cov is not None:
                    pred = pred + m.interp_cov(cov)
            else:
                zl = m.decode_hidden(z, cov)
                eta = zl @ vl.T + m.bias
                if m.linear and cov is not None:
                    eta = eta + m.interp_cov(cov)
                if m.likelihood == "gaussian":
                    pred = eta
                else:
                    pred = torch.log1p(torch.softmax(eta, -1) * 1e4)
            err = ((target - pred) ** 2).sum(0).double()
            sse = err if sse is None else sse + err
            s1 = target.sum(0).double() if s1 is None else s1 + target.sum(0).double()
            s2 = (target**2).sum(0).double() if s2 is None else s2 + (target**2).sum(0).double()
            n += x.shape[0]
        sst = s2 - s1**2 / n
        r2 = 1.0 - sse / sst.clamp_min(1e-12)
        return pd.Series(r2.cpu().numpy(), index=self.adata.var_names.copy(), name="r2")

    def get_gene_centrality(
        self, adata: AnnData | None = None, batch_size: int | None = None
    ) -> pd.Series:
        """Degree centrality per gene (= :meth:`get_gene_r2`; higher = more central)."""
        return self.get_gene_r2(adata, batch_size).rename("centrality")

    @torch.no_grad()
    def sample(
        self, n_cells: int = 1, *, batch: str | None = None, random_state: int = 0
    ) -> np.ndarray:
        """New cells drawn from the generative model (``z ~ N(0, I)``, paper eqs. 4-8 / 14-17).

        Parameters
        ----------
        n_cells
            Number of cells.
        batch
            Batch category to generate (models with ``batch_key``); default the first.
        random_state
            Seed (the global torch RNG state is restored afterwards).

        Returns
        -------
        Dense ``n_cells x n_genes`` array (counts for ``"nb"``).
        """
        check_positive_int(n_cells, "n_cells")
        self._check_if_trained(warn=False)
        m = self.module
        m.eval()
        cov = None
        if m.n_cov:
            if m.n_continuous_cov or m.n_cats_per_cov:
                raise InputError(
                    "sample() supports models with a batch key only (no extra covariates)."
                )
            cats = list(
                self.adata_manager.get_state_registry(REGISTRY_KEYS.BATCH_KEY).categorical_mapping
            )
            code = 0 if batch is None else cats.index(batch) if batch in cats else None
            if code is None:
                raise InputError(
                    f"`batch={batch!r}` is not a batch of this model; choose one of {cats}."
                )
            cov = torch.zeros(n_cells, m.n_batch, device=m.bias.device)
            cov[:, code] = 1.0
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(random_state)
            out = m.sample(n_cells, cov)
        return out.cpu().numpy()
