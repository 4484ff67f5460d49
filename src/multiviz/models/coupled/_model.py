"""``CoupledAutoencoder``: the scvi-tools model of the k-coupled autoencoder (Gala et al. 2019)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import numpy as np
import scvi
import torch
from anndata import AnnData
from mudata import MuData
from scvi.data import AnnDataManager
from scvi.data.fields import LayerField, ObsmField
from scvi.model.base import BaseModelClass
from scvi.train import TrainRunner

from ..._validate import InputError, check_option, check_positive_int
from ...train import LeanTrainingPlan
from ._coupling import COUPLINGS
from ._data import STACK_KEY, CoupledDataSplitter, stack_mudata
from ._module import CoupledAEModule

__all__ = ["CoupledAutoencoder"]

#: Reference schedule (Gala et al. code): 1,500 epochs x 500 steps of batch 200 = 750k steps.
REFERENCE_STEPS = 750_000


def _arm_defaults(first: bool) -> dict:
    """Paper arms: transcriptomic (first modality) and electrophysiology-like (the others)."""
    if first:
        return {"hidden": (50, 50, 50, 50), "dropout": 0.5, "noise": 0.0, "alpha": 1.0}
    return {"hidden": (40, 40, 40, 40), "dropout": 0.1, "noise": 0.05, "alpha": 0.1}


def _per_arm(value, modalities: Sequence[str], name: str, key: str) -> list:
    """Expand ``None`` (paper default) / a scalar / a mapping ``{mod: value}`` to a list."""
    defaults = [_arm_defaults(i == 0)[key] for i in range(len(modalities))]
    if value is None:
        return defaults
    if isinstance(value, Mapping):
        unknown = set(value) - set(modalities)
        if unknown:
            raise InputError(f"`{name}` names modalities that are not coupled: {sorted(unknown)}.")
        return [value.get(m, d) for m, d in zip(modalities, defaults)]
    return [value] * len(modalities)


class CoupledAutoencoder(BaseModelClass):
    """k coupled autoencoders over the modalities of a (partially paired) MuData.

    Gala et al., *A coupled autoencoder approach for multi-modal analysis of cell types*,
    NeurIPS 2019. Each modality gets an autoencoder; the latents of cells measured in two
    modalities are pulled together by a normalised coupling term. Cells measured in only
    some modalities train those arms' reconstruction and never enter a coupling term.

    Parameters
    ----------
    adata
        A MuData with the modalities to couple (cells may be missing from some of them;
        NaN values are masked out of the reconstruction). Inputs should be standardised,
        e.g. by :func:`multiviz.pp.prepare_paired`. (Internally also a stack built by
        ``multiviz.models.coupled._data.stack_mudata``, as on ``load``.)
    modalities
        Names of the modalities, the transcriptomic one first.
    layers
        ``{modality: layer}`` to read instead of ``.X``.
    n_latent
        Latent dimension (3 in the paper's Patch-seq analysis).
    coupling
        ``"msv"`` (eq. 6, default), ``"fullcov"`` (eq. 4), ``"batchnorm"`` (eq. 3) or
        ``"euclidean"`` (eq. 2).
    lam
        Coupling constant λ (paper: 0, 0.1, 1, 10).
    alpha
        Reconstruction weight per modality; default 1 for the first and 0.1 for the others
        (paper: α_E = 0.1 relative to α_T = 1). A scalar or a ``{modality: weight}`` mapping.
    hidden
        Encoder widths per modality; default 4 × 50 (transcriptomic) and 4 × 40 (others).
    dropout
        Input dropout per modality; default 0.5 (transcriptomic) and 0.1 (others).
    noise
        Additive input Gaussian noise per modality as a fraction of each feature's SD over
        the training cells; default 0 (transcriptomic) and 0.05 (others).
    cross_modal
        Add the 2021 refinement's cross-modal decoder terms (gradient stopped on the latent).
    activation
        ``"relu"`` (2021 code, default) or ``"elu"`` (2019 code).
    msv_floor
        Floor of the MSV normaliser (0.01 in the reference code).
    msv_method
        ``"svd"`` (as in the reference) or ``"eigh"`` for the minimum variance.
    latent_norm
        Batch-normalise each latent (non-affine, over the cells present in the arm), as in
        eqs. 3-6 and the 2021 code; default on except for ``coupling="euclidean"``.
    random_state
        Seed of the weight initialisation, data split and minibatch order.
    """

    _module_cls = CoupledAEModule
    _training_plan_cls = LeanTrainingPlan
    _data_splitter_cls = CoupledDataSplitter
    _train_runner_cls = TrainRunner

    def __init__(
        self,
        adata: MuData | AnnData,
        modalities: Sequence[str] = ("rna", "ephys"),
        layers: Mapping[str, str | None] | None = None,
        n_latent: int = 3,
        coupling: Literal["msv", "fullcov", "batchnorm", "euclidean"] = "msv",
        lam: float = 1.0,
        alpha: float | Mapping[str, float] | None = None,
        hidden: Sequence[int] | Mapping[str, Sequence[int]] | None = None,
        dropout: float | Mapping[str, float] | None = None,
        noise: float | Mapping[str, float] | None = None,
        cross_modal: bool = False,
        activation: Literal["relu", "elu"] = "relu",
        msv_floor: float = 0.01,
        msv_method: Literal["svd", "eigh"] = "svd",
        latent_norm: bool | None = None,
        random_state: int = 0,
    ):
        check_option(coupling, COUPLINGS, "coupling")
        check_option(activation, ("relu", "elu"), "activation")
        check_option(msv_method, ("svd", "eigh"), "msv_method")
        check_positive_int(n_latent, "n_latent")
        if isinstance(lam, bool) or not isinstance(lam, int | float | np.number):
            raise InputError(f"`lam` must be a number >= 0, got {lam!r}.")
        if not np.isfinite(lam) or lam < 0:
            raise InputError(f"`lam` must be a finite number >= 0, got {lam!r}.")
        if isinstance(adata, AnnData) and STACK_KEY in adata.uns:
            stack = adata
        elif isinstance(adata, MuData):
            stack = stack_mudata(adata, modalities, layers)
        else:
            raise InputError(
                f"`adata` must be a mudata.MuData with the modalities {list(modalities)}, got "
                f"{type(adata).__name__}."
            )
        modalities = list(stack.uns[STACK_KEY]["modalities"])
        alphas = [float(a) for a in _per_arm(alpha, modalities, "alpha", "alpha")]
        if any(not np.isfinite(a) or a <= 0 for a in alphas):
            raise InputError(f"`alpha` must be positive, got {alphas}.")
        if self._get_most_recent_anndata_manager(stack) is None:
            self.setup_anndata(stack)
        super().__init__(stack)
        scvi.settings.seed = random_state
        self.random_state = random_state
        self.modalities = modalities
        hiddens = _per_arm(hidden, modalities, "hidden", "hidden")
        if hidden is not None and not isinstance(hidden, Mapping):
            hiddens = [tuple(hidden)] * len(modalities)
        self.module = CoupledAEModule(
            stack.uns[STACK_KEY]["n_vars"],
            n_latent=n_latent,
            hidden=[tuple(int(u) for u in h) for h in hiddens],
            dropout=[float(d) for d in _per_arm(dropout, modalities, "dropout", "dropout")],
            noise=[float(s) for s in _per_arm(noise, modalities, "noise", "noise")],
            alpha=alphas,
            lam=lam,
            coupling=coupling,
            cross_modal=cross_modal,
            activation=activation,
            msv_floor=msv_floor,
            msv_method=msv_method,
            latent_norm=latent_norm,
        )
        self._model_summary_string = (
            f"CoupledAutoencoder: modalities={modalities}, n_latent={n_latent}, "
            f"coupling={coupling!r}, lam={lam}, alpha={alphas}"
        )
        self.init_params_ = self._get_init_params(locals())

    # -- setup ------------------------------------------------------------------------

    @classmethod
    def setup_anndata(cls, adata: AnnData, **kwargs) -> None:
        """Register a padded stack (internal; build the model from a MuData instead)."""
        if STACK_KEY not in adata.uns:
            raise NotImplementedError(
                "CoupledAutoencoder trains on a MuData: pass it directly, "
                "`CoupledAutoencoder(mdata, modalities=('rna', 'ephys'))`."
            )
        setup_method_args = cls._get_setup_method_args(**locals())
        fields = [
            LayerField("X", None, is_count_data=False),
            LayerField("observed", "observed", is_count_data=False),
            ObsmField("presence", "presence"),
        ]
        manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        manager.register_fields(adata, **kwargs)
        cls.register_manager(manager)

    # -- training ---------------------------------------------------------------------

    def _set_noise_scale(self, train_idx: np.ndarray) -> None:
        """Per-feature SD over the *training* cells (the reference used all cells)."""
        X, observed = self.adata.X, self.adata.layers["observed"]
        for arm, block in zip(self.module.arms, self.module._slices):
            x, o = X[train_idx, block], observed[train_idx, block]
            n = np.maximum(o.sum(axis=0), 1)
            mean = (x * o).sum(axis=0) / n
            sd = np.sqrt((((x - mean) ** 2) * o).sum(axis=0) / n)
            arm.noise_sd.copy_(torch.as_tensor(arm.noise * sd, dtype=torch.float32))

    def train(
        self,
        max_epochs: int | None = None,
        *,
        steps_per_epoch: int = 100,
        batch_size: int = 200,
        lr: float = 1e-3,
        train_size: float = 0.9,
        early_stopping: bool = True,
        early_stopping_patience: int = 20,
        accelerator: str = "auto",
        devices: int | str = "auto",
        plan_kwargs: dict | None = None,
        **trainer_kwargs,
    ):
        """Train with Adam on random minibatches; early stopping on a validation split.

        Parameters
        ----------
        max_epochs
            Epochs of ``steps_per_epoch`` steps; default: the reference schedule of 750,000
            steps (Gala et al. code: 1,500 × 500 steps, batch 200), which early stopping
            normally cuts to a few thousand steps (``benchmarks/coupled_ae_m1.py``).
        steps_per_epoch
            Minibatch steps per epoch (validation and early stopping run once per epoch).
        batch_size
            Minibatch size (200 in the reference).
        lr
            Adam learning rate (1e-3, as in the reference).
        train_size
            Fraction of cells used for training; the rest is the validation split that early
            stopping monitors (``1.0``: no validation, no early stopping).
        early_stopping, early_stopping_patience
            Stop when ``validation_loss`` has not improved for this many epochs.
        accelerator, devices, plan_kwargs, **trainer_kwargs
            Passed to :class:`scvi.train.Trainer` / the training plan.
        """
        check_positive_int(steps_per_epoch, "steps_per_epoch")
        check_positive_int(batch_size, "batch_size")
        if max_epochs is None:
            max_epochs = max(1, REFERENCE_STEPS // steps_per_epoch)
        if train_size >= 1.0:
            early_stopping = False
            trainer_kwargs.setdefault("limit_val_batches", 0)
        scvi.settings.seed = self.random_state
        splitter = CoupledDataSplitter(
            self.adata_manager,
            train_size=train_size,
            batch_size=batch_size,
            steps_per_epoch=steps_per_epoch,
            seed=self.random_state,
            accelerator=accelerator,
            device=devices,
            shuffle_set_split=True,
        )
        splitter.setup()
        self._set_noise_scale(np.asarray(splitter.train_idx))
        # scvi-tools defaults to Adam eps=0.01, which stalls these small-gradient nets; the
        # reference uses the framework default (1e-7 TF, 1e-8 torch).
        plan_kwargs = {"lr": lr, "weight_decay": 0.0, "eps": 1e-8, **(plan_kwargs or {})}
        plan = self._training_plan_cls(self.module, **plan_kwargs)
        trainer_kwargs.setdefault("enable_progress_bar", False)
        trainer_kwargs.setdefault("enable_model_summary", False)
        if early_stopping:
            trainer_kwargs.setdefault("early_stopping_monitor", "validation_loss")
            trainer_kwargs.setdefault("early_stopping_patience", early_stopping_patience)
        self.module.train()  # Lightning keeps the mode it finds; inference leaves eval mode
        runner = self._train_runner_cls(
            self,
            training_plan=plan,
            data_splitter=splitter,
            max_epochs=max_epochs,
            accelerator=accelerator,
            devices=devices,
            early_stopping=early_stopping,
            check_val_every_n_epoch=1,
            **trainer_kwargs,
        )
        out = runner()
        self.n_steps_ = int(plan.global_step)
        return out

    # -- inference --------------------------------------------------------------------

    def _stack_for(self, mdata: MuData | None) -> AnnData:
        if mdata is None:
            return self.adata
        info = self.adata.uns[STACK_KEY]
        layers = {m: (layer or None) for m, layer in info["layers"].items()}
        stack = stack_mudata(mdata, info["modalities"], layers)
        if not np.array_equal(stack.var_names, self.adata.var_names):
            raise InputError(
                "The modalities' features differ from those the model was trained on; pass "
                "data with the same var_names in the same order."
            )
        return stack

    @torch.inference_mode()
    def _encode(self, stack: AnnData, batch_size: int) -> list[np.ndarray]:
        self.module.eval()
        device = self.device
        out = [[] for _ in self.modalities]
        for start in range(0, stack.n_obs, batch_size):
            x = torch.as_tensor(stack.X[start : start + batch_size], device=device)
            pres = torch.as_tensor(
                stack.obsm["presence"][start : start + batch_size], device=device
            )
            for k, z in enumerate(self.module.inference(x, pres)["z"]):
                out[k].append(z.cpu().numpy())
        presence = stack.obsm["presence"] > 0.5
        lat = []
        for k in range(len(self.modalities)):
            z = np.concatenate(out[k]).astype(np.float32)
            z[~presence[:, k]] = np.nan
            lat.append(z)
        return lat

    def get_latent_representation(
        self, mdata: MuData | None = None, *, batch_size: int = 1024
    ) -> dict[str, np.ndarray]:
        """Per-modality latents ``{modality: cells x n_latent}``, NaN rows where a cell lacks it.

        Rows follow the cells of ``mdata`` (default: the training data) that are present in
        at least one coupled modality, in ``mdata.obs_names`` order (``self.obs_names``).
        """
        self._check_if_trained(warn=False)
        stack = self._stack_for(mdata)
        return dict(zip(self.modalities, self._encode(stack, batch_size)))

    def obs_names_for(self, mdata: MuData | None = None):
        """Cell names of the rows returned by :meth:`get_latent_representation`."""
        return self._stack_for(mdata).obs_names

    @torch.inference_mode()
    def decode(self, z: np.ndarray, target: str, *, batch_size: int = 1024) -> np.ndarray:
        """Decode latents with the decoder of ``target`` (NaN rows stay NaN)."""
        self.module.eval()
        k = self.modalities.index(target)
        z = np.asarray(z, dtype=np.float32)
        ok = ~np.isnan(z).any(axis=1)
        out = np.full((z.shape[0], self.module.n_vars[k]), np.nan, dtype=np.float32)
        zz = z[ok]
        parts = []
        for start in range(0, zz.shape[0], batch_size):
            t = torch.as_tensor(zz[start : start + batch_size], device=self.device)
            parts.append(self.module.decode(t, k).cpu().numpy())
        if parts:
            out[ok] = np.concatenate(parts)
        return out

    def predict(
        self, mdata: MuData | None = None, *, source: str, target: str, batch_size: int = 1024
    ) -> np.ndarray:
        """Reconstruct ``target`` from the latent of ``source`` (within-modality if equal)."""
        for name, mod in (("source", source), ("target", target)):
            if mod not in self.modalities:
                raise InputError(f"`{name}={mod!r}` is not one of {self.modalities}.")
        z = self.get_latent_representation(mdata, batch_size=batch_size)[source]
        return self.decode(z, target, batch_size=batch_size)
