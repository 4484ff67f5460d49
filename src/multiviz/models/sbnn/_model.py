"""``SBNN``: the sparse bottleneck neural network as a scvi-tools model."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from mudata import MuData
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager, fields
from scvi.model.base import BaseModelClass
from scvi.train import TrainRunner

from ... import _logging as logg
from ..._validate import InputError, check_positive_int
from ._module import SBNNModule
from ._plan import EpochDataModule, SBNNTrainingPlan, paper_schedule

Y_KEY = "Y"


class SBNN(BaseModelClass):
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
        Bottleneck width: 2 (sBNN-2, visualisation) or 64 (sBNN-64), as in the paper.
    n_hidden
        Encoder hidden widths (512, 128 in the paper); the decoder mirrors them.
    n_clusters
        k-means clusters for pre-training (K = 20 in the paper).
    random_state
        Seed of the weights, the k-means, the hold-out split and the shuffling.

    Examples
    --------
    >>> mv.models.SBNN.setup_mudata(mdata, x="rna", y="ephys")
    >>> model = mv.models.SBNN(mdata, n_latent=2)
    >>> model.train()
    >>> z = model.get_latent_representation()
    """

    _module_cls = SBNNModule
    _training_plan_cls = SBNNTrainingPlan

    def __init__(
        self,
        mdata: MuData,
        n_latent: int = 2,
        n_hidden: tuple[int, int] = (512, 128),
        n_clusters: int = 20,
        random_state: int = 0,
    ):
        super().__init__(mdata)
        n_input = self.summary_stats.n_vars
        n_output = self.summary_stats[f"n_{Y_KEY}"]
        self.module = self._module_cls(
            n_input,
            n_output,
            n_latent=n_latent,
            n_hidden=tuple(n_hidden),
            n_clusters=n_clusters,
            seed=random_state,
        )
        self.random_state = random_state
        self.n_clusters = n_clusters
        self.phase_history_: pd.DataFrame | None = None
        self.weight_norms_: np.ndarray | None = None
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
        **kwargs
            Passed to :meth:`~scvi.data.AnnDataManager.register_fields`.
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        for mod in (x, y):
            if mod not in mdata.mod:
                raise InputError(f"Modality {mod!r} not found; available: {sorted(mdata.mod)}.")
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

    # --------------------------------------------------------------- training
    def _dense(self, key: str) -> np.ndarray:
        data = self.adata_manager.get_from_registry(key)
        if sp.issparse(data):
            data = data.toarray()
        return np.asarray(data, dtype=np.float32)

    def train(
        self,
        *,
        pretrain: bool = True,
        pretrain_epochs: int = 50,
        frozen_epochs: int = 50,
        unfrozen_epochs: int = 50,
        no_pretrain_epochs: int = 100,
        pruned_epochs: int = 100,
        gene_decoder_epochs: int = 0,
        n_genes: int = 25,
        lasso: float = 0.1,
        lr: float = 1e-4,
        lr_finetune: float = 5e-5,
        ridge: float = 1e-10,
        batch_size: int = 32,
        val_fraction: float = 0.4,
        accelerator: str = "auto",
        devices: int | str = "auto",
        enable_progress_bar: bool | None = None,
        **trainer_kwargs,
    ) -> None:
        """Run the full sBNN schedule (paper defaults).

        With ``pretrain=True``: 50 epochs k-means (K = 20) classification pre-training
        with the group lasso (best epoch by the unpenalised cross-entropy on a 40 %
        hold-out of the training cells) → fresh regression head → 50 epochs with the
        bottom two layers frozen (lr 1e-4) → 50 epochs all layers (lr 5e-5) → prune to
        ``n_genes`` genes with the largest first-layer row norms → 100 epochs without
        the lasso (lr 5e-5). Without pre-training: 100 epochs (lr 1e-4), prune, 100
        epochs. Adam, batch 32, a fresh optimiser per phase.

        Parameters
        ----------
        pretrain
            Classification pre-training and freezing (paper's default model).
        pretrain_epochs, frozen_epochs, unfrozen_epochs, no_pretrain_epochs, pruned_epochs
            Phase lengths (50, 50, 50, 100, 100 in the paper).
        gene_decoder_epochs
            Epochs of the bottleneck → selected-genes decoder ("autoencoder" head),
            trained last with everything else frozen; 0 skips it.
        n_genes
            Genes kept at pruning (25 in the paper).
        lasso
            Group-lasso strength (0.1, the paper's model).
        lr, lr_finetune
            Adam learning rates (1e-4; 5e-5 after unfreezing and after pruning).
        ridge
            L2 penalty on all weights (1e-10 in the paper, which reports no effect).
        batch_size
            Minibatch size (32).
        val_fraction
            Hold-out fraction for choosing the pre-training epoch (0.4).
        accelerator, devices
            Lightning device arguments; the sBNN trains on a single device.
        enable_progress_bar
            Show a progress bar (default: ``scvi.settings``/Lightning default).
        **trainer_kwargs
            Passed to the Lightning trainer.
        """
        n_input = self.module.gene_index.numel()
        check_positive_int(n_genes, "n_genes")
        if n_genes > n_input:
            raise InputError(f"`n_genes`={n_genes} exceeds the number of input genes ({n_input}).")
        if bool(self.module.pruned):
            raise InputError("This model is already trained and pruned; create a new SBNN.")
        if devices not in ("auto", 1, [0]) and not (
            isinstance(devices, list) and len(devices) == 1
        ):
            raise InputError("The sBNN trains on a single device; pass `devices=1`.")
        phases = paper_schedule(
            pretrain=pretrain,
            pretrain_epochs=pretrain_epochs,
            frozen_epochs=frozen_epochs,
            unfrozen_epochs=unfrozen_epochs,
            no_pretrain_epochs=no_pretrain_epochs,
            pruned_epochs=pruned_epochs,
            gene_decoder_epochs=gene_decoder_epochs,
            lr=lr,
            lr_finetune=lr_finetune,
            lasso=lasso,
        )
        X = torch.from_numpy(np.ascontiguousarray(self._dense(REGISTRY_KEYS.X_KEY)))
        Y = torch.from_numpy(np.ascontiguousarray(self._dense(Y_KEY)))
        plan = self._training_plan_cls(
            self.module,
            X=X,
            Y=Y,
            phases=phases,
            n_genes=n_genes,
            batch_size=batch_size,
            ridge=ridge,
            n_clusters=self.n_clusters,
            val_fraction=val_fraction,
            seed=self.random_state,
        )
        max_epochs = int(sum(p.epochs for p in phases))
        if enable_progress_bar is not None:
            trainer_kwargs["enable_progress_bar"] = enable_progress_bar
        runner = TrainRunner(
            self,
            training_plan=plan,
            data_splitter=EpochDataModule(),
            max_epochs=max(max_epochs, 1),
            accelerator=accelerator,
            devices=devices if devices != "auto" else 1,
            limit_val_batches=0,
            **trainer_kwargs,
        )
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*configure_optimizers.*")
            warnings.filterwarnings("ignore", message=".*num_workers.*")
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*LightningModule.*optimizer.*")
            warnings.filterwarnings("ignore", message=".*validation_step.*")
            warnings.filterwarnings("ignore", message=".*log_every_n_steps.*")
            runner()
        self.phase_history_ = pd.DataFrame(plan.epoch_log)
        self.weight_norms_ = plan.weight_norms_before_pruning
        self.schedule_ = plan.schedule()
        for name in dict.fromkeys(self.phase_history_.get("phase", [])):
            sub = self.phase_history_[self.phase_history_["phase"] == name]
            logg.info(
                "    sbnn phase %-12s %3d epochs, final loss %.4f",
                name,
                len(sub),
                sub["loss"].iloc[-1],
            )

    # ------------------------------------------------------------- inference
    @property
    def selected_genes(self) -> pd.Index:
        """Names of the genes kept after pruning (all input genes before)."""
        names = self.adata_manager.get_state_registry(REGISTRY_KEYS.X_KEY).column_names
        return pd.Index(np.asarray(names)[self.module.gene_index.cpu().numpy()])

    @torch.inference_mode()
    def _run(self, mdata, indices, batch_size, what: str) -> np.ndarray:
        self._check_if_trained(warn=False)
        mdata = self._validate_anndata(mdata)
        dl = self._make_data_loader(adata=mdata, indices=indices, batch_size=batch_size)
        out = []
        self.module.eval()
        for tensors in dl:
            inf = self.module.inference(**self.module._get_inference_input(tensors))
            if what == "z":
                out.append(inf["z"].cpu())
                continue
            gen = self.module.generative(inf["z"])
            if what == "x_hat" and "x_hat" not in gen:
                raise InputError(
                    "This model has no gene decoder (train with gene_decoder_epochs > 0)."
                )
            out.append(gen[what].cpu())
        return torch.cat(out).numpy()

    def get_latent_representation(
        self,
        mdata: MuData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int = 1024,
    ) -> np.ndarray:
        """Bottleneck activations, ``(n_cells, n_latent)``."""
        return self._run(mdata, indices, batch_size, "z")

    def predict(
        self,
        mdata: MuData | None = None,
        indices: Sequence[int] | None = None,
        batch_size: int = 1024,
        *,
        genes: bool = False,
    ) -> pd.DataFrame:
        """Predicted targets, or with ``genes=True`` the reconstructed selected genes.

        Values are on the scale the model was trained on (z-scores after
        :func:`multiviz.pp.prepare_paired`).
        """
        what = "x_hat" if genes else "y_hat"
        values = self._run(mdata, indices, batch_size, what)
        ad = self._validate_anndata(mdata)
        obs_names = ad.obs_names if indices is None else ad.obs_names[np.asarray(indices)]
        if genes:
            cols = self.selected_genes
        else:
            cols = self.adata_manager.get_state_registry(Y_KEY).column_names
        return pd.DataFrame(values, index=obs_names, columns=pd.Index(cols))

    def _validate_anndata(self, adata=None, copy_if_view: bool = True):
        if adata is None:
            return self.adata
        return super()._validate_anndata(adata, copy_if_view=copy_if_view)
