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

from ..._bounds import check_network_size
from ..._validate import (
    InputError,
    check_bool,
    check_float,
    check_int,
    check_option,
    check_random_state,
)
from ._coupling import COUPLINGS
from ._data import STACK_KEY, batcher_of, check_modalities, materialise, stack_mudata
from ._inference import CoupledInferenceMixin
from ._module import CROSS_MODAL, CoupledAEModule
from ._train import CoupledTrainingMixin

__all__ = ["CoupledAutoencoder"]


#: Input dropout of the transcriptomic arm with the full cross-modal terms (the paper's
#: 0.5 otherwise): the cross-modal loss fits the RNA encoder to the other modality, and
#: 0.8 keeps it from overfitting (``benchmarks/results/coupled_prediction.json``).
CROSS_MODAL_RNA_DROPOUT = 0.8


def _arm_defaults(first: bool, cross_modal: str = "off") -> dict:
    """Paper arms: transcriptomic (first modality) and electrophysiology-like (the others)."""
    if first:
        drop = CROSS_MODAL_RNA_DROPOUT if cross_modal == "full" else 0.5
        return {"hidden": (50, 50, 50, 50), "dropout": drop, "noise": 0.0, "alpha": 1.0}
    return {"hidden": (40, 40, 40, 40), "dropout": 0.1, "noise": 0.05, "alpha": 0.1}


def check_cross_modal(cross_modal) -> str:
    """``"full"``, ``"decoder"`` or ``"off"``; ``True`` means ``"decoder"``, ``False`` ``"off"``.

    (The booleans are the arguments of earlier versions, where ``True`` added the
    decoder-only terms; saved models keep their meaning.)
    """
    if cross_modal is True or cross_modal is False:
        return "decoder" if cross_modal else "off"
    return check_option(cross_modal, CROSS_MODAL, "cross_modal")


def _per_arm(value, modalities: Sequence[str], name: str, cross_modal: str = "off") -> list:
    """Expand ``None`` (paper default) / a scalar / a mapping ``{mod: value}`` to a list."""
    defaults = [_arm_defaults(i == 0, cross_modal)[name] for i in range(len(modalities))]
    if value is None:
        return defaults
    if isinstance(value, Mapping):
        unknown = set(value) - set(modalities)
        if unknown:
            raise InputError(
                f"`{name}` names modalities that are not coupled: {sorted(unknown)}; "
                f"coupled: {list(modalities)}."
            )
        return [value.get(m, d) for m, d in zip(modalities, defaults)]
    return [value] * len(modalities)


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


def _check_hidden(h, arg: str) -> tuple[int, ...]:
    if isinstance(h, str) or not isinstance(h, Sequence) or len(h) == 0:
        raise InputError(
            f"`{arg}` must be a non-empty sequence of layer widths, e.g. (50, 50), got {h!r}."
        )
    return tuple(check_int(u, arg) for u in h)


def check_arm_sizes(
    n_vars: Sequence[int], modalities: Sequence[str], n_latent, hidden
) -> tuple[int, list[tuple[int, ...]]]:
    """Latent and hidden widths checked against the data and the memory, before any layer.

    ``n_latent`` may be at most the number of features of the smallest modality (a wider
    latent cannot be coupled: that arm's latents span fewer dimensions); all arms must
    fit in the available memory (:func:`multiviz._bounds.check_network_size`). Returns
    ``(n_latent, hidden widths per arm)``.
    """
    n_latent = check_int(n_latent, "n_latent")
    hiddens = [_check_hidden(h, "hidden") for h in _per_arm(hidden, modalities, "hidden")]
    smallest = min(range(len(n_vars)), key=lambda i: n_vars[i])
    chains = []
    for n, h in zip(n_vars, hiddens):
        chains += [[n, *h, n_latent], [n_latent, *reversed(h), n]]
    check_network_size(
        "coupled autoencoder",
        n_latent=n_latent,
        max_latent=int(n_vars[smallest]),
        max_what=f"features of modality {modalities[smallest]!r}, the smallest coupled",
        chains=chains,
        size_args=f"`n_latent={n_latent}`, `hidden={dict(zip(modalities, hiddens))}`",
    )
    return n_latent, hiddens


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
        check_option(coupling, COUPLINGS, "coupling")
        check_option(activation, ("relu", "elu"), "activation")
        check_option(msv_method, ("svd", "eigh"), "msv_method")
        n_latent = check_int(n_latent, "n_latent")
        lam = check_float(lam, "lam", low=0.0)
        msv_floor = check_float(msv_floor, "msv_floor", low=0.0, low_open=True)
        cross_modal = check_cross_modal(cross_modal)
        if latent_norm is not None:
            check_bool(latent_norm, "latent_norm")
        random_state = check_random_state(random_state)
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
        n_latent, hiddens = check_arm_sizes(n_vars, modalities, n_latent, hidden)
        if stack is None:
            stack = stack_mudata(adata, modalities, layers)
            modalities = list(stack.uns[STACK_KEY]["modalities"])
        alphas = [
            check_float(a, "alpha", low=0.0, low_open=True)
            for a in _per_arm(alpha, modalities, "alpha")
        ]
        drops = [
            check_float(d, "dropout", low=0.0, high=1.0, high_open=True)
            for d in _per_arm(dropout, modalities, "dropout", cross_modal)
        ]
        noises = [check_float(s, "noise", low=0.0) for s in _per_arm(noise, modalities, "noise")]
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
