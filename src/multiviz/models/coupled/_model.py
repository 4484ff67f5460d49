"""``CoupledAutoencoder``: the scvi-tools model of the k-coupled autoencoder (Gala et al. 2019)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import contextmanager
from typing import Literal

import torch
from anndata import AnnData
from mudata import MuData
from scvi.data import AnnDataManager
from scvi.data.fields import ObsmField
from scvi.model.base import BaseModelClass

from ..._validate import InputError, check_random_state
from ._checks import (  # noqa: F401  (CROSS_MODAL_RNA_DROPOUT, check_cross_modal: re-exported)
    CROSS_MODAL_RNA_DROPOUT,
    check_arm_sizes,
    check_arm_weights,
    check_cross_modal,
    check_modalities,
    check_options,
)
from ._data import STACK_KEY, batcher_of, materialise, stack_mudata
from ._inference import CoupledInferenceMixin
from ._module import CoupledAEModule
from ._train import CoupledTrainingMixin

__all__ = ["CoupledAutoencoder"]


@contextmanager
def _quiet_scvi():
    """scvi-tools' logger at WARNING for the duration (its INFO lines are ANSI-coloured)."""
    lg = logging.getLogger("scvi")
    old = lg.level
    lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        lg.setLevel(old)


def _registered_stack_or_sizes(
    adata, modalities: Sequence[str]
) -> tuple[AnnData | None, list[str], list[int]]:
    """``(stack, modalities, features per modality)`` of the model's ``adata``.

    A stack (``load``) gives its own modalities and sizes; a MuData has its modalities
    checked and no stack yet (``None``); anything else is an :class:`~multiviz.InputError`.
    """
    stack = None
    if isinstance(adata, AnnData) and STACK_KEY in adata.uns:
        stack = adata
        batcher_of(stack)  # early error if the stack lost its values
        modalities = list(stack.uns[STACK_KEY]["modalities"])
        n_vars = [int(n) for n in stack.uns[STACK_KEY]["n_vars"]]
    elif isinstance(adata, MuData):
        modalities = check_modalities(adata, modalities)
        n_vars = [adata.mod[m].n_vars for m in modalities]
    else:
        raise InputError(
            f"`adata` must be a mudata.MuData with the modalities {list(modalities)}, got "
            f"{type(adata).__name__}."
        )
    return stack, modalities, n_vars


class CoupledAutoencoder(CoupledInferenceMixin, CoupledTrainingMixin, BaseModelClass):
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
        Latent dimension (3 in the paper's Patch-seq analysis); at most the number of
        features of the smallest modality.
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
        All arms must fit in the available memory (checked before any layer is built).
    dropout
        Input dropout per modality; default 0.1 for the others, and for the transcriptomic
        arm 0.8 with ``cross_modal="full"`` (it keeps the RNA encoder, which the cross-modal
        terms fit to the other modality, from overfitting), else the paper's 0.5.
    noise
        Additive input Gaussian noise per modality as a fraction of each feature's SD over
        the training cells; default 0 (transcriptomic) and 0.05 (others).
    cross_modal
        Cross-modal reconstruction terms for paired cells (2021 refinement): ``"full"``
        (default) adds, for each pair of arms, the error of each decoder reconstructing
        its modality from the other arm's latent, weighted by that modality's ``alpha``,
        with the gradient reaching the encoders: the latents learn to predict the other
        modality, which the cross-modal predictions of cells measured in one modality
        need (without it, on M1 and the PBMC CITE-seq data, they lost to a regression on
        a 3-d CCA latent; ``benchmarks/results/coupled_prediction.json``). ``"decoder"``:
        the same terms with the latent gradient stopped (``True`` in earlier versions);
        ``"off"`` (or ``False``): the 2019 paper's loss; with the paper's dropout, this
        is the paper's model.
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
        Seed of the weight initialisation, data split, minibatch order, dropout and noise
        (a local generator state: the user's global torch/numpy/scvi seeds are untouched),
        in ``[0, 2**32 - 1]``.

    Examples
    --------
    >>> model = mv.models.CoupledAutoencoder(mdata, modalities=("rna", "ephys"), lam=1.0)
    >>> model.train()  # 10k steps at most (1,000 passes over the cells), see `train`
    >>> z = model.get_latent_representation()  # {"rna": ..., "ephys": ...}
    """

    _module_cls = CoupledAEModule

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
        cross_modal: Literal["full", "decoder", "off"] | bool = "full",
        activation: Literal["relu", "elu"] = "relu",
        msv_floor: float = 0.01,
        msv_method: Literal["svd", "eigh"] = "svd",
        latent_norm: bool | None = None,
        random_state: int = 0,
    ):
        n_latent, lam, msv_floor, cross_modal = check_options(
            coupling, activation, msv_method, n_latent, lam, msv_floor, cross_modal, latent_norm
        )
        random_state = check_random_state(random_state)
        stack, modalities, n_vars = _registered_stack_or_sizes(adata, modalities)
        n_latent, hiddens = check_arm_sizes(n_vars, modalities, n_latent, hidden)
        if stack is None:
            stack = stack_mudata(adata, modalities, layers)
            modalities = list(stack.uns[STACK_KEY]["modalities"])
        alphas, drops, noises = check_arm_weights(alpha, dropout, noise, modalities, cross_modal)
        if self._get_most_recent_anndata_manager(stack) is None:
            with _quiet_scvi():  # no raw "Generating sequential column names" INFO line
                self.setup_anndata(stack)
        super().__init__(stack)
        self.random_state = random_state
        self.modalities = modalities
        with torch.random.fork_rng(devices=[]):  # seeded init, global RNG state untouched
            torch.manual_seed(random_state)
            self.module = CoupledAEModule(
                stack.uns[STACK_KEY]["n_vars"],
                n_latent=n_latent,
                hidden=hiddens,
                dropout=drops,
                noise=noises,
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

    @classmethod
    def setup_anndata(cls, adata: AnnData, **kwargs) -> None:
        """Register a stack (internal; build the model from a MuData instead).

        Only the presence mask is registered with scvi-tools: the values are read from
        the modalities' own matrices (``_data.batcher_of``), never copied into the stack.
        """
        if STACK_KEY not in adata.uns:
            raise InputError(
                "CoupledAutoencoder trains on a MuData: pass it directly, "
                "`CoupledAutoencoder(mdata, modalities=('rna', 'ephys'))`."
            )
        setup_method_args = cls._get_setup_method_args(**locals())
        fields = [ObsmField("presence", "presence")]
        manager = AnnDataManager(fields=fields, setup_method_args=setup_method_args)
        manager.register_fields(adata, **kwargs)
        cls.register_manager(manager)

    def _write_model_files(
        self,
        dir_path: str,
        prefix: str | None,
        save_anndata: bool,
        save_kwargs: dict | None,
        kwargs: dict,
    ) -> None:
        """scvi-tools' files; with ``save_anndata``, also the cells' values.

        The model's stack holds no values (they stay in the MuData), so ``save_anndata``
        writes a stack with the values in its ``X`` (``adata.h5ad``, sparse; a copy of
        all cells, made only here) that ``CoupledAutoencoder.load`` reads without the MuData.
        """
        super()._write_model_files(dir_path, prefix, False, save_kwargs, {})
        if save_anndata:
            import os

            from scvi.model.base._constants import SAVE_KEYS

            path = os.path.join(dir_path, f"{prefix or ''}{SAVE_KEYS.ADATA_FNAME}")
            materialise(self.adata).write(path, **kwargs)
