"""``SBNN``: the sparse bottleneck neural network as a scvi-tools model."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from mudata import MuData
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager, fields
from scvi.model.base import BaseModelClass

from multiviz.models.sbnn._checks import check_sbnn_size, check_zscore

from ..._validate import InputError, check_indices, check_random_state
from . import _plan as plan
from ._data import make_rows
from ._fit import checked_outcome, log_phases, run_phases
from ._inference import SBNNInferenceMixin
from ._module import SBNNModule
from ._plan import SBNNTrainingPlan

Y_KEY = "Y"


class SBNN(SBNNInferenceMixin, BaseModelClass):
    """Sparse bottleneck neural network (Bernaerts, Berens & Kobak, sBNN paper).

    Predicts targets ``y`` (electrophysiological features or proteins) from gene
    expression ``x`` through a low-dimensional linear bottleneck, with a group-lasso
    penalty on the first layer that selects a small set of genes (25 by default),
    pruning, and fine-tuning.

    Parameters
    ----------
    mdata
        MuData registered with :meth:`setup_mudata`.
    n_latent
        Bottleneck width: 2 (sBNN-2, visualisation) or 64 (sBNN-64), as in the paper; at
        most the number of input genes.
    n_hidden
        Encoder hidden widths (512, 128 in the paper); the decoder mirrors them. The
        network must fit in the available memory (checked before it is built).
    n_clusters
        k-means clusters for pre-training (K = 20 in the paper). ``None`` (default): the
        paper's ~55 training cells per cluster, at most 20, so 20 from 1,092 training
        cells up and e.g. 2 for 72 (:func:`~multiviz.models.sbnn._schedule.size_scaled_clusters`).
    random_state
        Seed of the weights, the k-means, the hold-out split and the shuffling, in
        ``[0, 2**32 - 1]``.

    Examples
    --------
    >>> mv.models.SBNN.setup_mudata(mdata, x="rna", y="ephys")
    >>> model = mv.models.SBNN(mdata, n_latent=2)
    >>> model.train()
    >>> z = model.get_latent_representation()
    """

    _module_cls = SBNNModule
    _training_plan_cls = SBNNTrainingPlan
    _max_steps_per_epoch: int | None = None  # benchmarks only: cap each epoch's steps

    def __init__(
        self,
        mdata: MuData,
        n_latent: int = 2,
        n_hidden: tuple[int, int] = (512, 128),
        n_clusters: int | None = None,
        random_state: int = 0,
    ):
        random_state = check_random_state(random_state)
        super().__init__(mdata)
        n_input = self.summary_stats.n_vars
        n_output = self.summary_stats[f"n_{Y_KEY}"]
        n_latent, n_hidden = check_sbnn_size(n_input, n_output, n_latent, n_hidden, n_clusters)
        mean, std = self._zscore_stats()
        self.module = self._module_cls(
            n_input,
            n_output,
            n_latent=n_latent,
            n_hidden=tuple(n_hidden),
            n_clusters=n_clusters,
            seed=random_state,
            input_mean=mean,
            input_std=std,
        )
        self.random_state = random_state
        self.n_clusters = n_clusters
        self.phase_history_: pd.DataFrame | None = None
        self.weight_norms_: np.ndarray | None = None
        self.preprocessing_: dict | None = None
        # split-conformal prediction interval (multiviz.tl._intervals), set by mv.tl.sbnn
        self.prediction_interval_: dict | None = None
        self.r2_train_: float | None = None
        self.train_indices_: np.ndarray | None = None
        self.pretrain_baseline_ce_: float | None = None
        self._model_summary_string = (
            f"SBNN: {n_input} genes -> {n_hidden} -> {n_latent} -> {n_output} targets"
        )
        self.init_params_ = self._get_init_params(locals())

    # ------------------------------------------------------------------ setup
    @classmethod
    def setup_anndata(cls, *args, **kwargs):
        """Not supported: the sBNN needs paired modalities; use :meth:`setup_mudata`."""
        raise NotImplementedError("SBNN needs paired data: use `SBNN.setup_mudata(mdata, ...)`.")

    @classmethod
    def setup_mudata(
        cls,
        mdata: MuData,
        x: str = "rna",
        y: str = "ephys",
        layer: str | None = None,
        y_layer: str | None = None,
        zscore: bool = False,
        **kwargs,
    ):
        """Register the gene modality ``x`` and the target modality ``y``.

        Parameters
        ----------
        mdata
            Paired MuData (same cells in every modality).
        x
            Gene-expression modality (z-scored log expression in ``.X`` after
            :func:`multiviz.pp.prepare_paired`).
        y
            Target modality, e.g. ``"ephys"`` or ``"protein"``.
        layer, y_layer
            Layers to read instead of ``.X``.
        zscore
            Z-score every minibatch of ``x`` with ``mdata[x].var["zscore_mean"]`` and
            ``var["zscore_std"]`` (written by :func:`multiviz.pp.prepare_paired`), kept in
            the model for prediction too. For atlas-size data: train on the sparse
            ``layer="log2norm"`` instead of the dense z-scored ``.X``; the fit is the same.
        **kwargs
            Passed to :meth:`~scvi.data.AnnDataManager.register_fields`.
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        for mod in (x, y):
            if mod not in mdata.mod:
                raise InputError(f"Modality {mod!r} not found; available: {sorted(mdata.mod)}.")
        check_zscore(mdata.mod[x].var, zscore, x)
        mudata_fields = [
            fields.MuDataLayerField(
                REGISTRY_KEYS.X_KEY, layer, mod_key=x, is_count_data=False, mod_required=True
            ),
            fields.MuDataLayerField(
                Y_KEY, y_layer, mod_key=y, is_count_data=False, mod_required=True
            ),
        ]
        manager = AnnDataManager(fields=mudata_fields, setup_method_args=setup_method_args)
        manager.register_fields(mdata, **kwargs)
        cls.register_manager(manager)

    def _zscore_stats(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """``var["zscore_mean"]``/``["zscore_std"]`` of ``x`` when set up with ``zscore=True``."""
        args = self.adata_manager.registry.get("setup_args", {})
        if not args.get("zscore"):
            return None, None
        var = self.adata.mod[args.get("x", "rna")].var
        if "zscore_mean" not in var or "zscore_std" not in var:  # load(): from the saved state
            n = self.summary_stats.n_vars
            return np.zeros(n, np.float32), np.ones(n, np.float32)
        return var["zscore_mean"].to_numpy(np.float32), var["zscore_std"].to_numpy(np.float32)

    # --------------------------------------------------------------- training
    def _dense(self, key: str) -> np.ndarray:
        data = self.adata_manager.get_from_registry(key)
        if sp.issparse(data):
            data = data.toarray()
        return np.asarray(data, dtype=np.float32)

    def _training_data(self, indices: np.ndarray | None, data_on_device: bool | None):
        """The training cells' inputs (a row source; a backed ``X`` stays on disk) and targets."""
        X = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        Y = self._dense(Y_KEY)
        Y = torch.from_numpy(np.ascontiguousarray(Y if indices is None else Y[indices]))
        return make_rows(X, data_on_device, indices), Y

    def train(
        self,
        *,
        pretrain: bool = True,
        pretrain_epochs: int | None = None,
        frozen_epochs: int | None = None,
        unfrozen_epochs: int | None = None,
        no_pretrain_epochs: int | None = None,
        pruned_epochs: int | None = None,
        gene_decoder_epochs: int = 0,
        n_genes: int = plan.N_GENES,
        lasso: float = plan.LASSO,
        lr: float = plan.LR,
        lr_finetune: float = plan.LR_FINETUNE,
        ridge: float = plan.RIDGE,
        batch_size: int = plan.BATCH_SIZE,
        val_fraction: float = plan.VAL_FRACTION,
        handover: str = plan.HANDOVER,
        max_epochs: int | None = None,
        accelerator: str = "auto",
        devices: int | str = "auto",
        enable_progress_bar: bool | None = None,
        early_stopping: bool | None = None,
        precision: int | str | None = None,
        strategy: str | None = None,
        data_on_device: bool | None = None,
        indices: Sequence[int] | None = None,
        **kwargs,
    ) -> None:
        """Run the full sBNN schedule (paper defaults).

        With ``pretrain=True``: 50 epochs of k-means (K = 20 on the targets, 1000
        restarts, clusters of >= 10 cells; :func:`~multiviz.models.sbnn._plan.pretrain_labels`)
        classification pre-training with the group lasso on 60 % of the cells (the other
        40 % give the logged validation cross-entropy) → the last epoch's weights (as the
        reference code) with a fresh regression head → 50 epochs with the bottom two
        layers frozen (lr 1e-4) → 50 epochs all layers (lr 5e-5) → prune to ``n_genes``
        genes with the largest first-layer row norms → 100 epochs without the lasso (lr
        5e-5). Without pre-training: 100 epochs (lr 1e-4), prune, 100 epochs. Adam, batch
        32, a fresh optimiser per phase. About 60-80 s of CPU on M1 (1,213 cells, 1,000
        genes) with one thread.

        The paper's epochs are defined on M1's training folds (1,092 cells: 35 steps per
        epoch). On other sizes each phase keeps the paper's epochs but trains at least
        the paper's optimisation steps (e.g. 1,750 for the 50 pre-training epochs) and
        at most 4x them (:func:`~multiviz.models.sbnn._schedule.size_scaled_epochs`):
        80 cells get ~580 pre-training epochs, 10,000 cells 22. A fit therefore costs
        about the same at any size (up to 4x M1's on large data).

        Parameters
        ----------
        pretrain
            Classification pre-training and freezing (paper's default model).
        pretrain_epochs, frozen_epochs, unfrozen_epochs, no_pretrain_epochs, pruned_epochs
            Phase lengths in epochs; ``None``: the paper's (50, 50, 50, 100, 100) bounded
            in steps for this data size (above). An integer is used as given; 0 skips a
            phase, but some phase before pruning must train.
        gene_decoder_epochs
            Epochs of the bottleneck → selected-genes decoder ("autoencoder" head),
            trained last with everything else frozen; 0 skips it.
        n_genes
            Genes kept at pruning (25 in the paper).
        lasso
            Group-lasso strength, >= 0 (0.1, the paper's model).
        lr, lr_finetune
            Adam learning rates, > 0 (1e-4; 5e-5 after unfreezing and after pruning).
        ridge
            L2 penalty on all weights, >= 0 (1e-10 in the paper, which reports no effect).
        batch_size
            Minibatch size (32).
        val_fraction
            Fraction of the cells held out during pre-training, in [0, 1) (0.4).
        handover
            ``"last"`` (the reference code): the last pre-training epoch starts the
            regression; ``"best"``: the epoch with the lowest validation cross-entropy
            (the paper's text).
        max_epochs
            Scales the phases of the schedule proportionally so they sum to about
            ``max_epochs`` (each phase keeps at least one epoch); ``None`` keeps them.
        accelerator, devices
            Lightning device arguments (``"cpu"``, ``"gpu"``, ...; ``devices`` > 1 needs a
            DDP ``strategy``).
        enable_progress_bar
            Progress bar with the current phase; ``None``: on when
            ``mv.settings.verbosity >= 2``.
        early_stopping
            Not supported (the paper's schedule is fixed); ``True`` is an error.
        precision
            ``None``/``32``: float32. ``"bf16-mixed"``: bfloat16 autocast of the forward
            pass (weights, Adam and the loss stay float32). ``"16-mixed"`` is refused: the
            plan steps its own optimisers, without the loss scaling float16 needs.
        strategy
            ``None``/``"auto"``: one device. ``"ddp"`` (or ``"ddp_find_unused_parameters_true"``)
            with ``devices`` > 1: Lightning's DDP, one Lightning fit per phase and one step
            per minibatch. Every process draws the same shuffled order and takes its share
            of each minibatch of ``batch_size`` cells, so the gradient DDP averages is that
            of the single-process minibatch: the schedule and the result are those of one
            process (to float rounding). Every process computes the same k-means labels
            and hold-out split (seeded). ``"ddp_spawn"``/``"ddp_notebook"`` are refused
            (the trained, pruned network would stay in the spawned processes); run
            ``"ddp"`` from a script. As in scvi-tools, every process continues after
            ``train()``.
        data_on_device
            ``True``: a dense copy of the registered ``X`` on the training device (fastest
            for Patch-seq sized data). ``False``: ``X`` stays on the host as registered
            (sparse CSR stays sparse, a backed AnnData stays on disk) and each minibatch is
            sliced, densified and moved to the device when used, so memory grows with the
            minibatch, not with the cells. ``None`` (default): ``True`` up to
            :data:`~multiviz.models.sbnn._data.STREAM_ABOVE` (50M) cells x genes, ``False``
            above. Both give the same fit for the same seed.
        indices
            Rows of the registered data to train on (in any order; each once); ``None``
            (default): every cell. The others stay registered, so
            ``get_latent_representation()`` and
            ``predict()`` cover them too:
            :func:`multiviz.tl.sbnn` trains on its training cells this way and scores the
            held-out ones. Kept as ``train_indices_``.
        **kwargs
            Nothing else: an unknown keyword is an :class:`~multiviz.InputError` that lists
            the valid names and the closest match.

        Raises
        ------
        InputError
            Invalid arguments, before any work.
        FitError
            The fit diverged (non-finite loss or outputs) or ended far below the mean
            predictor (training R² < -0.5); the message names the learning rate and phase.
            Create a new model to try again.
        """
        args = {k: v for k, v in locals().items() if k not in ("self", "kwargs")}
        from ...train import fit_context, resolve_progress_bar
        from ._train_args import checked_train_args

        n_obs = int(self.adata_manager.adata.n_obs)
        indices = None if indices is None else check_indices(indices, n_obs, "indices")
        stepwise, precision, phases = checked_train_args(
            self, args, kwargs, n_obs if indices is None else indices.size
        )
        progress = resolve_progress_bar(enable_progress_bar)
        rows, Y = self._training_data(indices, data_on_device)
        what = f"sBNN-{self.module.n_latent}"
        with fit_context(what):
            torch.manual_seed(self.random_state)
            training_plan = self._training_plan_cls(
                self.module,
                X=rows,
                Y=Y,
                phases=phases,
                n_genes=n_genes,
                batch_size=batch_size,
                ridge=ridge,
                n_clusters=self.n_clusters,
                val_fraction=val_fraction,
                handover=handover,
                seed=self.random_state,
                stepwise=stepwise,
                max_steps_per_epoch=self._max_steps_per_epoch,
            )
            run_phases(
                self,
                training_plan,
                phases,
                what=what,
                stepwise=stepwise,
                strategy=strategy,
                precision=precision,
                accelerator=accelerator,
                devices=devices,
                progress=progress,
            )
            history, r2 = checked_outcome(
                self.module, training_plan, Y, lr=lr, lr_finetune=lr_finetune, what=what
            )
        self.phase_history_ = history
        self.weight_norms_ = training_plan.weight_norms_before_pruning
        self.schedule_ = training_plan.schedule()
        self.r2_train_ = float(r2)
        self.pretrain_baseline_ce_ = training_plan.baseline_val_ce
        self.train_indices_ = np.arange(n_obs) if indices is None else indices
        self.is_trained_ = True
        log_phases(history)
